"""Changing patients and contacts: re-validation, re-hashing, scoped writes, audit of field names."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories as f
from tests.patients.factories import actor_of
from yilian.common import crypto
from yilian.common.errors import DomainError, NotFound
from yilian.common.models import AuditEvent
from yilian.patients import services
from yilian.patients.models import Patient


@pytest.fixture
def doctor(staff_of, community):
    return actor_of(staff_of("doctor", community.township))


def test_change_is_audited_with_field_names_not_values(doctor, community):
    patient = f.make_patient(community.village, name="张三", phone="13800000001")
    services.update_patient(
        actor=doctor, patient_id=patient.pk, phone="13912345678", village="东村", name="张三"
    )
    event = AuditEvent.objects.get(action="patient.update")
    assert event.detail == {"fields": ["phone", "village"]}
    assert event.patient_id == patient.pk
    assert "13912345678" not in str(event.detail) and "东村" not in str(event.detail)
    patient.refresh_from_db()
    assert patient.phone_hash == crypto.blind_index("phone", "13912345678") and patient.phone_last4 == "5678"


def test_no_change_writes_no_audit(doctor, community):
    patient = f.make_patient(community.village, name="张三")
    services.update_patient(actor=doctor, patient_id=patient.pk, name="张三")
    assert not AuditEvent.objects.filter(action="patient.update").exists()


def test_changing_the_id_revalidates_and_rehashes(doctor, community):
    patient = f.make_patient(community.village, birth=date(1980, 5, 17), sex="M")
    new = f.valid_id(date(1981, 6, 1), "F")
    services.update_patient(actor=doctor, patient_id=patient.pk, id_number=new)
    patient.refresh_from_db()
    assert (patient.id_hash, patient.id_last4) == (crypto.blind_index("id", new), new[-4:])
    assert (patient.birth_date, patient.sex) == (date(1981, 6, 1), "F")
    assert AuditEvent.objects.get(action="patient.update").detail == {
        "fields": ["birth_date", "id_number", "sex"]
    }


def test_invalid_new_id_is_refused_and_nothing_changes(doctor, community):
    patient = f.make_patient(community.village)
    old_hash = patient.id_hash
    bad = patient.id_number[:17] + ("0" if patient.id_number[17] != "0" else "1")
    with pytest.raises(DomainError) as caught:
        services.update_patient(actor=doctor, patient_id=patient.pk, id_number=bad)
    assert (caught.value.code, caught.value.field) == ("ID_CHECKSUM", "id_number")
    patient.refresh_from_db()
    assert patient.id_hash == old_hash


def test_sex_change_against_the_resident_id_is_refused(doctor, community):
    patient = f.make_patient(community.village, sex="M")
    with pytest.raises(DomainError) as caught:
        services.update_patient(actor=doctor, patient_id=patient.pk, sex="F")
    assert caught.value.code == "ID_SEX_MISMATCH"


def test_changing_to_another_patients_id_is_a_duplicate(doctor, community):
    one = f.make_patient(community.village, name="张三")
    two = f.make_patient(community.village, name="李四")
    with pytest.raises(DomainError) as caught:
        services.update_patient(actor=doctor, patient_id=two.pk, id_number=one.id_number)
    assert caught.value.code == "DUPLICATE_PATIENT" and caught.value.status == 409


def test_update_outside_scope_is_not_found(staff_of, community):
    patient = f.make_patient(community.other_village)
    village_doctor = actor_of(staff_of("village_doctor", community.village))
    with pytest.raises(NotFound):
        services.update_patient(actor=village_doctor, patient_id=patient.pk, village="西村")


def test_moving_a_patient_outside_ones_scope_is_refused(doctor, community):
    patient = f.make_patient(community.village)
    with pytest.raises(DomainError) as caught:
        services.update_patient(
            actor=doctor, patient_id=patient.pk, home_org_code=community.other_village.code
        )
    assert caught.value.status == 403
    assert Patient.objects.get(pk=patient.pk).home_org_id == community.village.pk


def test_add_contact_encrypts_phone_and_audits(doctor, community):
    patient = f.make_patient(community.village)
    contact = services.add_contact(
        actor=doctor, patient_id=patient.pk, name="张大", relationship="父亲", phone="0535-1234567"
    )
    assert contact.phone == "05351234567"
    event = AuditEvent.objects.get(action="patient.contact.add")
    assert event.patient_id == patient.pk and "1234567" not in str(event.detail)


def test_contact_with_bad_phone_is_refused(doctor, community):
    patient = f.make_patient(community.village)
    with pytest.raises(DomainError) as caught:
        services.add_contact(
            actor=doctor, patient_id=patient.pk, name="张大", relationship="父亲", phone="12345"
        )
    assert (caught.value.code, caught.value.field) == ("PHONE_FORMAT", "phone")


def test_replacing_the_id_ignores_sex_and_birth_carried_over_from_the_form(doctor, community):
    patient = f.make_patient(community.village, birth=date(1980, 5, 17), sex="M")
    new = f.valid_id(date(1990, 1, 2), "F")
    services.update_patient(
        actor=doctor, patient_id=patient.pk, id_number=new, sex="M", birth_date=date(1980, 5, 17), name="张三"
    )
    patient.refresh_from_db()
    assert (patient.sex, patient.birth_date) == ("F", date(1990, 1, 2))


def test_switching_to_a_passport_keeps_sex_and_birth_date(doctor, community):
    patient = f.make_patient(community.village, birth=date(1980, 5, 17), sex="M")
    services.update_patient(actor=doctor, patient_id=patient.pk, id_type="passport", id_number="E12345678")
    patient.refresh_from_db()
    assert (patient.id_type, patient.id_head, patient.sex, patient.birth_date) == (
        "passport",
        "",
        "M",
        date(1980, 5, 17),
    )
