from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from yilian.accounts.selectors import actor_for_user


@pytest.fixture
def actor_of(staff_of):
    """``actor_of(role, org=None)`` → the policy Actor of a new staff member holding ``role``."""

    def make(role: str, org=None, **kwargs):
        staff = staff_of(role, org, **kwargs)
        return actor_for_user(staff.user)

    return make


ORG_FIELDS = {
    "province": "山东省",
    "city": "烟台市",
    "county": "海阳县",
}


IS_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


@pytest.fixture(scope="module")
def _audit_triggers_restored(django_db_blocker):
    """Torn down after the module's last ``transactional_db`` flush: audit triggers back on."""
    yield
    if IS_POSTGRES:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE common_auditevent ENABLE TRIGGER USER")


@pytest.fixture
def concurrent_db(_audit_triggers_restored):
    """For tests marked ``@pytest.mark.django_db(transaction=IS_POSTGRES)``: a database that real
    concurrent connections can share.

    On PostgreSQL the test commits, so that other threads' connections see its data. The flush
    that ends it would trip the append-only audit triggers (common migration 0002), so they are
    switched off for the flush and back on at the end of the module (keep such tests in a module
    of their own). SQLite serialises writers (and its shared in-memory test database takes no
    concurrent writers), so there the test runs in an ordinary rolled-back transaction.
    """
    yield
    if IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE common_auditevent DISABLE TRIGGER USER")
