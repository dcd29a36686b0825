"""Registries (专病档案): enrolment, closing and transfer through the services (chronic.md §1, R2.1)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_chronic_patient, make_registry
from yilian.chronic.errors import AlreadyEnrolled, DateInFuture, RegistryClosed
from yilian.chronic.models import Registry, RegistryStatusHistory, ScreeningCase
from yilian.chronic.selectors import registries as selectors
from yilian.chronic.services import registries as services
from yilian.common import policy
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db


def _enrol(actor, patient, org, **kw):
    args = dict(
        patient_id=patient.pk,
        disease="htn",
        registered_on=date(2026, 3, 2),
        diagnosed_on=date(2026, 2, 20),
        diagnosis_source="county_hospital",
        managing_org_id=org.pk,
    )
    args.update(kw)
    return services.enrol(actor=actor, **args)


def test_enrol_creates_an_active_registry_with_history_and_audit(community, village_doctor):
    patient = make_chronic_patient(community.village)
    registry = _enrol(
        actor_of(village_doctor), patient, community.village, responsible_doctor_id=village_doctor.pk
    )
    assert registry.status == "active"
    assert registry.managing_org == community.village
    assert registry.responsible_doctor == village_doctor
    history = RegistryStatusHistory.objects.get(registry=registry)
    assert (history.from_status, history.to_status, history.by_id) == ("", "active", village_doctor.user_id)
    event = AuditEvent.objects.get(action="chronic.registry.enrol")
    assert event.patient_id == patient.pk and event.object_id == str(registry.pk)


def test_second_active_registry_of_the_same_disease_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village)
    actor = actor_of(village_doctor)
    _enrol(actor, patient, community.village)
    with pytest.raises(AlreadyEnrolled):
        _enrol(actor, patient, community.village)
    # another disease is fine: a patient may be in several registries
    assert _enrol(actor, patient, community.village, disease="t2dm").disease == "t2dm"


def test_a_closed_registry_allows_enrolling_again(community, village_doctor):
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient, closed_on=date(2025, 6, 1), close_reason="moved_out")
    assert _enrol(actor_of(village_doctor), patient, community.village).status == "active"


def test_database_refuses_a_second_active_registry_even_past_the_check(
    community, village_doctor, monkeypatch
):
    """The partial unique index backs the service's check (a concurrent enrolment): AlreadyEnrolled."""
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient)
    real_filter = Registry.objects.filter

    class _NoCheck:
        def exists(self):
            return False

    def fake_filter(*args, **kwargs):
        if kwargs.get("status") == "active" and "disease" in kwargs:
            return _NoCheck()
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(Registry.objects, "filter", fake_filter)
    with pytest.raises(AlreadyEnrolled):
        _enrol(actor_of(village_doctor), patient, community.village)
    monkeypatch.undo()
    assert Registry.objects.filter(patient=patient).count() == 1


def test_registration_in_the_future_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village)
    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(DateInFuture) as err:
        _enrol(actor_of(village_doctor), patient, community.village, registered_on=tomorrow)
    assert err.value.field == "registered_on"


def test_registration_before_diagnosis_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village)
    with pytest.raises(InvalidInput) as err:
        _enrol(
            actor_of(village_doctor),
            patient,
            community.village,
            registered_on=date(2026, 3, 2),
            diagnosed_on=date(2026, 3, 3),
        )
    assert err.value.field == "diagnosed_on"
    assert not Registry.objects.exists()


def test_unknown_disease_or_source_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village)
    with pytest.raises(InvalidInput):
        _enrol(actor_of(village_doctor), patient, community.village, disease="flu")
    with pytest.raises(InvalidInput):
        _enrol(actor_of(village_doctor), patient, community.village, diagnosis_source="rumour")


def test_patient_of_another_village_is_not_found(community, other_village_doctor):
    patient = make_chronic_patient(community.village)
    with pytest.raises(NotFound):
        _enrol(actor_of(other_village_doctor), patient, community.other_village)
    assert not Registry.objects.exists()


