"""Every URL the project serves, for anonymous / Agent / Admin, generated from the URL
configuration: a URL pattern that the tables below do not cover fails the test, so a new
page or endpoint cannot ship without saying who may use it.

Admin pages are described per registered model (what each role may do with it) and per
site-level page; API, bot and other routes by their URL name (or route, when unnamed).
Pages are fetched with GET; writes are POSTed only by identities that must be refused, and
must change nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from bots.models import AlertCard, ChatLink, QueueChat
from bots.services import link_code_create
from customers.models import Event, Order, Product, SyntheticResponse, SyntheticShop
from ml.models import ModelVersion
from retention.models import AgentCapacity, Alert, AuditEntry, Campaign, Intervention, Queue
from retention.services.audit import RULE
from retention.services.interventions import interventions_approve
from retention.services.pipeline import after_scoring
from retention.services.tokens import api_token_create
from tests.factories import NOW, campaign, customer, scored_run, synthetic_truth

pytestmark = pytest.mark.django_db

ANON, AGENT, ADMIN = "anonymous", "agent", "admin"
IDENTITIES = (ANON, AGENT, ADMIN)

# What a role may open in a model's admin. The change page answers 200 both when it is
# editable and when it is shown read-only; whether it is editable is tested per model.
NONE: frozenset[str] = frozenset()
VIEW = frozenset({"changelist", "change", "history"})
VIEW_ADD = VIEW | {"add"}
VIEW_DELETE = VIEW | {"delete"}
FULL = VIEW | {"add", "delete"}

# model label: (Agent, Admin). Superusers may do everything the Admin may and more; the
# only thing nobody may do (adding, changing, deleting audit rows) is tested on its own.
ADMIN_MODELS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "customers.customer": (VIEW, FULL),
    "customers.product": (VIEW, FULL),
    "customers.order": (VIEW, FULL),
    "customers.event": (VIEW, FULL),
    "customers.syntheticshop": (NONE, FULL),
    "customers.synthetictruth": (NONE, FULL),
    "customers.syntheticresponse": (NONE, FULL),
    "ml.churndefinition": (NONE, FULL),
    "ml.modelversion": (NONE, VIEW),
    "ml.scoringrun": (VIEW, VIEW),
    "ml.customerscore": (VIEW, VIEW),
    "retention.riskrule": (VIEW, FULL),
    "retention.alert": (VIEW, VIEW),
    # Capacities change through a service (audited, the day planned again): never deleted.
    "retention.queue": (VIEW, VIEW_ADD),
    "retention.agentcapacity": (VIEW, VIEW_ADD),
    "retention.offer": (VIEW, FULL),
    "retention.campaign": (VIEW, FULL),
    "retention.messagetemplate": (NONE, FULL),
    "retention.contactpolicy": (NONE, VIEW),  # one row, made by a migration, never deleted
    "retention.intervention": (VIEW, VIEW),
    "retention.coupon": (VIEW, VIEW),
    "retention.outboxmessage": (VIEW, VIEW),
    "retention.auditentry": (VIEW, VIEW),
    "bots.linkcode": (VIEW_ADD, FULL),
    "bots.chatlink": (NONE, FULL),
    "bots.queuechat": (NONE, FULL),
    "bots.alertcard": (NONE, VIEW),
    "auth.user": (NONE, FULL),
    "auth.group": (NONE, VIEW),
    "knox.authtoken": (NONE, FULL),
    "axes.accessattempt": (NONE, VIEW_DELETE),
    "axes.accesslog": (NONE, VIEW),
    "axes.accessfailurelog": (NONE, VIEW),
    "django_celery_beat.periodictask": (NONE, FULL),
    "django_celery_beat.intervalschedule": (NONE, FULL),
    "django_celery_beat.crontabschedule": (NONE, FULL),
    "django_celery_beat.solarschedule": (NONE, FULL),
    "django_celery_beat.clockedschedule": (NONE, FULL),
}

# Apps whose admin index an Agent sees (it has a permission on one of their models).
AGENT_APPS = {"customers", "ml", "retention", "bots"}

LOGIN = 302  # the admin sends anonymous visitors to its login page


@dataclass(frozen=True)
class Expect:
    """Status per identity for a GET, or for a POST when ``write`` (then only the refused
    identities are tried; None means "allowed": anything but 401/403)."""

    anonymous: int
    agent: int | None
    admin: int | None
    write: bool = False

    def of(self, identity: str) -> int | None:
        return getattr(self, identity)


# Admin pages that belong to no model, by URL name.
ADMIN_SITE = {
    "admin:index": Expect(LOGIN, 200, 200),
    "admin:login": Expect(200, 302, 302),
    "admin:logout": Expect(LOGIN, 405, 405),  # logging out is a POST
    "admin:password_change": Expect(LOGIN, 200, 200),
    "admin:password_change_done": Expect(LOGIN, 200, 200),
    "admin:autocomplete": Expect(LOGIN, 403, 403),  # refused without a field to complete
    "admin:jsi18n": Expect(LOGIN, 200, 200),
    "admin:view_on_site": Expect(LOGIN, 404, 404),  # no model has a public page
    "admin:auth_user_password_change": Expect(LOGIN, 403, 200),
}

# Everything outside the admin, by URL name (or route when unnamed).
ROUTES = {
    "": Expect(302, 302, 302),  # the front page redirects to the admin
    # Staff only: the docs run in the app's origin with the user's session.
    "api-schema": Expect(401, 200, 200),
    "api-docs": Expect(401, 200, 200),
    "customers-bulk": Expect(401, 403, None, write=True),
    "products-bulk": Expect(401, 403, None, write=True),
    "orders-bulk": Expect(401, 403, None, write=True),
    "events-bulk": Expect(401, 403, None, write=True),
    "customer-list": Expect(401, 200, 200),
    "customer-detail": Expect(401, 200, 200),
    "customer-orders": Expect(401, 200, 200),
    "order-list": Expect(401, 200, 200),
    # Privacy rights are exercised by Admins only.
    "customer-export": Expect(401, 403, 200),
    "customer-erase": Expect(401, 403, None, write=True),
    "coupon-redeem": Expect(401, 403, None, write=True),
    # Capacities are the Admin's, like the rest of the workflow's configuration.
    "queue-capacity": Expect(401, 403, None, write=True),
    "agent-capacity": Expect(401, 403, None, write=True),
    # Offers' priors and campaigns' exploration share are the Admin's to read and tune.
    "offer-prior": Expect(401, 403, 200),
    "campaign-learning": Expect(401, 403, 200),
    # Providers only, by signature: a staff token is no signature.
    "delivery-receipts": Expect(403, 403, 403, write=True),
    # Telegram only, by the webhook's secret token.
    "telegram-webhook": Expect(403, 403, 403, write=True),
    # The console: staff pages for Agents and Admins, Admin pages (overview, models and
    # their promote / roll back buttons) refused to Agents; anonymous visitors log in.
    "console:today": Expect(LOGIN, 200, 200),
    "console:login": Expect(200, 302, 302),  # signed-in users go on to Today
    "console:logout": Expect(405, 405, 405),  # logging out is a POST
    "console:customer": Expect(LOGIN, 200, 200),
    "console:overview": Expect(LOGIN, 403, 200),
    "console:campaigns": Expect(LOGIN, 200, 200),
    "console:campaign": Expect(LOGIN, 200, 200),
    "console:models": Expect(LOGIN, 403, 200),
    "console:model-promote": Expect(LOGIN, 403, None, write=True),
    "console:model-rollback": Expect(LOGIN, 403, None, write=True),
    "console:offer-approve": Expect(LOGIN, None, None, write=True),
    "console:offer-edit": Expect(LOGIN, None, None, write=True),
    "console:offer-dismiss": Expect(LOGIN, None, None, write=True),
    "console:case-dismiss": Expect(LOGIN, None, None, write=True),
    "console:case-assign-me": Expect(LOGIN, None, None, write=True),
}


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                pattern.namespace or namespace,
            )
        else:
            assert isinstance(pattern, URLPattern)
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield prefix + str(pattern.pattern), name


def _admin_models() -> dict[str, str]:
    """URL-name prefix (``app_model``) → model label, for every model in the admin."""
    return {
        f"{m._meta.app_label}_{m._meta.model_name}": m._meta.label_lower
        for m in admin.site._registry
    }


@pytest.fixture
def samples(settings, admin_user, agent_user) -> dict[str, object]:
    """One row of every model in the admin, and the ids the API routes need."""
    settings.TELEGRAM_BOT_TOKEN = "123:matrix"
    settings.TELEGRAM_WEBHOOK_SECRET = "matrix-secret"
    people = [customer(f"m{i}") for i in range(6)]
    product = Product.objects.create(sku="SKU-M", name="Tea", category="drinks", price=4)
    Order.objects.create(external_id="O-M", customer=people[0], placed_at=NOW, total=9)
    Event.objects.create(customer=people[0], kind="login", occurred_at=NOW, product=product)
    shop = SyntheticShop.objects.create(
        seed=1, start=dt.date(2026, 1, 1), end=dt.date(2026, 6, 30), customers=1, params={}
    )
    synthetic_truth(people[0], shop)
    SyntheticResponse.objects.create(
        customer=people[0], offer_type="percent_off", purchase_boost=0, dropout_shock=0
    )
    campaign(control_share=0.3)
    after_scoring(run=scored_run([{"customer": c, "probability": 0.9} for c in people]), now=NOW)
    proposed = Intervention.objects.filter(state="proposed").values_list("pk", flat=True)
    interventions_approve(ids=list(proposed[:1]), actor=RULE, now=NOW)
    alert = Alert.objects.first()
    now = timezone.now()
    link_code_create(user=agent_user, now=now)
    ChatLink.objects.create(user=agent_user, chat_id=1, linked_at=now)
    QueueChat.objects.create(queue="escalations", chat_id=2)
    AlertCard.objects.create(alert=alert, chat_id=1, created_at=now)
    api_token_create(user=agent_user, now=now)
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    AccessAttempt.objects.create(username="x", ip_address="203.0.113.1", failures_since_start=1)
    AccessLog.objects.create(username="x", ip_address="203.0.113.1")
    AccessFailureLog.objects.create(username="x", ip_address="203.0.113.1")
    every = IntervalSchedule.objects.create(every=10, period="minutes")
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=52.5, longitude=13.4)
    ClockedSchedule.objects.create(clocked_time=now)
    if not PeriodicTask.objects.exists():
        PeriodicTask.objects.create(name="matrix", task="retention.tasks.x", interval=every)
    AgentCapacity.objects.create(user=agent_user, daily_capacity=20)
    return {"customer": people[0], "agent": agent_user}


def _clients(identity: str, users: dict) -> tuple[Client, APIClient]:
    web, api = Client(), APIClient()
    if identity != ANON:
        web.force_login(users[identity])
        _, token = api_token_create(user=users[identity], now=timezone.now())
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return web, api


def _sample_pk(label: str) -> str:
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    row = model._default_manager.order_by("pk").first()
    assert row is not None, f"the matrix has no {label} to open: add one to samples()"
    return str(row.pk)


def _admin_model_cases(name: str, route: str, prefixes: dict[str, str], identity: str):
    """(url, expected status) for one admin URL of a model, or None if not a model URL."""
    short = name.split(":", 1)[1] if name else ""
    for prefix, label in prefixes.items():
        if name is None and route.startswith(f"admin/{label.replace('.', '/')}/"):
            # The old-style object URL redirects to the change page, for anyone.
            return reverse(f"admin:{prefix}_changelist") + f"{_sample_pk(label)}/", 302
        view = short.removeprefix(f"{prefix}_") if short.startswith(f"{prefix}_") else None
        if view not in {"changelist", "add", "change", "delete", "history"}:
            continue
        assert label in ADMIN_MODELS, f"{label} is in the admin but not in ADMIN_MODELS"
        args = [] if view in {"changelist", "add"} else [_sample_pk(label)]
        url = reverse(name, args=args)
        if identity == ANON:
            return url, LOGIN
        allowed = ADMIN_MODELS[label][0 if identity == AGENT else 1]
        return url, 200 if view in allowed else 403
    return None


def _cases(identity: str, samples: dict) -> list[tuple[str, str, int | None, bool]]:
    """(key, url, expected, write) for every URL pattern; unknown patterns fail."""
    prefixes = _admin_models()
    cases, uncovered = [], []
    for route, name in _walk(get_resolver().url_patterns):
        key = name or route
        if route.startswith("admin/"):
            model_case = _admin_model_cases(name, route, prefixes, identity)
            if model_case is not None:
                cases.append((key, *model_case, False))
            elif name == "admin:app_list":
                for app in sorted({m._meta.app_label for m in admin.site._registry}):
                    expected = {ANON: LOGIN, ADMIN: 200}.get(identity)
                    if identity == AGENT:
                        expected = 200 if app in AGENT_APPS else 404
                    cases.append((f"{key}:{app}", f"/admin/{app}/", expected, False))
            elif name is None and re.fullmatch(r"admin/\(\?P<url>\.\*\)\$", route):
                cases.append((key, "/admin/no-such-page/", {ANON: LOGIN}.get(identity, 404), False))
            elif name in ADMIN_SITE:
                cases.append(
                    (key, _admin_site_url(name, samples), ADMIN_SITE[name].of(identity), False)
                )
            else:
                uncovered.append(key)
        elif key in ROUTES:
            expect = ROUTES[key]
            cases.append((key, _route_url(name, route, samples), expect.of(identity), expect.write))
        else:
            uncovered.append(key)
    assert not uncovered, f"URL patterns with no expectation in the matrix: {uncovered}"
    return cases


def _admin_site_url(name: str, samples: dict) -> str:
    person = samples["customer"]
    if name == "admin:view_on_site":
        return reverse(name, args=[ContentType.objects.get_for_model(person).pk, person.pk])
    if name == "admin:auth_user_password_change":
        return reverse(name, args=[_sample_pk("auth.user")])
    return reverse(name)


def _route_url(name: str | None, route: str, samples: dict) -> str:
    if name is None:
        return "/" + route
    if "<str:external_id>" in route:
        return reverse(name, kwargs={"external_id": samples["customer"].external_id})
    if "<str:name>" in route:
        return reverse(name, kwargs={"name": "shared"})
    if "<str:username>" in route:
        return reverse(name, kwargs={"username": samples["agent"].username})
    if "<str:pk>" in route:
        label = {"offer-prior": "retention.offer", "campaign-learning": "retention.campaign"}
        return reverse(name, kwargs={"pk": _sample_pk(label[name])})
    if "<int:customer_id>" in route:
        return reverse(name, kwargs={"customer_id": samples["customer"].pk})
    if "<int:pk>" in route:
        pk = {
            "console:campaign": lambda: Campaign.objects.first().pk,
            "console:model-promote": lambda: ModelVersion.objects.first().pk,
        }.get(name, lambda: Intervention.objects.filter(state="proposed").first().pk)()
        return reverse(name, kwargs={"pk": pk})
    return reverse(name)


def _fingerprint() -> tuple[int, ...]:
    from customers.models import Customer

    return (
        Customer.objects.count(),
        Order.objects.count(),
        Event.objects.count(),
        Product.objects.count(),
        AuditEntry.objects.count(),
        Intervention.objects.exclude(state="proposed").count(),
        *Queue.objects.order_by("name").values_list("daily_capacity", flat=True),
        *AgentCapacity.objects.order_by("pk").values_list("daily_capacity", flat=True),
    )


@pytest.mark.parametrize("identity", IDENTITIES)
def test_every_url_answers_each_identity_as_the_matrix_says(
    identity, samples, admin_user, agent_user
):
    web, api = _clients(identity, {AGENT: agent_user, ADMIN: admin_user})
    before = _fingerprint()
    wrong = []
    for key, url, expected, write in _cases(identity, samples):
        session = url.startswith(("/admin/", "/console/"))
        client = web if session else api
        if write:
            if expected is None:
                continue  # allowed writes are tested with real bodies in their own modules
            body = {} if session else []
            status = client.post(url, body, format="json").status_code
        else:
            status = client.get(url).status_code
        if status != expected:
            wrong.append(f"{key} {url}: expected {expected}, got {status}")
    assert not wrong, "\n".join(wrong)
    assert _fingerprint() == before, "a refused request changed data"


def test_allowed_writes_are_not_refused(samples, admin_user):
    _, api = _clients(ADMIN, {ADMIN: admin_user})
    for name in ("customers-bulk", "products-bulk", "orders-bulk", "events-bulk"):
        assert api.post(reverse(name), [], format="json").status_code == 200, name
    assert api.post(reverse("coupon-redeem"), {}, format="json").status_code == 400
