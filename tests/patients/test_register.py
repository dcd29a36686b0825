"""Registration (建档): validation, encryption at rest, e-health card, duplicates."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from tests import factories as f
from tests.patients.factories import actor_of
from yilian.common import crypto
from yilian.common.errors import DomainError
from yilian.common.models import AuditEvent
from yilian.patients import selectors, services
from yilian.patients.models import HealthCard, Patient


@pytest.fixture
def clerk(staff_of, community):
    return actor_of(staff_of("doctor", community.township))


def test_registration_derives_birth_and_sex_and_issues_a_card(clerk, community):
    number = f.valid_id(date(1975, 3, 9), "F")
    patient = services.register_patient(
        actor=clerk, name="李秀英", id_type="resident_id", id_number=number.lower(), phone="138 0013 8000"
    )
    patient.refresh_from_db()
    assert patient.birth_date == date(1975, 3, 9)
    assert patient.sex == "F"
    assert patient.home_org_id == community.township.pk
    assert patient.name_initials == "lxy"
    assert patient.id_hash == crypto.blind_index("id", number)
    assert patient.id_head == number[:6] and patient.id_last4 == number[-4:]
    assert patient.phone == "13800138000" and patient.phone_last4 == "8000"
    card = HealthCard.objects.get(patient=patient)
    assert card.status == "active" and len(card.card_no) == 18 and number not in card.card_no
    event = AuditEvent.objects.get(action="patient.register")
    assert event.patient_id == patient.pk
    assert number not in str(event.detail)


def test_identifiers_are_encrypted_at_rest(clerk):
    number = f.valid_id(date(1980, 1, 2), "M")
    services.register_patient(
        actor=clerk, name="张三", id_type="resident_id", id_number=number, phone="13912345678"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, phone FROM patients_patient")
        stored_id, stored_phone = cursor.fetchone()
    assert number not in stored_id and number[6:14] not in stored_id
    assert "13912345678" not in stored_phone and "12345678" not in stored_phone


def test_duplicate_registration_is_409_and_writes_nothing(clerk):
    number = f.valid_id()
    services.register_patient(actor=clerk, name="张三", id_type="resident_id", id_number=number)
    before = (Patient.objects.count(), HealthCard.objects.count(), AuditEvent.objects.count())
    with pytest.raises(DomainError) as caught:
        services.register_patient(actor=clerk, name="张三", id_type="resident_id", id_number=number)
    assert caught.value.code == "DUPLICATE_PATIENT" and caught.value.status == 409
    assert caught.value.extra["existing_name"] == "张*"
    assert (Patient.objects.count(), HealthCard.objects.count(), AuditEvent.objects.count()) == before


def test_access_patient_is_audited(clerk):
    patient = services.register_patient(
        actor=clerk, name="张三", id_type="resident_id", id_number=f.valid_id()
    )
    assert selectors.access_patient(clerk, patient.pk).pk == patient.pk
    assert AuditEvent.objects.filter(action="patient.view", patient_id=patient.pk).count() == 1


def test_lost_race_is_reported_as_duplicate_with_nothing_half_written(clerk, monkeypatch):
    """The early check can miss a concurrent registration; the partial unique constraint cannot."""
    number = f.valid_id()
    services.register_patient(actor=clerk, name="张三", id_type="resident_id", id_number=number)
    monkeypatch.setattr(services, "identity_taken", lambda *a, **k: False)
    before = (Patient.objects.count(), HealthCard.objects.count(), AuditEvent.objects.count())
    with pytest.raises(DomainError) as caught:
        services.register_patient(actor=clerk, name="张三", id_type="resident_id", id_number=number)
    assert caught.value.code == "DUPLICATE_PATIENT"
    assert (Patient.objects.count(), HealthCard.objects.count(), AuditEvent.objects.count()) == before


def test_passport_registration(clerk):
    patient = services.register_patient(
        actor=clerk,
        name="John Smith",
        id_type="passport",
        id_number="e1234 5678",
        sex="M",
        birth_date=date(1985, 7, 1),
        nationality="usa",
    )
    patient.refresh_from_db()
    assert (patient.id_number, patient.id_head, patient.id_last4) == ("E12345678", "", "5678")
    assert (patient.nationality, patient.name_initials) == ("USA", "johnsmith")


def test_same_number_under_another_document_type_is_another_identity(clerk):
    services.register_patient(
        actor=clerk,
        name="张三",
        id_type="passport",
        id_number="E12345678",
        sex="M",
        birth_date=date(1985, 7, 1),
    )
    services.register_patient(
        actor=clerk,
        name="张三",
        id_type="hk_macao_permit",
        id_number="H12345678",
        sex="M",
        birth_date=date(1985, 7, 1),
    )
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"name": "张三", "id_type": "resident_id", "id_number": "123"}, "ID_FORMAT", "id_number"),
        ({"name": "", "id_type": "resident_id", "id_number": "x"}, "NAME_REQUIRED", "name"),
        (
            {"name": "张三", "id_type": "resident_id", "id_number": "@ID", "phone": "12345"},
            "PHONE_FORMAT",
            "phone",
        ),
        (
            {"name": "张三", "id_type": "resident_id", "id_number": "@ID", "home_org_code": "NOPE"},
            "UNKNOWN_ORG",
            "home_org_code",
        ),
        (
            {"name": "张三", "id_type": "resident_id", "id_number": "@ID", "nationality": "C1"},
            "NATIONALITY_FORMAT",
            "nationality",
        ),
    ],
)
def test_invalid_registrations_name_the_field(clerk, kwargs, code, field):
    if kwargs["id_number"] == "@ID":
        kwargs["id_number"] = f.valid_id()
    with pytest.raises(DomainError) as caught:
        services.register_patient(actor=clerk, **kwargs)
    assert (caught.value.code, caught.value.field, caught.value.status) == (code, field, 422)
    assert not Patient.objects.exists()


def test_registering_outside_ones_scope_is_refused(clerk, community):
    with pytest.raises(DomainError) as caught:
        services.register_patient(
            actor=clerk,
            name="张三",
            id_type="resident_id",
            id_number=f.valid_id(),
            home_org_code=community.other_village.code,
        )
    assert caught.value.status == 403
    assert not Patient.objects.exists()


def test_too_long_address_is_422_not_500(clerk):
    with pytest.raises(DomainError) as caught:
        services.register_patient(
            actor=clerk, name="张三", id_type="resident_id", id_number=f.valid_id(), village="村" * 31
        )
    assert (caught.value.status, caught.value.field) == (422, "village")


def test_a_patient_account_may_register_a_family_member(community):
    account = f.make_patient_account()
    actor = actor_of(account.user)
    patient = services.register_patient(
        actor=actor, name="张小明", id_type="resident_id", id_number=f.valid_id(date(2015, 1, 1), "M")
    )
    assert patient.home_org_id == community.county.pk
