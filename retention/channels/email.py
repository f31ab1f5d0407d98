"""Email through Django's email backend: SMTP in production, files under var/ in the demo."""

from __future__ import annotations

from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from retention.channels import PermanentFailure, TemporaryFailure


class EmailChannel:
    # SMTP has no idempotency: a message whose worker died mid-send is failed, not resent.
    dedupes_by_key = False
    concurrent = False  # one SMTP connection per batch

    @classmethod
    def configured(cls) -> bool:
        return bool(settings.EMAIL_BACKEND)

    def __init__(self) -> None:
        self.connection = get_connection()

    def send(self, *, recipient: str, subject: str, body: str, key: str, meta: dict) -> str:
        message_id = make_msgid(idstring=key, domain=settings.RETENTION_MAIL_DOMAIN)
        message = EmailMessage(
            subject=subject,
            body=body,
            to=[recipient],
            connection=self.connection,
            headers={"Message-ID": message_id, "X-Idempotency-Key": key},
        )
        try:
            message.send()
        except (ConnectionError, TimeoutError) as exc:
            raise TemporaryFailure(f"mail server unreachable: {exc}") from exc
        except OSError as exc:
            raise TemporaryFailure(f"mail server error: {exc}") from exc
        except ValueError as exc:
            raise PermanentFailure(f"bad address or content: {exc}") from exc
        return message_id

    def close(self) -> None:
        self.connection.close()
