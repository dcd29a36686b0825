"""Concurrent sign-in attempts against real PostgreSQL: the lockout count, the OTP limits and the
single use of a code hold when requests race (ARCHITECTURE.md: concurrency is designed)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from tests import factories as f
from yilian.accounts import services
from yilian.accounts.errors import AccountLocked, CodeRateLimited, InvalidCredentials
from yilian.accounts.models import OneTimeCode, PatientAccount, User
from yilian.common.models import AuditEvent
from yilian.common.policy import DOCTOR
from yilian.notifications.senders import ConsoleSmsSender

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"],
        reason="needs PostgreSQL: SQLite serialises every write transaction",
    ),
]

PHONE = "13800138000"
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def race(n: int, fn):
    """Run ``fn`` in ``n`` threads released together; return each result or exception."""
    barrier = threading.Barrier(n)

    def run(_):
        try:
            barrier.wait()
            return fn()
        except Exception as exc:
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@override_settings(STAFF_LOCKOUT_THRESHOLD=6)
def test_concurrent_wrong_passwords_all_count_and_lock_once(flushable_db):
    org = f.make_org("海阳县人民医院", "county_hospital", code="COUNTY01")
    staff = f.make_staff(DOCTOR, org, username="lidoc")
    results = race(6, lambda: services.sign_in_staff(username="lidoc", password="wrong"))
    assert all(isinstance(r, InvalidCredentials | AccountLocked) for r in results)
    user = User.objects.get(pk=staff.user.pk)
    assert user.locked_until is not None  # no increment was lost
    assert AuditEvent.objects.filter(action="auth.locked").count() == 1
    assert sum(isinstance(r, AccountLocked) for r in results) == 1


@override_settings(TASKS=IMMEDIATE_TASKS, OTP_MIN_INTERVAL_SECONDS=0, OTP_MAX_PER_PHONE_PER_HOUR=3)
def test_concurrent_code_requests_respect_the_hourly_limit(flushable_db):
    results = race(8, lambda: services.request_code(phone=PHONE, ip="10.0.0.1"))
    assert sum(isinstance(r, OneTimeCode) for r in results) == 3
    assert sum(isinstance(r, CodeRateLimited) for r in results) == 5
    assert OneTimeCode.objects.count() == 3


@override_settings(TASKS=IMMEDIATE_TASKS, OTP_MIN_INTERVAL_SECONDS=60)
def test_concurrent_code_requests_respect_the_minimum_interval(flushable_db):
    results = race(6, lambda: services.request_code(phone=PHONE, ip="10.0.0.1"))
    assert sum(isinstance(r, OneTimeCode) for r in results) == 1
    assert OneTimeCode.objects.count() == 1


@override_settings(TASKS=IMMEDIATE_TASKS)
def test_a_code_submitted_concurrently_signs_in_once(flushable_db):
    ConsoleSmsSender.outbox.clear()
    services.request_code(phone=PHONE, ip="10.0.0.1")
    code = re.search(r"\d{6}", ConsoleSmsSender.outbox[-1][1]).group(0)
    results = race(6, lambda: services.verify_code(phone=PHONE, code=code, ip="10.0.0.1"))
    assert sum(isinstance(r, User) for r in results) == 1
    assert PatientAccount.objects.count() == 1
    ConsoleSmsSender.outbox.clear()
