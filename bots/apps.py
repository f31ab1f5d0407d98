import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Chat bots"

    def ready(self) -> None:
        from django.conf import settings

        from bots.privacy import cards_erase, cards_export
        from customers.privacy import privacy_register
        from retention.signals import alerts_changed

        if not settings.TELEGRAM_BOT_TOKEN:
            log.info("TELEGRAM_BOT_TOKEN is not set: running without the chat bot")
        alerts_changed.connect(_push_cards, dispatch_uid="bots.push_cards")
        privacy_register(section="bots", export=cards_export, erase=cards_erase)


def _push_cards(sender, alert_ids, **kwargs) -> None:
    from django.conf import settings

    from bots.tasks import push_alert_cards_task

    if settings.TELEGRAM_BOT_TOKEN:
        push_alert_cards_task.delay()
