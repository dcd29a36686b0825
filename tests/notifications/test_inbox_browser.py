"""The inbox in a real browser: a patient reads a clinic cancellation and marks it read (HTMX)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.utils import timezone

from tests.helpers import patient_signs_in
from yilian.accounts.models import PatientAccount
from yilian.common import crypto
from yilian.notifications import services
from yilian.notifications.models import InboxMessage

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("flushable_db")]
_default_templates = importlib.import_module("yilian.notifications.migrations.0004_default_templates")

PHONE = "13812340000"


def test_patient_reads_a_cancellation_and_marks_it_read(live_server, browser, artifacts, immediate_tasks):
    _default_templates.forwards(apps, None)  # an earlier transactional test's flush removed them
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = context.new_page()
    try:
        patient_signs_in(page, live_server.url, PHONE)
        account = PatientAccount.objects.get(phone_hash=crypto.blind_index("phone", PHONE))
        services.notify(
            recipient=account.user,
            template_code="booking_cancelled_by_hospital",
            context={
                "patient_name": "张三",
                "org_name": "海阳县人民医院",
                "department_name": "心内科",
                "session_date": "3月3日",
                "session_label": "上午",
                "booking_no": "A1",
            },
        )
        InboxMessage.objects.create(
            recipient=account.user, title="检查报告已出", body="请查看。", created_at=timezone.now()
        )
        page.goto(f"{live_server.url}/notifications/mine/")
        page.wait_for_selector("text=停诊通知")
        assert page.inner_text("#unread-count") == "2"
        cancellation = InboxMessage.objects.get(template_code="booking_cancelled_by_hospital")
        page.click(f"#msg-{cancellation.pk} button:has-text('标为已读')")
        page.wait_for_selector(f"#msg-{cancellation.pk}.read")
        assert page.inner_text("#unread-count") == "1"
        page.screenshot(path=str(artifacts / "notifications-patient-inbox.png"), full_page=True)
        cancellation.refresh_from_db()
        assert cancellation.read_at is not None
    finally:
        context.close()
