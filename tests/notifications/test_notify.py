"""Templated notifications: rendering, inbox message, SMS when the template says so."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests import factories as f
from yilian.notifications import services
from yilian.notifications.models import InboxMessage, MessageTemplate, SmsMessage
from yilian.notifications.senders import ConsoleSmsSender

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13700001111"


@pytest.fixture(autouse=True)
def immediate_tasks(monkeypatch):
    ConsoleSmsSender.outbox.clear()
    moment = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
    monkeypatch.setattr("django.utils.timezone.now", lambda: moment)
    with override_settings(TASKS=IMMEDIATE):
        yield
    ConsoleSmsSender.outbox.clear()


@pytest.fixture
def account(db):
    return f.make_patient_account(PHONE)


CANCELLED = {
    "patient_name": "张三",
    "org_name": "海阳县人民医院",
    "department_name": "心内科",
    "doctor_name": "李明",
    "session_date": "3月3日",
    "session_label": "上午",
    "booking_no": "A0012",
    "reason": "医生外出会诊",
}


@pytest.mark.parametrize("code", ["otp", "generic", "booking_cancelled_by_hospital", "appointment_reminder"])
def test_default_templates_are_shipped(db, code):
    assert MessageTemplate.objects.filter(code=code).exists()


def test_clinic_cancellation_renders_and_reaches_inbox_and_phone(account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.notify(
            recipient=account.user,
            template_code="booking_cancelled_by_hospital",
            context=CANCELLED,
            phone=PHONE,
            link="/h5/bookings/",
        )
    inbox = InboxMessage.objects.get(recipient=account.user)
    assert inbox.title == "停诊通知"
    assert "心内科李明医生3月3日上午停诊" in inbox.body
    assert "医生外出会诊" in inbox.body and "A0012" in inbox.body
    assert inbox.link == "/h5/bookings/"
    assert inbox.urgent  # the template is urgent: a cancellation must not wait for the morning
    assert sent.sms is not None
    assert ConsoleSmsSender.outbox == [(PHONE, inbox.body)]


def test_rendering_does_not_html_escape_plain_text(account):
    services.notify(
        recipient=account.user, template_code="generic", context={"title": "A&B", "body": "<不变>"}
    )
    message = InboxMessage.objects.get()
    assert (message.title, message.body) == ("A&B", "<不变>")


def test_template_edited_in_admin_is_used(account):
    MessageTemplate.objects.filter(code="appointment_reminder").update(
        title="温馨提示", body="{{ patient_name }}，明天{{ when }}别忘了来医院。"
    )
    services.notify(
        recipient=account.user,
        template_code="appointment_reminder",
        context={"patient_name": "王五", "when": "08:30"},
    )
    message = InboxMessage.objects.get()
    assert (message.title, message.body) == ("温馨提示", "王五，明天08:30别忘了来医院。")


def test_no_sms_without_phone_or_when_template_disables_sms(account, django_capture_on_commit_callbacks):
    MessageTemplate.objects.filter(code="generic").update(sms_enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.notify(recipient=account.user, template_code="generic", context={"body": "x"}, phone=PHONE)
        services.notify(recipient=account.user, template_code="appointment_reminder", context={})
    assert InboxMessage.objects.count() == 2
    assert not SmsMessage.objects.exists()


def test_patient_without_account_gets_the_sms_only(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.notify(recipient=None, template_code="otp", context={"code": "246810"}, phone=PHONE)
    assert sent.inbox is None
    assert ConsoleSmsSender.outbox == [(PHONE, "您的验证码为 246810，5 分钟内有效。请勿将验证码告诉他人。")]


def test_urgent_argument_overrides_the_template(account, monkeypatch, django_capture_on_commit_callbacks):
    night = datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI)
    monkeypatch.setattr("django.utils.timezone.now", lambda: night)
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.notify(
            recipient=account.user,
            template_code="booking_cancelled_by_hospital",
            context=CANCELLED,
            phone=PHONE,
            urgent=False,
        )
    sent.sms.refresh_from_db()
    assert sent.sms.status == SmsMessage.Status.DEFERRED
    assert ConsoleSmsSender.outbox == []


def test_unknown_template_falls_back_to_generic(account):
    services.notify(recipient=account.user, template_code="no_such_code", context={"title": "T", "body": "B"})
    message = InboxMessage.objects.get()
    assert (message.template_code, message.title, message.body) == ("no_such_code", "T", "B")


def test_template_with_broken_syntax_is_refused_by_validation(db):
    template = MessageTemplate(code="broken", title="x", body="{% if %}")
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert "body" in caught.value.message_dict


def test_broken_template_in_database_never_fails_the_caller(account):
    MessageTemplate.objects.create(code="broken", title="坏模板", body="{% if %}")
    services.notify(recipient=account.user, template_code="broken", context={"body": "原文"})
    assert InboxMessage.objects.get().body == "原文"


def test_invalid_phone_on_file_skips_the_sms_but_keeps_the_inbox_message(account):
    sent = services.notify(
        recipient=account.user, template_code="booking_cancelled_by_hospital", context=CANCELLED, phone="n/a"
    )
    assert sent.sms is None
    assert InboxMessage.objects.filter(recipient=account.user).exists()
