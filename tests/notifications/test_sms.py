"""SMS delivery: console sender, quiet hours, retries, idempotence."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from yilian.common.errors import InvalidInput
from yilian.notifications import services
from yilian.notifications.models import SmsMessage
from yilian.notifications.senders import ConsoleSmsSender, SmsSendError, get_sender

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def immediate_tasks():
    ConsoleSmsSender.outbox.clear()
    with override_settings(TASKS=IMMEDIATE):
        yield
    ConsoleSmsSender.outbox.clear()


@pytest.fixture
def clock(monkeypatch):
    """``clock(hour, minute=0, day=2)`` sets the time to 2026-03-<day> hour:minute in Shanghai."""

    def set_to(hour: int, minute: int = 0, day: int = 2):
        moment = datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)

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


class FlakySender:
    """A gateway that fails ``failures`` times, then accepts."""

    failures = 0
    calls: list[str] = []

    def send(self, phone: str, body: str) -> str:
        type(self).calls.append(body)
        if type(self).failures > 0:
            type(self).failures -= 1
            raise SmsSendError("gateway timeout")
        return "gw-1"


class RefusingSender:
    def send(self, phone: str, body: str) -> str:
        raise SmsSendError("number blacklisted", retryable=False)


@pytest.fixture
def flaky(settings):
    settings.SMS_SENDER = "tests.notifications.test_sms.FlakySender"
    FlakySender.calls = []
    return FlakySender


def test_non_urgent_sms_in_quiet_hours_is_deferred_to_their_end(
    db, clock, django_capture_on_commit_callbacks
):
    clock(23, 30)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="明天上午复诊")
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.DEFERRED
    assert sms.not_before == datetime(2026, 3, 3, 7, 0, tzinfo=SHANGHAI)
    assert ConsoleSmsSender.outbox == []


def test_quiet_hours_after_midnight_end_the_same_morning(db, clock, django_capture_on_commit_callbacks):
    clock(3, 15)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="提醒")
    sms.refresh_from_db()
    assert sms.not_before == datetime(2026, 3, 2, 7, 0, tzinfo=SHANGHAI)


def test_urgent_sms_goes_out_during_quiet_hours(db, clock, django_capture_on_commit_callbacks):
    clock(23, 30)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="您的验证码是 654321", urgent=True)
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.SENT
    assert ConsoleSmsSender.outbox == [(PHONE, "您的验证码是 654321")]


def test_deferred_sms_is_sent_by_the_safety_net_after_quiet_hours(
    db, clock, django_capture_on_commit_callbacks
):
    clock(23, 30)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="明天上午复诊")
    clock(6, 50, day=3)
    assert services.dispatch_due_sms() == 0
    assert ConsoleSmsSender.outbox == []
    clock(7, 5, day=3)
    call_command("dispatch_sms", stdout=StringIO())
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.SENT
    assert ConsoleSmsSender.outbox == [(PHONE, "明天上午复诊")]


def test_sms_queued_before_quiet_hours_but_delivered_in_them_waits(db, clock):
    clock(21, 0)
    sms = SmsMessage.objects.create(
        phone=PHONE, body="x", created_at=datetime(2026, 3, 2, 21, tzinfo=SHANGHAI)
    )
    clock(22, 10)
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.DEFERRED
    sms.refresh_from_db()
    assert sms.not_before == datetime(2026, 3, 3, 7, 0, tzinfo=SHANGHAI)
    assert sms.attempts == 0
    assert ConsoleSmsSender.outbox == []


def test_failed_delivery_is_retried_with_backoff_then_sent(
    db, clock, flaky, django_capture_on_commit_callbacks
):
    flaky.failures = 1
    clock(10)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="复诊提醒")
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.QUEUED
    assert sms.attempts == 1
    assert "gateway timeout" in sms.last_error
    assert sms.not_before == datetime(2026, 3, 2, 10, 1, tzinfo=SHANGHAI)
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.QUEUED  # not due yet: untouched
    clock(10, 1)
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.SENT
    sms.refresh_from_db()
    assert (sms.attempts, sms.provider_id, sms.last_error) == (2, "gw-1", "")


def test_delivery_gives_up_after_max_attempts(db, clock, flaky, settings, django_capture_on_commit_callbacks):
    settings.SMS_MAX_ATTEMPTS = 3
    flaky.failures = 10
    clock(10)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="复诊提醒")
    for minute in (1, 3):  # backoff: 1 min after the first failure, 2 min after the second
        clock(10, minute)
        services.deliver_sms(sms_id=sms.pk)
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.FAILED
    assert sms.attempts == 3
    assert "gateway timeout" in sms.last_error
    clock(11)
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.FAILED
    assert len(flaky.calls) == 3


def test_refused_number_fails_without_retry(db, clock, settings, django_capture_on_commit_callbacks):
    settings.SMS_SENDER = "tests.notifications.test_sms.RefusingSender"
    clock(10)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="x")
    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == (SmsMessage.Status.FAILED, 1)
    assert "blacklisted" in sms.last_error


def test_delivery_run_twice_sends_once(db, clock, django_capture_on_commit_callbacks):
    clock(10)
    sms = SmsMessage.objects.create(
        phone=PHONE, body="一次", created_at=datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    )
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.SENT
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.SENT
    clock(10, 30)
    services.dispatch_due_sms(grace=timedelta(0))
    assert ConsoleSmsSender.outbox == [(PHONE, "一次")]
    sms.refresh_from_db()
    assert sms.attempts == 1


def test_delivery_skips_a_row_another_worker_has_claimed(db, clock):
    clock(10)
    sms = SmsMessage.objects.create(
        phone=PHONE,
        body="x",
        status=SmsMessage.Status.SENDING,
        created_at=datetime(2026, 3, 2, 10, tzinfo=SHANGHAI),
    )
    assert services.deliver_sms(sms_id=sms.pk) == SmsMessage.Status.SENDING
    assert ConsoleSmsSender.outbox == []


def test_safety_net_closes_rows_stuck_mid_send_without_resending(db, clock):
    clock(10)
    sms = SmsMessage.objects.create(
        phone=PHONE,
        body="x",
        status=SmsMessage.Status.SENDING,
        claimed_at=datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI),
        created_at=datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI),
    )
    services.dispatch_due_sms()
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.FAILED
    assert ConsoleSmsSender.outbox == []


def test_sms_is_not_sent_when_the_transaction_rolls_back(db, clock, django_capture_on_commit_callbacks):
    clock(10)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.send_sms(phone=PHONE, body="x", urgent=True)
        raise RuntimeError("booking failed")
    assert ConsoleSmsSender.outbox == []
    assert not SmsMessage.objects.exists()


def test_sms_sender_is_loaded_from_settings(settings):
    settings.SMS_SENDER = "tests.notifications.test_sms.RefusingSender"
    assert isinstance(get_sender(), RefusingSender)


def test_sms_body_is_encrypted_at_rest(db, clock):
    clock(10)
    sms = services.send_sms(phone=PHONE, body="张三 明日复诊")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body, phone FROM notifications_smsmessage WHERE id = %s", [sms.pk])
        stored_body, stored_phone = cursor.fetchone()
    assert "张三" not in stored_body and PHONE not in stored_phone
    assert SmsMessage.objects.get(pk=sms.pk).body == "张三 明日复诊"


def test_sign_in_code_is_not_kept_after_sending(db, clock, django_capture_on_commit_callbacks):
    clock(10)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="您的验证码是 135790", template_code="otp", urgent=True)
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.SENT
    assert "135790" not in sms.body
    assert ConsoleSmsSender.outbox == [(PHONE, "您的验证码是 135790")]


def test_sign_in_code_is_not_kept_after_failing(db, clock, settings, django_capture_on_commit_callbacks):
    settings.SMS_SENDER = "tests.notifications.test_sms.RefusingSender"
    clock(10)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="您的验证码是 135790", template_code="otp", urgent=True)
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.FAILED
    assert "135790" not in sms.body


@pytest.mark.parametrize("phone", ["", "abc", "1391234567890123456789", "139 1234 ５６７８"])
def test_invalid_phone_is_refused(db, clock, phone):
    clock(10)
    with pytest.raises(InvalidInput) as caught:
        services.send_sms(phone=phone, body="x")
    assert caught.value.field == "phone"
    assert not SmsMessage.objects.exists()


def test_phone_separators_are_dropped(db, clock):
    clock(10)
    assert services.send_sms(phone=" 139-1234-5678 ", body="x").phone == PHONE
