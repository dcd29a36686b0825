"""Shared fixtures: a small medical community, personas for the permission matrix, and a browser."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import factories as f
from yilian.common import policy


@pytest.fixture(scope="session", autouse=True)
def _static_root_exists():
    """WhiteNoise warns when STATIC_ROOT is missing; the suite serves static files from finders."""
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters (common.throttle) live in the cache: each test starts from zero."""
    from django.core.cache import cache

    cache.clear()


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


@dataclass
class Community:
    county: object
    township: object
    village: object
    other_township: object
    other_village: object


@pytest.fixture
def community(db) -> Community:
    county = f.make_org("海阳县人民医院", "county_hospital", code="COUNTY01")
    township = f.make_org("留格庄镇卫生院", "township_centre", county, code="TS01")
    village = f.make_org("留格庄村卫生室", "village_clinic", township, code="VC0101")
    other_township = f.make_org("发城镇卫生院", "township_centre", county, code="TS02")
    other_village = f.make_org("发城村卫生室", "village_clinic", other_township, code="VC0201")
    return Community(county, township, village, other_township, other_village)


@pytest.fixture
def staff_of(community):
    """``staff_of(role, org=None)`` → a Staff member holding ``role`` at ``org`` (county by default)."""

    def make(role: str, org=None, **kwargs):
        return f.make_staff(role, org or community.county, **kwargs)

    return make


@pytest.fixture
def login(client):
    def do(staff_or_user):
        user = getattr(staff_or_user, "user", staff_or_user)
        client.force_login(user)
        return client

    return do


PERSONA_ROLES = [r for r in policy.ROLE_LABELS]


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (its own browser download is not used)."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=os.environ.get("YILIAN_CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- Tests whose data must be committed (live_server, real concurrent clients) ------------------
# The audit log is append-only in the database itself (common migration 0002), so the flush that
# ends a transactional test would be refused. The triggers are lifted for that flush only and put
# back when the module ends.

_append_only = importlib.import_module("yilian.common.migrations.0002_audit_append_only")
IS_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _set_audit_triggers(on: bool) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE common_auditevent {'ENABLE' if on else 'DISABLE'} TRIGGER USER")
        elif connection.vendor == "sqlite":
            for sql in _append_only.SQLITE_REVERSE:
                cursor.execute(sql)
            if on:
                for sql in _append_only.SQLITE:
                    cursor.execute(sql)


@pytest.fixture(scope="module")
def _audit_triggers_back_on(django_db_setup, django_db_blocker):
    yield
    with django_db_blocker.unblock():
        _set_audit_triggers(True)


@pytest.fixture
def flushable_db(_audit_triggers_back_on, transactional_db):
    """``transactional_db`` whose end-of-test flush may empty the audit log."""
    yield
    _set_audit_triggers(False)


@pytest.fixture
def concurrent_db(_audit_triggers_back_on):
    """For tests marked ``@pytest.mark.django_db(transaction=IS_POSTGRES)``: on PostgreSQL the test
    commits so that other threads' connections see its data; on SQLite (which serialises writers)
    it runs in the usual rolled-back transaction."""
    yield
    if IS_POSTGRES:
        _set_audit_triggers(False)


@pytest.fixture
def immediate_tasks():
    """Run tasks (SMS delivery) at once, with an empty console SMS outbox."""
    from django.test import override_settings

    from tests.helpers import IMMEDIATE_TASKS
    from yilian.notifications.senders import ConsoleSmsSender

    ConsoleSmsSender.outbox.clear()
    with override_settings(TASKS=IMMEDIATE_TASKS):
        yield
    ConsoleSmsSender.outbox.clear()
