"""Who may use a console view: every view is wrapped in exactly one of these.

Anonymous visitors are sent to log in; signed-in accounts without the role get 403 (an
Agent on an Admin page, or a user who is no staff of the shop at all).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from core.permissions import in_roles
from core.roles import ADMIN, AGENT


def _requires(*roles: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not in_roles(request.user, *roles):
                raise PermissionDenied("This page is for the " + " and ".join(roles) + " roles.")
            return view(request, *args, **kwargs)

        guarded.console_roles = roles
        return guarded

    return decorate


staff_required = _requires(ADMIN, AGENT)
admin_required = _requires(ADMIN)
