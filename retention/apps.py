from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "retention"
    verbose_name = "Retention workflow"

    def ready(self) -> None:
        from customers.privacy import privacy_register
        from customers.signals import customer_erased
        from ml.signals import champion_changed
        from retention.services.privacy import workflow_erase, workflow_export
        from retention.signals import outbox_due

        privacy_register(section="retention", export=workflow_export, erase=workflow_erase)
        customer_erased.connect(_record_erasure, dispatch_uid="retention.record_erasure")
        outbox_due.connect(_send_due, dispatch_uid="retention.send_due")
        champion_changed.connect(_record_champion, dispatch_uid="retention.record_champion")


def _record_erasure(sender, *, customer, actor, via, at, counts, **kwargs) -> None:
    from retention.services.privacy import erasure_record

    erasure_record(customer=customer, actor=actor, via=via, at=at, counts=counts)


def _send_due(sender, *, message_ids, **kwargs) -> None:
    """Services queue messages; the send task, which imports services, takes them from here."""
    from retention.tasks import send_outbox_task

    send_outbox_task.delay(message_ids)


def _record_champion(sender, *, version, previous, action, user, via, **kwargs) -> None:
    from django.utils import timezone

    from retention.services.audit import champion_change_record

    champion_change_record(
        version=version, previous=previous, action=action, user=user, via=via, at=timezone.now()
    )
