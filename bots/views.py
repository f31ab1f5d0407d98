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

NOT_JSON = "not JSON"
NOT_AN_UPDATE = "not a Telegram update: a JSON object with an integer update_id"


@csrf_exempt  # not a browser form: authenticated by the secret token instead
@require_POST
def telegram_webhook(request: HttpRequest) -> HttpResponse:
    if not settings.TELEGRAM_BOT_TOKEN:
        return HttpResponseNotFound("the chat bot is not configured")
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
    secret = settings.TELEGRAM_WEBHOOK_SECRET
    if not secret or not hmac.compare_digest(given, secret.encode()):
        return HttpResponseForbidden("wrong secret token")
    try:
        update = json.loads(request.body)
    except (ValueError, RecursionError):
        return HttpResponse(NOT_JSON, status=400)
    if not (isinstance(update, dict) and type(update.get("update_id")) is int):
        return HttpResponse(NOT_AN_UPDATE, status=400)
    runner().process(update)
    return HttpResponse("ok")
