"""Binding family members to a patient account (access.md B-16, B-2)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.common.errors import DomainError, NotFound, PermissionDenied
from yilian.common.models import AuditEvent
from yilian.patients import family
from yilian.patients.models import FamilyLink, HealthCard, Patient


@pytest.fixture
def account(community):
    return f.make_patient_account("13900001111")


@pytest.fixture
def actor(account):
    return actor_for_user(account.user)


def _years_ago(years: int, days: int = 0) -> date:
    today = timezone.localdate()
    try:
        anniversary = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        anniversary = today.replace(year=today.year - years, day=28)
    return anniversary - timedelta(days=days)


def bind(actor, account, **kw):
    values = {
        "name": "张小明",
        "id_type": "resident_id",
        "id_number": f.valid_id(date(1985, 3, 2)),
        "relationship": "spouse",
        "consent": True,
    }
    values.update(kw)
    return family.bind_family_member(actor=actor, account=account, **values)


def test_binding_a_new_identity_registers_the_patient_with_a_card(actor, account):
    link = bind(actor, account, name="周建国", relationship="self", phone="13900001111")
    patient = link.patient
    assert patient.name == "周建国" and patient.status == Patient.Status.ACTIVE
    assert not patient.realname_verified
    assert HealthCard.objects.filter(patient=patient, status="active").count() == 1
    assert link.consent_version == family.CONSENT_VERSION and link.consent_at is not None


def test_binding_needs_consent(actor, account):
    with pytest.raises(family.ConsentRequired) as exc:
        bind(actor, account, consent=False)
    assert exc.value.code == "CONSENT_REQUIRED" and exc.value.status == 422
    assert not Patient.objects.exists() and not FamilyLink.objects.exists()


def test_an_account_binds_at_most_five_patients(actor, account):
    for i in range(family.FAMILY_BIND_MAX):
        bind(actor, account, id_number=f.valid_id(date(1960 + i, 1, 1)), relationship="other")
    with pytest.raises(family.FamilyBindLimit) as exc:
        bind(actor, account, id_number=f.valid_id(date(1990, 1, 1)), relationship="other")
    assert exc.value.code == "FAMILY_BIND_LIMIT" and exc.value.status == 422
    assert FamilyLink.objects.filter(account=account).count() == 5
    assert Patient.objects.count() == 5  # the refused sixth was not registered either


def test_existing_identity_with_another_name_is_refused(actor, account, community):
    number = f.valid_id(date(1950, 6, 1))
    f.make_patient(community.village, name="王桂兰", id_number=number)
    with pytest.raises(family.IdentityMismatch) as exc:
        bind(actor, account, name="王桂芳", id_number=number, relationship="parent")
    assert exc.value.code == "IDENTITY_MISMATCH" and exc.value.status == 403
    assert not FamilyLink.objects.exists()


def test_existing_identity_with_its_name_is_linked_not_registered_again(actor, account, community):
    number = f.valid_id(date(1950, 6, 1))
    existing = f.make_patient(community.village, name="王桂兰", id_number=number)
    link = bind(actor, account, name=" 王桂兰 ", id_number=number.lower(), relationship="parent")
    assert link.patient == existing
    assert Patient.objects.count() == 1


def test_the_same_patient_cannot_be_bound_twice(actor, account):
    number = f.valid_id(date(1970, 1, 1))
    bind(actor, account, id_number=number)
    with pytest.raises(family.AlreadyBound):
        bind(actor, account, id_number=number)


def test_only_one_self_per_account(actor, account):
    bind(actor, account, relationship="self")
    with pytest.raises(family.SelfAlreadyBound):
        bind(actor, account, relationship="self", id_number=f.valid_id(date(1971, 1, 1)))


@pytest.mark.parametrize("relationship", ["sibling", "other", "spouse", "parent", "self"])
def test_a_child_under_14_is_bound_only_by_a_guardian(actor, account, relationship):
    child_id = f.valid_id(_years_ago(13, days=300))
    with pytest.raises(family.GuardianRequired) as exc:
        bind(actor, account, name="张小宝", id_number=child_id, relationship=relationship)
    assert exc.value.status == 422
    assert not Patient.objects.exists()  # nothing half-written


def test_a_child_under_14_is_bound_as_child_with_guardianship(actor, account):
    link = bind(actor, account, name="张小宝", id_number=f.valid_id(_years_ago(6)), relationship="child")
    assert link.is_guardian


def test_a_14_year_old_may_be_bound_as_sibling(actor, account):
    link = bind(actor, account, name="张小妹", id_number=f.valid_id(_years_ago(14)), relationship="sibling")
    assert not link.is_guardian


def test_an_adult_child_is_not_under_guardianship(actor, account):
    link = bind(actor, account, name="张大明", id_number=f.valid_id(_years_ago(30)), relationship="child")
    assert not link.is_guardian


def test_a_non_resident_document_needs_birth_date_and_sex(actor, account):
    link = bind(
        actor,
        account,
        name="JOHN SMITH",
        id_type="passport",
        id_number="E12345678",
        sex="M",
        birth_date=date(1988, 8, 8),
    )
    assert link.patient.birth_date == date(1988, 8, 8)


def test_an_invalid_id_number_is_refused_by_field(actor, account):
    with pytest.raises(DomainError) as exc:
        bind(actor, account, id_number="370687198001011235")
    assert exc.value.field == "id_number"
    assert exc.value.status == 422


def test_an_account_cannot_bind_for_another_account(actor, community):
    other = f.make_patient_account("13900002222")
    with pytest.raises(PermissionDenied):
        bind(actor, other)


def test_binding_is_audited_with_consent_version_and_no_identifiers(actor, account):
    number = f.valid_id(date(1985, 3, 2))
    link = bind(actor, account, id_number=number)
    event = AuditEvent.objects.get(action="family.bind")
    assert event.patient_id == link.patient_id
    assert event.detail["consent_version"] == family.CONSENT_VERSION
    assert number not in str(event.detail)


def test_unbinding_removes_the_link_keeps_the_patient_and_is_audited(actor, account):
    link = bind(actor, account)
    family.unbind_family_member(actor=actor, account=account, patient_id=link.patient_id)
    assert not FamilyLink.objects.exists()
    assert Patient.objects.filter(pk=link.patient_id).exists()
    assert AuditEvent.objects.filter(action="family.unbind", patient_id=link.patient_id).exists()


def test_self_cannot_be_unbound(actor, account):
    link = bind(actor, account, relationship="self")
    with pytest.raises(family.SelfUnbindRefused):
        family.unbind_family_member(actor=actor, account=account, patient_id=link.patient_id)


def test_unbinding_a_patient_of_another_account_is_not_found(actor, account, community):
    other = f.make_patient_account("13900003333")
    stranger = f.make_patient(community.village, name="赵六")
    f.link(other, stranger, "spouse")
    with pytest.raises(NotFound):
        family.unbind_family_member(actor=actor, account=account, patient_id=stranger.pk)
    assert FamilyLink.objects.filter(account=other).exists()


def test_age_counts_the_birthday():
    assert family.age_on(date(2012, 5, 17), date(2026, 5, 16)) == 13
    assert family.age_on(date(2012, 5, 17), date(2026, 5, 17)) == 14
    assert family.needs_guardian(date(2012, 5, 17), date(2026, 5, 16))
    assert not family.needs_guardian(date(2012, 5, 17), date(2026, 5, 17))


def test_a_refused_bind_is_audited_without_identifiers(actor, account):
    with pytest.raises(family.ConsentRequired):
        bind(actor, account, consent=False)
    event = AuditEvent.objects.get(action="family.bind")
    assert event.outcome == "refused" and event.detail == {"code": "CONSENT_REQUIRED"}


def test_trying_names_against_an_id_number_is_stopped_after_five_mismatches(actor, account, community):
    number = f.valid_id(date(1950, 6, 1))
    f.make_patient(community.village, name="王桂兰", id_number=number)
    for guess in ["王桂芳", "王桂英", "王桂花", "王秀兰", "王春兰"]:
        with pytest.raises(family.IdentityMismatch):
            bind(actor, account, name=guess, id_number=number, relationship="parent")
    with pytest.raises(family.IdentityProbeLimited) as exc:
        bind(actor, account, name="王桂兰", id_number=number, relationship="parent")
    assert exc.value.status == 429
    assert not FamilyLink.objects.exists()


def test_mismatches_of_another_account_do_not_count(actor, account, community):
    number = f.valid_id(date(1950, 6, 1))
    f.make_patient(community.village, name="王桂兰", id_number=number)
    other = f.make_patient_account("13900004444")
    other_actor = actor_for_user(other.user)
    for guess in ["王桂芳", "王桂英", "王桂花", "王秀兰", "王春兰"]:
        with pytest.raises(family.IdentityMismatch):
            bind(other_actor, other, name=guess, id_number=number, relationship="parent")
    assert bind(actor, account, name="王桂兰", id_number=number, relationship="parent")
