"""Create the demo Admin and Agent logins (idempotent)."""

from __future__ import annotations

import os

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from core.roles import ADMIN, AGENT

DEMO_LOGINS = (("admin", ADMIN), ("agent", AGENT))


class Command(BaseCommand):
    help = "Create demo logins 'admin' (Admin) and 'agent' (Agent); password from DEMO_PASSWORD."

    def handle(self, *args, **options) -> str:
        password = os.environ.get("DEMO_PASSWORD", "retention-demo")
        for username, group in DEMO_LOGINS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = True
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=group)])
        return f"Demo logins: admin / {password} (Admin), agent / {password} (Agent)"
