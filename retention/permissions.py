"""Who may use an API endpoint: every view names one of these explicitly."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from retention.roles import ADMIN, AGENT


def _in_groups(user, names: set[str]) -> bool:
    if not (user and user.is_authenticated and user.is_active):
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
