"""Who may use an API endpoint, by staff role: every view names one of these explicitly."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.roles import ADMIN, AGENT


def in_roles(user, *names: str) -> bool:
    """Whether ``user`` is active staff with one of these roles (superusers have all):
    the one role check behind the API, the console and the bot."""
    return _in_groups(user, set(names))


def _in_groups(user, names: set[str]) -> bool:
    # Staff status is the switch that turns an account off without touching its groups,
    # and it gates the admin too: an account without it reads nothing here either.
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name__in=names).exists()


class IsAdminRole(BasePermission):
    """Admins: they own the shop data and may write it."""

    message = "Only the Admin role may do this."

    def has_permission(self, request, view) -> bool:
        return _in_groups(request.user, {ADMIN})


class IsStaffRole(BasePermission):
    """Admins and Agents: staff who may read shop data."""

    message = "Only the Admin and Agent roles may read this."

    def has_permission(self, request, view) -> bool:
        return _in_groups(request.user, {ADMIN, AGENT})
