import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Chat bots"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from bots.privacy import cards_erase, cards_export
        from customers.privacy import privacy_register
        from customers.signals import customer_erased
        from retention.signals import alerts_changed

        worker_ready.connect(_say_if_without_bot, dispatch_uid="bots.say_if_without_bot")
        alerts_changed.connect(_push_cards, dispatch_uid="bots.push_cards")
        privacy_register(section="bots", export=cards_export, erase=cards_erase)
        customer_erased.connect(_redraw_cards, dispatch_uid="bots.redraw_cards")


def _say_if_without_bot(**kwargs) -> None:
    """Said once by a starting worker, the process that would push the cards, rather than
    by every management command."""
    from django.conf import settings

    if not settings.TELEGRAM_BOT_TOKEN:
        log.info("TELEGRAM_BOT_TOKEN is not set: this worker pushes no alert cards to chat")


def _push_cards(sender, alert_ids, **kwargs) -> None:
    from django.conf import settings

    from bots.tasks import push_alert_cards_task

    if settings.TELEGRAM_BOT_TOKEN:
        push_alert_cards_task.delay()


def _redraw_cards(sender, customer, **kwargs) -> None:
    """Chats keep the cards posted before an erasure; draw them again once it commits."""
    from django.conf import settings
    from django.db import transaction

    from bots.models import AlertCard
    from bots.tasks import redraw_alert_cards_task

    if not settings.TELEGRAM_BOT_TOKEN:
        return
    posted = AlertCard.objects.filter(alert__customer=customer, message_id__isnull=False)
    alert_ids = sorted(set(posted.values_list("alert_id", flat=True)))
    if alert_ids:
        transaction.on_commit(lambda: redraw_alert_cards_task.delay(alert_ids))
