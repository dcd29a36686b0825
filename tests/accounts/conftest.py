"""Fixtures for the accounts tests: a controllable clock, the SMS outbox, sign-in helpers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from yilian.accounts import services
from yilian.notifications.senders import ConsoleSmsSender

IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
PASSWORD = "Yilian-test-2026"  # tests/factories.make_staff's default


class Clock:
    """``timezone.now()`` under the test's control (time travel without sleeping)."""

    def __init__(self, monkeypatch):
        self._real = timezone.now
        self.offset = timedelta(0)
        monkeypatch.setattr(timezone, "now", lambda: self._real() + self.offset)

    def advance(self, **kwargs) -> None:
        self.offset += timedelta(**kwargs)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def outbox():
    """The console SMS sender's outbox, with delivery run at once (tasks backend: immediate)."""
    ConsoleSmsSender.outbox.clear()
    with override_settings(TASKS=IMMEDIATE_TASKS):
        yield ConsoleSmsSender.outbox
    ConsoleSmsSender.outbox.clear()


@pytest.fixture
def send_code(outbox, django_capture_on_commit_callbacks):
    """``send_code(phone, ip)`` → the 6-digit code as the patient's phone received it."""

    def send(phone: str = "13800138000", ip: str = "10.0.0.1") -> str:
        with django_capture_on_commit_callbacks(execute=True):
            services.request_code(phone=phone, ip=ip)
        sent_to, body = outbox[-1]
        assert sent_to == phone
        return re.search(r"\d{6}", body).group(0)

    return send