def test_unknown_patient_is_not_found(community, village_doctor):
    with pytest.raises(NotFound):
        services.enrol(
            actor=actor_of(village_doctor),
            patient_id=987654,
            disease="htn",
            registered_on=date(2026, 3, 2),
            diagnosed_on=date(2026, 3, 2),
            diagnosis_source="other",
            managing_org_id=community.village.pk,
        )


def test_managing_org_outside_scope_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village)
    with pytest.raises(services.OrganisationNotInScope):
        _enrol(actor_of(village_doctor), patient, community.township)


def test_responsible_doctor_of_another_branch_is_refused(community, township_doctor, other_village_doctor):
    patient = make_chronic_patient(community.village)
    with pytest.raises(services.DoctorNotEligible):
        _enrol(
            actor_of(township_doctor),
            patient,
            community.village,
            responsible_doctor_id=other_village_doctor.pk,
        )
    # a doctor of the township above the village may be responsible
    registry = _enrol(
        actor_of(township_doctor), patient, community.village, responsible_doctor_id=township_doctor.pk
    )
    assert registry.responsible_doctor == township_doctor


def test_enrolling_a_screening_case_marks_it_confirmed_and_linked(community, village_doctor):
    patient = make_chronic_patient(community.village)
    case = ScreeningCase.objects.create(
        patient=patient,
        disease="htn",
        organisation=community.village,
        status="preliminary",
        opened_on=date(2026, 2, 1),
        due_on=date(2026, 2, 15),
    )
    registry = _enrol(
        actor_of(village_doctor),
        patient,
        community.village,
        screening_case_id=case.pk,
        diagnosis_source="screening",
    )
    case.refresh_from_db()
    assert (
        case.status == "confirmed" and case.registry == registry and case.closed_on == registry.registered_on
    )


def test_a_screening_case_of_another_disease_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village)
    case = ScreeningCase.objects.create(
        patient=patient,
        disease="t2dm",
        organisation=community.village,
        opened_on=date(2026, 2, 1),
        due_on=date(2026, 2, 15),
    )
    with pytest.raises(services.ScreeningCaseInvalid):
        _enrol(actor_of(village_doctor), patient, community.village, screening_case_id=case.pk)
    assert not Registry.objects.exists()


def test_close_for_death_records_history_and_leaves_other_registries_active(community, village_doctor):
    patient = make_chronic_patient(community.village)
    htn = make_registry(patient=patient, registered_on=date(2025, 1, 10))
    t2dm = make_registry(patient=patient, disease="t2dm", registered_on=date(2025, 1, 10))
    closed = services.close_registry(
        actor=actor_of(village_doctor),
        registry_id=htn.pk,
        closed_on=date(2026, 5, 1),
        reason="death",
        note="家属告知",
    )
    assert (closed.status, closed.closed_on, closed.close_reason) == ("closed", date(2026, 5, 1), "death")
    t2dm.refresh_from_db()
    assert t2dm.status == "active"
    assert RegistryStatusHistory.objects.get(registry=htn).to_status == "closed"
    assert AuditEvent.objects.filter(action="chronic.registry.close", patient_id=patient.pk).count() == 1


@pytest.mark.parametrize("reason", ["lost", "", "refused"])
def test_close_reason_must_be_death_move_or_revoked_diagnosis(community, village_doctor, reason):
    registry = make_registry(org=community.village)
    with pytest.raises(InvalidInput):
        services.close_registry(
            actor=actor_of(village_doctor), registry_id=registry.pk, closed_on=date(2026, 5, 1), reason=reason
        )


def test_close_date_in_future_or_before_registration_is_refused(community, village_doctor):
    registry = make_registry(org=community.village, registered_on=date(2026, 1, 10))
    actor = actor_of(village_doctor)
    with pytest.raises(DateInFuture):
        services.close_registry(
            actor=actor,
            registry_id=registry.pk,
            closed_on=timezone.localdate() + timedelta(days=1),
            reason="moved_out",
        )
    with pytest.raises(InvalidInput) as err:
        services.close_registry(
            actor=actor, registry_id=registry.pk, closed_on=date(2026, 1, 9), reason="moved_out"
        )
    assert err.value.field == "closed_on"


