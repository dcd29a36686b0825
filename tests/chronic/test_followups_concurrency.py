"""Concurrent recordings for one registry (a retried submission racing its original on a weak
network): one row per ``client_uuid``, registries locked so plans stay consistent.

Real concurrency needs real connections, so this runs in the PostgreSQL pass of the suite
(``python -m yilian.ops.pgtmp -- pytest``); SQLite serialises every writer.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from django.conf import settings

from tests import factories as f
from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_chronic_patient, make_registry
from tests.helpers import race
from yilian.chronic.errors import AlreadyEnrolled
from yilian.chronic.models import FollowUp, Referral, Registry
from yilian.chronic.services import followups, registries
from yilian.chronic.services.followups import FollowUpData
from yilian.common import policy

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"],
        reason="needs PostgreSQL: SQLite serialises every write transaction",
    ),
]


def _village():
    county = f.make_org("县医院", "county_hospital", code="CCX1")
    township = f.make_org("镇卫生院", "township_centre", county, code="TSX1")
    return f.make_org("村卫生室", "village_clinic", township, code="VCX1")


def test_concurrent_retries_with_one_client_uuid_write_one_follow_up(flushable_db):
    village = _village()
    doctor = actor_of(f.make_staff(policy.VILLAGE_DOCTOR, village))
    registry = make_registry(patient=make_chronic_patient(village), registered_on=date(2026, 1, 5))
    key = uuid.uuid4()

    def submit(i: int):
        return followups.record_follow_up(
            actor=doctor,
            patient_id=registry.patient_id,
            data=FollowUpData(visit_on=date(2026, 9, 1), mode="clinic", sbp=185, dbp=100),
            client_uuid=key,
            today=date(2026, 9, 30),
        )

    results = race(4, submit)
    assert all(isinstance(r, list) for r in results), results
    assert len({r[0].pk for r in results}) == 1
    assert FollowUp.objects.filter(registry=registry).count() == 1
    assert Referral.objects.filter(registry=registry).count() == 1


def test_concurrent_different_visits_serialise_on_the_registry(flushable_db):
    village = _village()
    doctor = actor_of(f.make_staff(policy.VILLAGE_DOCTOR, village))
    registry = make_registry(patient=make_chronic_patient(village), registered_on=date(2026, 1, 5))
    days = [date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3)]

    def submit(i: int):
        return followups.record_follow_up(
            actor=doctor,
            patient_id=registry.patient_id,
            data=FollowUpData(visit_on=days[i], mode="clinic", sbp=150, dbp=95),
            client_uuid=uuid.uuid4(),
            today=date(2026, 9, 30),
        )

    results = race(3, submit)
    assert all(isinstance(r, list) for r in results), results
    assert FollowUp.objects.filter(registry=registry).count() == 3
    registry.refresh_from_db()
    # whatever the commit order, the plan is the latest visit's (the registry row lock serialises them)
    latest = FollowUp.objects.get(registry=registry, visit_on=date(2026, 9, 3))
    assert (registry.last_follow_up_on, registry.next_follow_up_on) == (date(2026, 9, 3), latest.next_due_on)


def test_concurrent_enrolments_of_one_patient_make_one_registry(flushable_db):
    village = _village()
    doctors = [actor_of(f.make_staff(policy.VILLAGE_DOCTOR, village)) for _ in range(3)]
    patient = make_chronic_patient(village)

    def enrol(i: int):
        return registries.enrol(
            actor=doctors[i],
            patient_id=patient.pk,
            disease="htn",
            registered_on=date(2026, 3, 2),
            diagnosed_on=date(2026, 3, 1),
            diagnosis_source="county_hospital",
            managing_org_id=village.pk,
        )

    results = race(3, enrol)
    assert len([r for r in results if isinstance(r, Registry)]) == 1, results
    assert len([r for r in results if isinstance(r, AlreadyEnrolled)]) == 2, results
    assert Registry.objects.filter(patient=patient).count() == 1
