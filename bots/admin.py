"""Chat links, link codes, queue chats and the cards sent. An agent adds a link code for
themself here; admins see everyone's."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from bots.models import AlertCard, ChatLink, LinkCode, QueueChat
from bots.services import link_code_create
from core.paginators import LargeTableAdmin
from core.roles import ADMIN


@admin.register(LinkCode)
class LinkCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "user", "created_at", "expires_at", "used_at")
    fields = ("code", "expires_at", "used_at", "how_to_link")
    readonly_fields = fields

    def get_queryset(self, request):
        codes = super().get_queryset(request).select_related("user")
        everyone = request.user.is_superuser or request.user.groups.filter(name=ADMIN).exists()
        return codes if everyone else codes.filter(user=request.user)

    def save_model(self, request, obj, form, change) -> None:
        created = link_code_create(user=request.user, now=timezone.now())
        obj.pk, obj.code = created.pk, created.code

    @admin.display(description="How to link")
    def how_to_link(self, obj: LinkCode) -> str:
        if obj.pk is None:
            return "Save to get a code, valid for 10 minutes."
        return f"Send /start {obj.code} to the bot from the chat that should receive your alerts."

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChatLink)
class ChatLinkAdmin(admin.ModelAdmin):
    list_display = ("user", "platform", "chat_id", "linked_at")
    raw_id_fields = ("user",)


@admin.register(QueueChat)
class QueueChatAdmin(admin.ModelAdmin):
    list_display = ("queue", "platform", "chat_id")


@admin.register(AlertCard)
class AlertCardAdmin(LargeTableAdmin):
    list_display = ("alert", "chat_id", "state", "sent_at", "attempts", "last_error")
    list_filter = ("state",)
    raw_id_fields = ("alert",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the card pusher's record of what it sent

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
