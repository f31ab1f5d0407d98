"""Roles, API tokens and throttling (audit P2-4 and P3-11)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from core.roles import ADMIN
from retention.channels.webhook import signature
from retention.services.tokens import api_token_create

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"


def _user_form(user: User, **changes) -> dict:
    form = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-07-01",
        "date_joined_1": "10:00:00",
        "initial-date_joined_0": "2026-07-01",
        "initial-date_joined_1": "10:00:00",
    }
    return {**form, **changes}


def test_an_admin_cannot_make_itself_superuser(client, admin_user):
    client.force_login(admin_user)
    client.post(
        f"/admin/auth/user/{admin_user.pk}/change/", _user_form(admin_user, is_superuser="on")
    )
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser


def test_an_admin_cannot_give_itself_raw_permissions(client, admin_user):
    client.force_login(admin_user)
    everything = list(Permission.objects.values_list("pk", flat=True))
    client.post(
        f"/admin/auth/user/{admin_user.pk}/change/",
        _user_form(admin_user, user_permissions=everything),
    )
    assert not admin_user.user_permissions.exists()


def test_an_admin_cannot_widen_a_role(client, admin_user):
    client.force_login(admin_user)
    admin_group = Group.objects.get(name=ADMIN)
    before = admin_group.permissions.count()
    everything = list(Permission.objects.values_list("pk", flat=True))
    response = client.post(
        f"/admin/auth/group/{admin_group.pk}/change/",
        {"name": ADMIN, "permissions": everything},
    )
    assert response.status_code == 403
    assert admin_group.permissions.count() == before


def test_an_admin_cannot_take_over_a_superusers_account(client, admin_user):
    root = User.objects.create_superuser("root", password="pw-for-tests")
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{root.pk}/password/",
        {"password1": "taken-over-123", "password2": "taken-over-123"},
    )
    assert response.status_code == 403
    root.refresh_from_db()
    assert not root.check_password("taken-over-123")


def test_an_admin_still_manages_staff_and_their_roles(client, admin_user, agent_user):
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{agent_user.pk}/change/",
        _user_form(agent_user, groups=[Group.objects.get(name=ADMIN).pk]),
    )
    assert response.status_code == 302
    assert agent_user.groups.filter(name=ADMIN).exists()


def test_an_admin_issues_an_api_token_in_the_admin_and_sees_it_once(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/knox/authtoken/").status_code == 200
    assert client.get("/admin/knox/authtoken/add/").status_code == 200
    response = client.post(
        "/admin/knox/authtoken/add/", {"user": admin_user.pk, "days": "30"}, follow=True
    )
    page = response.content.decode()
    token = re.search(r"not shown again: ([0-9a-f]{64})", page).group(1)
    stored = AuthToken.objects.get(user=admin_user)
    assert stored.expiry.date() == (timezone.now() + dt.timedelta(days=30)).date()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(CUSTOMERS).status_code == 200
    assert token not in client.get(f"/admin/knox/authtoken/{stored.pk}/change/").content.decode()


def test_an_admin_revokes_a_token_in_the_admin(client, admin_user, agent_user):
    stored, token = api_token_create(user=agent_user, now=timezone.now())
    client.force_login(admin_user)
    client.post(f"/admin/knox/authtoken/{stored.pk}/delete/", {"post": "yes"})
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(CUSTOMERS).status_code == 401


def test_api_tokens_are_stored_only_as_a_digest(agent_user):
    stored, token = api_token_create(user=agent_user, now=timezone.now())
    columns = [str(v) for v in AuthToken.objects.filter(pk=stored.pk).values().get().values()]
    assert token not in columns
    assert stored.digest == hashlib.sha512(token.encode()).hexdigest()


def test_an_expired_token_is_refused(agent_user):
    _, token = api_token_create(
        user=agent_user, now=timezone.now() - dt.timedelta(days=31), days=30
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(CUSTOMERS).status_code == 401


def test_tokens_expire_after_the_configured_days_by_default(agent_user, settings):
    settings.API_TOKEN_TTL_DAYS = 7
    now = timezone.now()
    stored, _ = api_token_create(user=agent_user, now=now)
    assert stored.expiry == now + dt.timedelta(days=7)


def test_the_command_prints_a_token_that_works_and_revoke_ends_it(agent_user, capsys):
    call_command("create_api_token", agent_user.username, "--days", "5")
    token = capsys.readouterr().out.strip()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(CUSTOMERS).status_code == 200
    call_command("revoke_api_tokens", agent_user.username)
    assert api.get(CUSTOMERS).status_code == 401


def test_an_agent_without_staff_status_cannot_read_the_api(agent_user):
    agent_user.is_staff = False
    agent_user.save()
    api = APIClient()
    api.force_authenticate(agent_user)
    assert api.get(CUSTOMERS).status_code == 403


def test_agents_keep_reading_the_api(agent_api):
    assert agent_api.get(CUSTOMERS).status_code == 200


def _login(client, username: str, password: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR="203.0.113.7",
    )


def test_admin_logins_are_locked_out_after_repeated_failures(client, agent_user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        _login(client, agent_user.username, "wrong")
    response = _login(client, agent_user.username, "pw-for-tests")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_login_with_the_right_password_still_works(client, agent_user):
    _login(client, agent_user.username, "wrong")
    response = _login(client, agent_user.username, "pw-for-tests")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(agent_user.pk)


def test_a_lockout_does_not_lock_the_user_out_from_another_address(client, agent_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        _login(client, agent_user.username, "wrong")
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": agent_user.username, "password": "pw-for-tests"},
        REMOTE_ADDR="198.51.100.20",
    )
    assert response.status_code == 302


def test_a_forged_forwarded_for_header_does_not_dodge_the_lockout(client, agent_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(3):
        client.post(
            "/admin/login/",
            {"username": agent_user.username, "password": "wrong"},
            REMOTE_ADDR="203.0.113.7",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
    assert _login(client, agent_user.username, "pw-for-tests").status_code == 429


def test_behind_a_trusted_proxy_the_client_address_is_the_one_the_proxy_saw(
    client, agent_user, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(3):
        client.post(
            "/admin/login/",
            {"username": agent_user.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.30",
        )
    locked = client.post(
        "/admin/login/",
        {"username": agent_user.username, "password": "pw-for-tests"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.30",
    )
    assert locked.status_code == 429
    elsewhere = client.post(
        "/admin/login/",
        {"username": agent_user.username, "password": "pw-for-tests"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.31",
    )
    assert elsewhere.status_code == 302


@pytest.fixture
def rates(monkeypatch):
    """Low API rates; DRF's throttles read their rates once at import."""

    def set_rates(**rates):
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)

    return set_rates


def test_the_api_throttles_a_user_over_their_rate(agent_api, admin_api, rates):
    rates(user="3/minute", anon="3/minute", receipts="3/minute")
    assert [agent_api.get(CUSTOMERS).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert admin_api.get(CUSTOMERS).status_code == 200


def test_signed_receipts_have_their_own_rate_not_the_anonymous_one(client, settings, rates):
    rates(user="100/minute", anon="1/minute", receipts="3/minute")
    settings.RECEIPTS_SECRET = "receipt-secret"
    body = json.dumps({"reference": "sms-unknown", "status": "delivered"}).encode()

    def post():
        stamp = str(int(time.time()))
        return client.post(
            "/api/v1/outbox/receipts",
            body,
            content_type="application/json",
            HTTP_X_RETENTION_TIMESTAMP=stamp,
            HTTP_X_RETENTION_SIGNATURE=signature("receipt-secret", stamp, body),
        ).status_code

    assert [post() for _ in range(4)] == [200, 200, 200, 429]
