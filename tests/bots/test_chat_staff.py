"""Who the bot serves: the same staff the admin and the API serve (audit P2-4)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bots.models import ChatLink
from bots.selectors import staff_for_chat

pytestmark = pytest.mark.django_db


def test_a_linked_agent_is_served(agent_user):
    ChatLink.objects.create(user=agent_user, chat_id=41, linked_at=timezone.now())
    assert staff_for_chat(41) == agent_user


def test_an_agent_without_staff_status_is_not_served_in_chat(agent_user):
    ChatLink.objects.create(user=agent_user, chat_id=42, linked_at=timezone.now())
    agent_user.is_staff = False
    agent_user.save()
    assert staff_for_chat(42) is None
