"""Merging duplicate records (重复档案合并): every link moves, conflicts resolved, audited, scoped."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.patients.factories import actor_of
from yilian.common.errors import DomainError, NotFound
from yilian.common.models import AuditEvent
from yilian.patients import selectors, services
from yilian.patients.models import Contact, FamilyLink, HealthCard, Patient


@pytest.fixture
def coordinator(staff_of):
    return actor_of(staff_of("coordinator"))


@pytest.fixture
def pair(community):
    survivor = f.make_patient(community.village, name="张三")
    duplicate = f.make_patient(community.village, name="张三")
    return survivor, duplicate


def test_merge_moves_every_link_and_retires_the_duplicate(coordinator, pair):
    survivor, duplicate = pair
    f.issue_card(survivor)
    dup_card = f.issue_card(duplicate)
    Contact.objects.create(patient=duplicate, name="张大", relationship="父亲", phone="13800000002")
    account = f.make_patient_account("13800000003")
    f.link(account, duplicate)
    outcome = services.merge_patients(
        actor=coordinator, survivor_id=survivor.pk, duplicate_id=duplicate.pk, reason="重复建档"
    )
    assert outcome.survivor == survivor
    assert Contact.objects.get().patient_id == survivor.pk
    assert FamilyLink.objects.get().patient_id == survivor.pk
    dup_card.refresh_from_db()
    assert (dup_card.patient_id, dup_card.status) == (survivor.pk, "revoked") and dup_card.revoked_at
    assert HealthCard.objects.filter(patient=survivor, status="active").count() == 1
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == ("merged", survivor.pk)
    assert outcome.moved == {
        "patients.contact.patient": 1,
        "patients.familylink.patient": 1,
        "patients.healthcard.patient": 1,
    }


def test_merge_is_audited_with_both_ids_and_counts(coordinator, pair):
    survivor, duplicate = pair
    Contact.objects.create(patient=duplicate, name="张大", relationship="父亲", phone="13800000002")
    services.merge_patients(
        actor=coordinator, survivor_id=survivor.pk, duplicate_id=duplicate.pk, reason="同一人两次建档"
    )
    event = AuditEvent.objects.get(action="patient.merge")
    assert event.patient_id == survivor.pk and event.reason == "同一人两次建档"
    assert event.detail["survivor_id"] == survivor.pk and event.detail["duplicate_id"] == duplicate.pk
    assert event.detail["moved"] == {"patients.contact.patient": 1}
    assert AuditEvent.objects.get(action="patient.merged_away").patient_id == duplicate.pk


def test_account_linked_to_both_keeps_one_link(coordinator, pair):
    survivor, duplicate = pair
    account = f.make_patient_account("13800000004")
    keep = f.link(account, survivor, "self")
    f.link(account, duplicate, "child")
    services.merge_patients(
        actor=coordinator, survivor_id=survivor.pk, duplicate_id=duplicate.pk, reason="重复建档"
    )
    assert list(FamilyLink.objects.values_list("pk", "patient_id")) == [(keep.pk, survivor.pk)]
    assert AuditEvent.objects.get(action="patient.merge").detail["family_links_dropped"] == 1


def test_a_merged_record_cannot_be_merged_again(coordinator, pair):
    survivor, duplicate = pair
    services.merge_patients(
        actor=coordinator, survivor_id=survivor.pk, duplicate_id=duplicate.pk, reason="重复建档"
    )
    with pytest.raises(DomainError) as caught:
        services.merge_patients(
            actor=coordinator, survivor_id=survivor.pk, duplicate_id=duplicate.pk, reason="again"
        )
    assert caught.value.status == 409


def test_reason_is_required(coordinator, pair):
    with pytest.raises(DomainError) as caught:
        services.merge_patients(
            actor=coordinator, survivor_id=pair[0].pk, duplicate_id=pair[1].pk, reason="  "
        )
    assert (caught.value.code, caught.value.field) == ("MERGE_REASON_REQUIRED", "reason")
    assert Patient.objects.filter(status="active").count() == 2


def test_merge_with_itself_is_refused(coordinator, pair):
    with pytest.raises(DomainError) as caught:
        services.merge_patients(
            actor=coordinator, survivor_id=pair[0].pk, duplicate_id=pair[0].pk, reason="x"
        )
    assert caught.value.code == "MERGE_SAME_PATIENT"


def test_both_must_be_in_the_actors_scope(staff_of, community, pair):
    outside = f.make_patient(community.other_village, name="张三")
    township_coordinator = actor_of(staff_of("coordinator", community.township))
    with pytest.raises(NotFound):
        services.merge_patients(
            actor=township_coordinator, survivor_id=pair[0].pk, duplicate_id=outside.pk, reason="x"
        )
    assert Patient.objects.get(pk=outside.pk).status == "active"


def test_doctors_may_not_merge(staff_of, pair):
    doctor = actor_of(staff_of("doctor"))
    with pytest.raises(NotFound):
        services.merge_patients(actor=doctor, survivor_id=pair[0].pk, duplicate_id=pair[1].pk, reason="x")


def test_relations_are_discovered_from_the_model_registry():
    labels = {f"{r.related_model._meta.label_lower}.{r.field.name}" for r in selectors.reverse_relations()}
    assert {
        "patients.contact.patient",
        "patients.familylink.patient",
        "patients.healthcard.patient",
    } <= labels
    assert "patients.patient.merged_into" in labels  # hidden (related_name="+") relations too


def test_records_merged_earlier_follow_to_the_new_survivor(coordinator, community):
    first, second, third = (f.make_patient(community.village, name="张三") for _ in range(3))
    services.merge_patients(
        actor=coordinator, survivor_id=second.pk, duplicate_id=first.pk, reason="重复建档"
    )
    services.merge_patients(
        actor=coordinator, survivor_id=third.pk, duplicate_id=second.pk, reason="重复建档"
    )
    assert Patient.objects.get(pk=first.pk).merged_into_id == third.pk
    assert Patient.objects.get(pk=second.pk).merged_into_id == third.pk