def test_closing_a_closed_registry_is_refused(community, village_doctor):
    registry = make_registry(org=community.village, closed_on=date(2026, 2, 1), close_reason="death")
    with pytest.raises(RegistryClosed):
        services.close_registry(
            actor=actor_of(village_doctor),
            registry_id=registry.pk,
            closed_on=date(2026, 3, 1),
            reason="death",
        )


def test_closing_another_villages_registry_is_not_found(community, other_village_doctor):
    registry = make_registry(org=community.village)
    with pytest.raises(NotFound):
        services.close_registry(
            actor=actor_of(other_village_doctor),
            registry_id=registry.pk,
            closed_on=date(2026, 3, 1),
            reason="death",
        )
    registry.refresh_from_db()
    assert registry.status == "active"


def test_transfer_to_another_village_of_the_township(community, township_doctor, village_doctor, staff_of):
    second_village = f.make_org("东村卫生室", "village_clinic", community.township)
    registry = make_registry(org=community.village, responsible_doctor=village_doctor)
    moved = services.transfer_registry(
        actor=actor_of(township_doctor),
        registry_id=registry.pk,
        managing_org_id=second_village.pk,
        reason="搬家",
    )
    assert moved.managing_org == second_village
    assert moved.responsible_doctor is None  # the old village doctor does not work above the new village
    event = AuditEvent.objects.get(action="chronic.registry.transfer")
    assert event.detail["before"]["managing_org_id"] == community.village.pk
    assert event.detail["after"]["managing_org_id"] == second_village.pk


def test_transfer_of_responsible_doctor_only(community, township_doctor, village_doctor):
    registry = make_registry(org=community.village)
    moved = services.transfer_registry(
        actor=actor_of(township_doctor), registry_id=registry.pk, responsible_doctor_id=village_doctor.pk
    )
    assert moved.responsible_doctor == village_doctor and moved.managing_org == community.village


def test_transfer_out_of_scope_is_refused(community, village_doctor):
    registry = make_registry(org=community.village)
    with pytest.raises(services.OrganisationNotInScope):
        services.transfer_registry(
            actor=actor_of(village_doctor),
            registry_id=registry.pk,
            managing_org_id=community.other_village.pk,
        )


def test_village_doctor_sees_only_the_village_and_township_sees_its_villages(
    community, village_doctor, township_doctor, other_village_doctor
):
    mine = make_registry(org=community.village)
    theirs = make_registry(org=community.other_village)
    assert list(selectors.registries_visible_to(actor_of(village_doctor))) == [mine]
    assert set(selectors.registries_visible_to(actor_of(township_doctor))) == {mine}
    assert list(selectors.registries_visible_to(actor_of(other_village_doctor))) == [theirs]
    with pytest.raises(NotFound):
        selectors.access_registry(actor_of(other_village_doctor), mine.pk)
    assert selectors.access_registry(actor_of(township_doctor), mine.pk) == mine
    assert AuditEvent.objects.filter(
        action="chronic.registry.view", outcome="ok", patient_id=mine.patient_id
    ).exists()


def test_roles_without_chronic_manage_see_no_registry(community, staff_of):
    make_registry(org=community.village)
    coordinator = staff_of(policy.COORDINATOR, community.county)
    assert not selectors.registries_visible_to(actor_of(coordinator)).exists()


def test_diagnosis_before_birth_is_refused(community, village_doctor):
    patient = make_chronic_patient(community.village, birth=date(1958, 3, 14))
    with pytest.raises(InvalidInput) as err:
        _enrol(actor_of(village_doctor), patient, community.village, diagnosed_on=date(1950, 1, 1))
    assert err.value.field == "diagnosed_on"
