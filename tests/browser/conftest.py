"""Browser tests run against ``live_server``, so their database is transactional and is flushed
after each test. The audit log is append-only in the database itself (common migration 0002), so
its triggers are lifted just for that flush and put back when the module ends."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

_append_only = importlib.import_module("yilian.common.migrations.0002_audit_append_only")


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
