"""Recording follow-ups (随访) through the service: validation, evaluation (R3–R5), plan, referral (R7.2)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests import factories as f
from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_chronic_patient, make_follow_up, make_registry
from yilian.chronic import errors
from yilian.chronic.models import FollowUp, Referral, Registry
from yilian.chronic.services import followups as services
from yilian.chronic.services.followups import FollowUpData
from yilian.common import policy
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db
TODAY = date(2026, 9, 30)


def _record(actor, patient, today=TODAY, diseases=None, client_uuid=None, **values):
    values.setdefault("visit_on", date(2026, 9, 1))
    values.setdefault("mode", "clinic")
    return services.record_follow_up(
        actor=actor,
        patient_id=patient.pk,
        data=FollowUpData(**values),
        diseases=diseases,
        client_uuid=client_uuid,
        today=today,
    )


@pytest.fixture
def htn(community):
    patient = make_chronic_patient(community.village, birth=date(1970, 5, 1))
    return make_registry(patient=patient, registered_on=date(2026, 1, 5))


def test_controlled_visit_is_satisfied_with_a_three_month_plan_and_an_audit_row(htn, village_doctor):
    [fu] = _record(actor_of(village_doctor), htn.patient, sbp=139, dbp=89)
    assert fu.classification == "satisfied"
    assert fu.bp_at_target is True and fu.referral == "none"
    assert {"R4.1", "R4.3", "R5.1"} <= set(fu.rules_fired)
    assert fu.next_due_on == date(2026, 12, 1)
    assert fu.age_at_visit == 56 and fu.organisation == htn.managing_org
    htn.refresh_from_db()
    assert (htn.last_follow_up_on, htn.next_follow_up_on, htn.last_classification) == (
        date(2026, 9, 1),
        date(2026, 12, 1),
        "satisfied",
    )
    event = AuditEvent.objects.get(action="chronic.follow_up.record")
    assert event.patient_id == htn.patient_id and event.detail["rules_fired"] == fu.rules_fired


def test_first_unsatisfied_visit_rechecks_in_two_weeks_without_referral(htn, village_doctor):
    [fu] = _record(actor_of(village_doctor), htn.patient, sbp=140, dbp=85)
    assert (fu.classification, fu.referral, fu.next_due_on) == ("unsatisfied", "none", date(2026, 9, 15))
    assert "R5.2" in fu.rules_fired
    assert not Referral.objects.exists()


def test_two_consecutive_unsatisfied_visits_refer_to_the_township(community, htn, village_doctor):
    make_follow_up(htn, visit_on=date(2026, 8, 1), sbp=150, dbp=95)
    [fu] = _record(actor_of(village_doctor), htn.patient, sbp=152, dbp=92)
    assert fu.referral == "routine" and fu.referral_reasons == ["two_consecutive_unsatisfied"]
    assert "R5.3" in fu.rules_fired
    referral = Referral.objects.get()
    assert referral.from_org == community.village and referral.to_org == community.township
    assert referral.tracking_due_on == date(2026, 9, 15)
    assert referral.follow_up == fu and referral.registry == htn and referral.status == "open"
    assert AuditEvent.objects.filter(action="chronic.referral.open", patient_id=htn.patient_id).exists()


def test_phone_visits_neither_continue_nor_break_the_chain(htn, village_doctor):
    make_follow_up(htn, visit_on=date(2026, 7, 1), sbp=150, dbp=95)
    make_follow_up(htn, visit_on=date(2026, 8, 1), mode="phone")
    [fu] = _record(actor_of(village_doctor), htn.patient, sbp=150, dbp=95)
    assert fu.referral == "routine"


def test_township_doctor_refers_to_the_county_and_the_county_to_itself(
    community, htn, township_doctor, staff_of
):
    make_follow_up(htn, visit_on=date(2026, 8, 1), sbp=150, dbp=95)
    [fu] = _record(actor_of(township_doctor), htn.patient, sbp=150, dbp=95)
    assert fu.organisation == community.township
    assert Referral.objects.get(follow_up=fu).to_org == community.county

    county_doctor = staff_of(policy.DOCTOR, community.county)
    [later] = _record(actor_of(county_doctor), htn.patient, visit_on=date(2026, 9, 10), sbp=150, dbp=95)
    referral = Referral.objects.get(follow_up=later)
    assert referral.from_org == community.county and referral.to_org == community.county


def test_urgent_reading_opens_an_urgent_referral(htn, village_doctor, community):
    [fu] = _record(actor_of(village_doctor), htn.patient, sbp=182, dbp=100)
    assert fu.urgent and fu.referral == "urgent" and "urgent" in fu.referral_reasons
    assert {"R3.1", "R3.3"} <= set(fu.rules_fired)
    assert fu.next_due_on == date(2026, 9, 15)
    referral = Referral.objects.get()
    assert referral.kind == "urgent" and referral.to_org == community.township


def test_a_later_follow_up_of_any_mode_tracks_the_open_referral(htn, village_doctor):
    actor = actor_of(village_doctor)
    _record(actor, htn.patient, sbp=185, dbp=100)
    [call] = _record(actor, htn.patient, visit_on=date(2026, 9, 8), mode="phone")
    referral = Referral.objects.get()
    assert referral.status == "tracked" and referral.tracked_on == date(2026, 9, 8)
    assert call.mode == "phone" and call.referral == "none"
    assert AuditEvent.objects.filter(action="chronic.referral.track").count() == 1


def test_a_back_dated_visit_does_not_track_a_referral_opened_after_it(htn, village_doctor):
    actor = actor_of(village_doctor)
    _record(actor, htn.patient, sbp=185, dbp=100)
    _record(actor, htn.patient, visit_on=date(2026, 8, 20), mode="phone")
    assert Referral.objects.get().status == "open"


def test_back_dated_visit_keeps_the_plan_of_the_latest_visit(htn, village_doctor):
    actor = actor_of(village_doctor)
    _record(actor, htn.patient, visit_on=date(2026, 9, 1), sbp=130, dbp=80)
    _record(actor, htn.patient, visit_on=date(2026, 6, 1), sbp=160, dbp=95)
    htn.refresh_from_db()
    assert htn.last_follow_up_on == date(2026, 9, 1)
    assert htn.next_follow_up_on == date(2026, 12, 1)
    assert htn.last_classification == "satisfied"


def test_bp_for_evaluation_is_the_mean_of_two_readings_rounded_half_up(htn, village_doctor):
    # (139 + 140) / 2 = 139.5 → 140: not at target although the first reading alone would be.
    [fu] = _record(actor_of(village_doctor), htn.patient, sbp=139, dbp=80, sbp2=140, dbp2=81)
    assert (fu.sbp, fu.dbp, fu.sbp2, fu.dbp2) == (139, 80, 140, 81)
    assert fu.bp_at_target is False
    assert services.evaluation_bp(
        FollowUpData(date(2026, 1, 1), "clinic", sbp=139, dbp=88, sbp2=138, dbp2=89)
    ) == (
        139,
        89,
    )
    assert services.evaluation_bp(FollowUpData(date(2026, 1, 1), "clinic", sbp=139, dbp=88)) == (139, 88)


def test_elderly_target_uses_age_at_visit(community, village_doctor):
    patient = make_chronic_patient(community.village, birth=date(1961, 9, 1))
    make_registry(patient=patient, registered_on=date(2026, 1, 5))
    [fu] = _record(actor_of(village_doctor), patient, sbp=149, dbp=85)  # 65 on the visit day
    assert fu.age_at_visit == 65 and fu.bp_at_target is True


def test_one_visit_for_htn_and_t2dm_is_one_row_per_registry(community, village_doctor):
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient, registered_on=date(2026, 1, 5))
    make_registry(patient=patient, disease="t2dm", registered_on=date(2026, 1, 5))
    rows = _record(actor_of(village_doctor), patient, sbp=130, dbp=80, fpg_mmol=Decimal("7.0"))
    by = {r.disease: r for r in rows}
    assert by["htn"].classification == "satisfied"
    assert by["t2dm"].classification == "unsatisfied" and by["t2dm"].fpg_at_target is False
    assert by["htn"].visit_key == by["t2dm"].visit_key


def test_a_retry_with_the_same_client_uuid_returns_the_same_rows(htn, village_doctor):
    actor = actor_of(village_doctor)
    key = uuid.uuid4()
    first = _record(actor, htn.patient, sbp=185, dbp=100, client_uuid=key)
    again = _record(actor, htn.patient, sbp=185, dbp=100, client_uuid=key)
    assert [r.pk for r in again] == [r.pk for r in first]
    assert FollowUp.objects.count() == 1 and Referral.objects.count() == 1
    assert AuditEvent.objects.filter(action="chronic.follow_up.record").count() == 1


@pytest.mark.parametrize(
    ("values", "field", "error"),
    [
        ({"sbp": 30, "dbp": 20}, "sbp", errors.ReadingOutOfRange),
        ({"sbp": 400, "dbp": 90}, "sbp", errors.ReadingOutOfRange),
        ({"sbp": 130, "dbp": 80, "sbp2": 130, "dbp2": 250}, "dbp2", errors.ReadingOutOfRange),
        ({"sbp": 130, "dbp": 80, "heart_rate": 10}, "heart_rate", errors.ReadingOutOfRange),
        ({"sbp": 90, "dbp": 120}, "dbp", errors.DiastolicNotBelowSystolic),
        ({"sbp": 120, "dbp": 120}, "dbp", errors.DiastolicNotBelowSystolic),
        ({"sbp": 130, "dbp": 80, "fpg_mmol": Decimal("126")}, "fpg_mmol", errors.GlucoseUnitSuspect),
        ({"sbp": 130}, "dbp", InvalidInput),
        ({"sbp": 130, "dbp": 80, "symptoms": ["flu"]}, "symptoms", InvalidInput),
        ({"sbp": 130, "dbp": 80, "mode": "wechat"}, "mode", InvalidInput),
        ({"sbp": 130, "dbp": 80, "adherence": "sometimes"}, "adherence", InvalidInput),
    ],
)
def test_bad_readings_are_refused_naming_the_field(htn, village_doctor, values, field, error):
    with pytest.raises(error) as err:
        _record(actor_of(village_doctor), htn.patient, **values)
    assert err.value.field == field
    assert not FollowUp.objects.exists()


def test_out_of_range_message_names_the_allowed_range(htn, village_doctor):
    with pytest.raises(errors.ReadingOutOfRange) as err:
        _record(actor_of(village_doctor), htn.patient, sbp=400, dbp=90)
    assert "50" in str(err.value.message) and "300" in str(err.value.message)
    assert err.value.as_dict()["min"] == "50" and err.value.as_dict()["max"] == "300"


def test_future_visit_is_refused(htn, village_doctor):
    with pytest.raises(errors.DateInFuture):
        _record(actor_of(village_doctor), htn.patient, visit_on=TODAY + timedelta(days=1), sbp=130, dbp=80)


def test_default_today_is_the_local_date(htn, village_doctor):
    with pytest.raises(errors.DateInFuture):
        services.record_follow_up(
            actor=actor_of(village_doctor),
            patient_id=htn.patient_id,
            data=FollowUpData(
                visit_on=timezone.localdate() + timedelta(days=1), mode="clinic", sbp=130, dbp=80
            ),
        )


def test_visit_before_enrolment_is_refused(htn, village_doctor):
    with pytest.raises(errors.VisitBeforeEnrolment):
        _record(actor_of(village_doctor), htn.patient, visit_on=date(2026, 1, 4), sbp=130, dbp=80)


def test_face_to_face_htn_visit_needs_a_bp(htn, village_doctor):
    with pytest.raises(errors.ReadingsRequired) as err:
        _record(actor_of(village_doctor), htn.patient, mode="home", fpg_mmol=Decimal("6.0"))
    assert err.value.field == "sbp"
    # a phone follow-up needs none
    assert _record(actor_of(village_doctor), htn.patient, mode="phone")[0].classification == ""


def test_face_to_face_t2dm_visit_needs_a_glucose_and_nothing_is_half_written(community, village_doctor):
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient, registered_on=date(2026, 1, 5))
    make_registry(patient=patient, disease="t2dm", registered_on=date(2026, 1, 5))
    with pytest.raises(errors.ReadingsRequired) as err:
        _record(actor_of(village_doctor), patient, sbp=130, dbp=80)
    assert err.value.field == "fpg_mmol"
    assert not FollowUp.objects.exists()
    # a random glucose is the T2DM measurement too
    rows = _record(actor_of(village_doctor), patient, sbp=130, dbp=80, glucose_any_mmol=Decimal("9.0"))
    assert len(rows) == 2


def test_not_enrolled_for_the_disease_asked(htn, village_doctor):
    with pytest.raises(errors.NotEnrolled):
        _record(actor_of(village_doctor), htn.patient, diseases=["t2dm"], fpg_mmol=Decimal("6.0"))


def test_patient_without_any_registry_is_not_enrolled(community, village_doctor):
    patient = make_chronic_patient(community.village)
    with pytest.raises(errors.NotEnrolled):
        _record(actor_of(village_doctor), patient, sbp=130, dbp=80)


def test_closed_registry_takes_no_follow_up(community, village_doctor):
    registry = make_registry(org=community.village, closed_on=date(2026, 5, 1), close_reason="death")
    with pytest.raises(errors.NotEnrolled):
        _record(actor_of(village_doctor), registry.patient, sbp=130, dbp=80)


def test_unknown_disease_is_refused(htn, village_doctor):
    with pytest.raises(InvalidInput):
        _record(actor_of(village_doctor), htn.patient, diseases=["flu"], sbp=130, dbp=80)


def test_village_doctor_of_another_village_gets_not_found(htn, other_village_doctor):
    with pytest.raises(NotFound):
        _record(actor_of(other_village_doctor), htn.patient, sbp=130, dbp=80)
    assert not FollowUp.objects.exists()


def test_unknown_patient_is_not_found(htn, village_doctor):
    with pytest.raises(NotFound):
        services.record_follow_up(
            actor=actor_of(village_doctor),
            patient_id=999999,
            data=FollowUpData(visit_on=date(2026, 9, 1), mode="clinic", sbp=130, dbp=80),
            today=TODAY,
        )


def test_patient_managed_elsewhere_but_living_in_scope_sees_only_registries_in_scope(
    community, village_doctor, staff_of
):
    """A village patient whose cancer registry is managed by the county: the village doctor's visit
    covers only the registries the village manages."""
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient, registered_on=date(2026, 1, 5))
    make_registry(patient=patient, org=community.county, disease="cancer", registered_on=date(2026, 1, 5))
    rows = _record(actor_of(village_doctor), patient, sbp=130, dbp=80)
    assert [r.disease for r in rows] == ["htn"]
    assert Registry.objects.get(disease="cancer").last_follow_up_on is None


def test_recording_refreshes_the_year_roll_up(htn, village_doctor):
    _record(actor_of(village_doctor), htn.patient, sbp=130, dbp=80)
    assert htn.years.filter(year=2026).exists()


def test_integration_key_actor_records_at_its_organisation(community, htn):
    """An API key (integration role at the township) records like a township member."""
    staff = f.make_staff(policy.INTEGRATION, community.township)
    [fu] = _record(actor_of(staff), htn.patient, sbp=130, dbp=80)
    assert fu.organisation == community.township


def test_visit_before_birth_is_refused_not_a_500(community, village_doctor):
    """Bad master data (a registry older than the patient) must still give a 4xx, never an integrity error."""
    patient = make_chronic_patient(community.village, birth=date(2026, 3, 1))
    make_registry(patient=patient, registered_on=date(2026, 1, 5))
    with pytest.raises(InvalidInput) as err:
        _record(actor_of(village_doctor), patient, visit_on=date(2026, 2, 1), sbp=130, dbp=80)
    assert err.value.field == "visit_on"


def test_unparsable_glucose_names_its_field(htn, village_doctor):
    with pytest.raises(InvalidInput) as err:
        _record(actor_of(village_doctor), htn.patient, sbp=130, dbp=80, fpg_mmol="seven")
    assert err.value.field == "fpg_mmol"
