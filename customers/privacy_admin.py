"""The privacy actions on the admin's customer list, for the Admin role only: they call
the same services as the ``customer_export`` and ``customer_erase`` commands and the API."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from core.roles import ADMIN
from customers.privacy import customer_erase, customer_export

# Each export reads every scoring-run file; a privacy request names one person anyway.
MAX_SELECTED = 20
TOO_MANY_SELECTED = "Select at most {limit} customers for a privacy action (you chose {count})."
ERASE_TITLE = "Erase personal data?"
ERASED_DONE = "Erased the personal data of {count} customer(s)."


class PrivacyActions:
    """Mixin for the customer ModelAdmin: export and erase the selected customers."""

    actions = ["export_selected", "erase_selected"]

    def has_privacy_permission(self, request) -> bool:
        user = request.user
        return user.is_active and (user.is_superuser or user.groups.filter(name=ADMIN).exists())

    def _too_many(self, request, queryset) -> bool:
        count = queryset.count()
        if count > MAX_SELECTED:
            message = TOO_MANY_SELECTED.format(limit=MAX_SELECTED, count=count)
            self.message_user(request, message, messages.ERROR)
        return count > MAX_SELECTED

    @admin.action(description="Export all data of selected customers", permissions=["privacy"])
    def export_selected(self, request, queryset):
        if self._too_many(request, queryset):
            return None
        now = timezone.now()
        documents = [customer_export(customer=c, now=now) for c in queryset]
        response = HttpResponse(
            json.dumps(documents, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
            content_type="application/json",
        )
        name = f"customer-export-{now:%Y%m%d-%H%M%S}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description="Erase personal data of selected customers", permissions=["privacy"])
    def erase_selected(self, request, queryset):
        if self._too_many(request, queryset):
            return None
        if request.POST.get("confirm") != "yes":
            # Irreversible: ask once more, listing who will be erased.
            context = {
                **self.admin_site.each_context(request),
                "title": ERASE_TITLE,
                "opts": self.model._meta,
                "customers": list(queryset),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            template = "admin/customers/customer/erase_confirmation.html"
            return TemplateResponse(request, template, context)
        now = timezone.now()
        for customer in queryset:
            customer_erase(customer=customer, actor=request.user, via="admin", now=now)
        self.message_user(request, ERASED_DONE.format(count=len(queryset)))
        return None
