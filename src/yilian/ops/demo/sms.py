"""The demo's SMS "gateway": prints each message on the console of ``yilian up``.

A demo has no SMS gateway, yet a visitor must be able to sign in as the demo patient
(13800000001) with a one-time code. ``yilian up`` uses this sender for its task worker only when
the database holds the demo county (its ``demo.generate`` audit row) and no real sender is
configured (``YILIAN_SMS_SENDER`` unset). The phone is shown masked, as everywhere; the message
body, which carries the code, is the point of it.
"""

from __future__ import annotations

import sys

from yilian.common.masking import mask_phone
from yilian.notifications.senders import ConsoleSmsSender

PATH = "yilian.ops.demo.sms.DemoSmsSender"


class DemoSmsSender(ConsoleSmsSender):
    """ConsoleSmsSender that also prints the message, for demo sign-ins."""

    def send(self, phone: str, body: str) -> str:
        print(f"[演示短信 demo SMS] {mask_phone(phone)}: {body}", file=sys.stdout, flush=True)
        return super().send(phone, body)
