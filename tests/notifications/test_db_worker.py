"""With the production task backend (django_tasks_db): deferral reaches the queue, the worker sends."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from yilian.notifications import services
from yilian.notifications.models import SmsMessage
from yilian.notifications.senders import ConsoleSmsSender

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13500005555"


@pytest.fixture(autouse=True)
def database_tasks():
    ConsoleSmsSender.outbox.clear()
    with override_settings(TASKS=DATABASE_TASKS):
        yield
    ConsoleSmsSender.outbox.clear()


def test_deferred_sms_is_queued_to_run_after_quiet_hours(db, monkeypatch, django_capture_on_commit_callbacks):
    night = datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI)
    monkeypatch.setattr("django.utils.timezone.now", lambda: night)
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="复诊提醒")
    job = DBTaskResult.objects.get()
    assert job.task_path == "yilian.notifications.tasks.deliver_sms"
    assert job.run_after == datetime(2026, 3, 3, 7, 0, tzinfo=SHANGHAI)
    assert job.args_kwargs["args"] == [sms.pk]


def test_db_worker_delivers_a_queued_sms(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sms = services.send_sms(phone=PHONE, body="您的验证码是 111222", urgent=True)
    assert ConsoleSmsSender.outbox == []  # only queued: the worker sends
    # What ``yilian db_worker`` does with a claimed row (its loop closes connections, which a test
    # transaction on PostgreSQL cannot survive).
    job = DBTaskResult.objects.get()
    job.claim("test-worker")
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    worker.run_task(job)
    job.refresh_from_db()
    assert job.status == "SUCCESSFUL"
    sms.refresh_from_db()
    assert sms.status == SmsMessage.Status.SENT
    assert ConsoleSmsSender.outbox == [(PHONE, "您的验证码是 111222")]
