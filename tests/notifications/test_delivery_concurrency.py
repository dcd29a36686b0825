"""Two workers deliver the same SMS at the same moment: it is sent once (PostgreSQL, real clients)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from yilian.notifications import services
from yilian.notifications.models import SmsMessage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite serialises every write transaction"
)


class SlowSender:
    """A gateway that takes a while, so that both workers are in flight together."""

    sent: list[str] = []

    def send(self, phone: str, body: str) -> str:
        time.sleep(0.2)
        type(self).sent.append(body)
        return "gw"


@pytest.mark.usefixtures("flushable_db")  # transactional: each thread has its own connection
def test_concurrent_deliveries_send_once(settings):
    settings.SMS_SENDER = "tests.notifications.test_delivery_concurrency.SlowSender"
    SlowSender.sent = []
    sms = SmsMessage.objects.create(phone="13900000000", body="一次", urgent=True, created_at=timezone.now())
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def worker():
        try:
            start.wait()
            outcomes.append(services.deliver_sms(sms_id=sms.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert SlowSender.sent == ["一次"]
    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == (SmsMessage.Status.SENT, 1)
    assert len(outcomes) == 8
