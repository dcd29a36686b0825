"""SMS senders (短信通道): the pluggable edge between Yilian and a hospital's SMS gateway.

``settings.SMS_SENDER`` names a class by dotted path. A hospital plugs its own gateway in by writing
a class with a ``send(phone, body) -> provider_id`` method that raises ``SmsSendError`` when the
gateway refuses or cannot be reached; delivery retries and status tracking live in
``notifications.services`` and do not depend on the gateway.
"""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar, Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from yilian.common.masking import mask_phone

logger = logging.getLogger("yilian")


class SmsSendError(Exception):
    """The gateway did not accept the message; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class SmsSender(Protocol):
    """What a gateway adapter provides."""

    def send(self, phone: str, body: str) -> str:
        """Send one message; return the gateway's message id; raise ``SmsSendError`` on failure."""
        ...


class ConsoleSmsSender:
    """The default sender for development and first runs: records messages, sends nothing.

    ``outbox`` (a class attribute, shared by all instances) keeps ``(phone, body)`` of every message
    so that tests can read what would have been sent. The log line carries the masked phone only
    (identifiers are never logged).
    """

    outbox: ClassVar[list[tuple[str, str]]] = []

    def send(self, phone: str, body: str) -> str:
        provider_id = f"console-{uuid.uuid4().hex[:16]}"
        type(self).outbox.append((phone, body))
        logger.info("SMS to %s (%s): %d characters", mask_phone(phone), provider_id, len(body))
        return provider_id


def get_sender() -> SmsSender:
    """An instance of the class named by ``settings.SMS_SENDER``."""
    path = getattr(settings, "SMS_SENDER", "") or "yilian.notifications.senders.ConsoleSmsSender"
    return import_string(path)()
