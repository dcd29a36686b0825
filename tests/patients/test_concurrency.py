"""Two clerks register the same person at the same instant: one patient, one card, one 409.

Also two coordinators merging the same pair at once: one merge, one refusal, links moved once.
Real concurrency needs real connections, so this runs in the PostgreSQL pass of the suite
(``python -m yilian.ops.pgtmp -- pytest``); SQLite serialises every writer.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from tests import factories as f
from tests.helpers import race
from tests.patients.factories import actor_of
from yilian.common.errors import DomainError
from yilian.patients import services
from yilian.patients.models import Contact, HealthCard, Patient

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"],
        reason="needs PostgreSQL: SQLite serialises every write transaction",
    ),
]


def test_simultaneous_registrations_of_one_person_make_one_patient(flushable_db):
    county = f.make_org("县医院", "county_hospital", code="CC01")
    clerks = [actor_of(f.make_staff("doctor", county)) for _ in range(4)]
    number = f.valid_id()

    def register(i: int):
        return services.register_patient(
            actor=clerks[i], name="张三", id_type="resident_id", id_number=number
        )

    results = race(4, register)
    created = [r for r in results if isinstance(r, Patient)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(created) == 1, results
    assert len(refused) == 3 and {e.code for e in refused} == {"DUPLICATE_PATIENT"}
    assert Patient.objects.count() == 1 and HealthCard.objects.count() == 1


def test_simultaneous_merges_of_one_pair_move_links_once(flushable_db):
    county = f.make_org("县医院", "county_hospital", code="CC02")
    coordinators = [actor_of(f.make_staff("coordinator", county)) for _ in range(3)]
    keep, drop = f.make_patient(county, name="张三"), f.make_patient(county, name="张三")
    Contact.objects.create(patient=drop, name="张大", relationship="父亲", phone="13800000002")

    def merge(i: int):
        return services.merge_patients(
            actor=coordinators[i], survivor_id=keep.pk, duplicate_id=drop.pk, reason="重复建档"
        )

    results = race(3, merge)
    done = [r for r in results if isinstance(r, services.MergeOutcome)]
    assert len(done) == 1, results
    assert all(isinstance(r, DomainError) and r.status == 409 for r in results if r not in done)
    assert Contact.objects.get().patient_id == keep.pk
    assert Patient.objects.get(pk=drop.pk).merged_into_id == keep.pk
