"""SMS delivery: console sender, quiet hours, retries, idempotence."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from yilian.notifications import services
from yilian.notifications.models import SmsMessage
from yilian.notifications.senders import ConsoleSmsSender

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def immediate_tasks():
    ConsoleSmsSender.outbox.clear()
    with override_settings(TASKS=IMMEDIATE):
        yield
    ConsoleSmsSender.outbox.clear()


def at(hour: int, minute: int = 0):
    moment = datetime(2026, 3, 2, hour, minute, tzinfo=SHANGHAI)
    return lambda: moment


@pytest.fixture
def clock(monkeypatch):
    def set_to(hour: int, minute: int = 0):
        monkeypatch.setattr("django.utils.timezone.now", at(hour, minute))

    return set_to


def test_sms_is_sent_through_console_sender_after_commit(db, clock, django_capture_on_commit_callbacks):
    clock(10)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="您的验证码是 123456", template_code="otp")
        assert ConsoleSmsSender.outbox == []  # nothing leaves before the transaction commits
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.SENT
    assert sms.attempts == 1
    assert sms.provider_id.startswith("console-")
    assert ConsoleSmsSender.outbox == [(PHONE, "您的验证码是 123456")]


def test_console_sender_logs_masked_phone_only(db, clock, caplog, django_capture_on_commit_callbacks):
    clock(10)
    with caplog.at_level("INFO", logger="yilian"), django_capture_on_commit_callbacks(execute=True):
        services.send_sms(phone=PHONE, body="hello")
    assert "139****5678" in caplog.text
    assert PHONE not in caplog.text
