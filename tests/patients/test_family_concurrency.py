"""Binding family members from several phones at once: the limit of 5 holds (access.md B-16).

Runs in the PostgreSQL pass of the suite (``python -m yilian.ops.pgtmp -- pytest``).
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.conf import settings
from django.db import connection

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.patients import family
from yilian.patients.models import FamilyLink

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"],
        reason="needs PostgreSQL: SQLite serialises every write transaction",
    ),
]


def test_concurrent_binds_never_exceed_the_limit(flushable_db):
    county = f.make_org("县医院", "county_hospital", code="C-FAM")
    account = f.make_patient_account("13500001111")
    for i in range(3):
        f.link(account, f.make_patient(county, name=f"成员{'一二三'[i]}"), "other")
    actor = actor_for_user(account.user)
    n = 6
    numbers = [f.valid_id(date(1970 + i, 2, 3)) for i in range(n)]
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = family.bind_family_member(
                actor=actor,
                account=account,
                name="吴家人",
                id_type="resident_id",
                id_number=numbers[i],
                relationship="other",
                consent=True,
            )
        except Exception as exc:  # collected and asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == n - 2 and all(isinstance(e, family.FamilyBindLimit) for e in errors), errors
    assert FamilyLink.objects.filter(account=account).count() == family.FAMILY_BIND_MAX
