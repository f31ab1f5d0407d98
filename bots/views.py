"""Telegram's webhook. Who may call it: Telegram only, proven by the secret token it sends
in ``X-Telegram-Bot-Api-Secret-Token`` (set with ``manage.py set_webhook``)."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bots.runner import runner


@csrf_exempt  # not a browser form: authenticated by the secret token instead
@require_POST
def telegram_webhook(request: HttpRequest) -> HttpResponse:
    if not settings.TELEGRAM_BOT_TOKEN:
        return HttpResponseNotFound("the chat bot is not configured")
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    secret = settings.TELEGRAM_WEBHOOK_SECRET
    if not secret or not hmac.compare_digest(given, secret):
        return HttpResponseForbidden("wrong secret token")
    try:
        update = json.loads(request.body)
    except ValueError:
        return HttpResponse("not JSON", status=400)
    runner().process(update)
    return HttpResponse("ok")
