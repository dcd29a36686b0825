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
