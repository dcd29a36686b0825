"""Organisation paths under real concurrency (run in the PostgreSQL pass of the suite)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests import factories as f
from tests.community.conftest import IS_POSTGRES, ORG_FIELDS
from yilian.accounts.selectors import actor_for_user
from yilian.common import policy
from yilian.community import services
from yilian.community.models import Organisation


def _org(actor, code, kind, parent_code):
    return services.create_organisation(
        actor=actor, code=code, name=f"机构{code}", kind=kind, parent_code=parent_code, **ORG_FIELDS
    )


@pytest.mark.django_db(transaction=IS_POSTGRES)
def test_concurrent_children_of_one_parent_get_distinct_paths(concurrent_db):
    """Eight creations under one township at the same instant all succeed with distinct paths
    (the parent row is locked while the next number is chosen).

    Real concurrency needs real connections, so the threads run on PostgreSQL (the PG pass of the
    suite). SQLite serialises every writer in the database itself (and its shared in-memory test
    database cannot take concurrent writers), so there the same creations run one after another.
    """
    county = f.make_org("县医院", "county_hospital", code="C-CONC")
    township = f.make_org("镇卫生院", "township_centre", county, code="T-CONC")
    admin = actor_for_user(f.make_staff(policy.SYSADMIN, county).user)
    n = 8
    errors: list[BaseException] = []

    def work(i: int, barrier: threading.Barrier | None) -> None:
        try:
            if barrier is not None:
                barrier.wait(timeout=10)
            _org(admin, f"V-CONC-{i}", "village_clinic", township.code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            if barrier is not None:
                connection.close()

    if connection.vendor == "postgresql":
        barrier = threading.Barrier(n)
        threads = [threading.Thread(target=work, args=(i, barrier)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i in range(n):
            work(i, None)
    assert errors == []
    paths = list(Organisation.objects.filter(parent=township).values_list("path", flat=True))
    assert len(paths) == n
    assert len(set(paths)) == n
