"""Screening service and work lists (chronic.md R1.1–R1.4)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests import factories as f
from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_chronic_patient, make_follow_up, make_registry
from tests.conftest import IS_POSTGRES
from tests.helpers import race
from yilian.chronic import errors, rules
from yilian.chronic.models import Referral, Registry, ScreeningCase, ScreeningReading
from yilian.chronic.selectors import screening as selectors
from yilian.chronic.services import screening as services
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.models import AuditEvent

TODAY = date(2026, 6, 1)


@pytest.fixture
def doctor(village_doctor):
    return actor_of(village_doctor)


@pytest.fixture
def resident(community):
    return make_chronic_patient(community.village, name="周大山", birth=date(1970, 2, 3))


def screen(actor, patient, org, *, on=TODAY, sbp=None, dbp=None, **kw):
    kw.setdefault("setting", "free_clinic")
    return services.record_screening(
        actor=actor,
        patient_id=patient.pk,
        organisation_id=org.pk,
        taken_on=on,
        sbp=sbp,
        dbp=dbp,
        today=kw.pop("today", TODAY),
        **kw,
    )


def test_reading_over_140_90_opens_suspected_case_with_recheck_in_14_days(doctor, resident, community):
    out = screen(doctor, resident, community.village, sbp=146, dbp=88)
    assert out.reading.result == "suspected_htn"
    assert "R1.2" in out.reading.rules_fired
    (case,) = out.cases
    assert case.status == ScreeningCase.Status.SUSPECTED
    assert case.disease == "htn"
    assert case.due_on == TODAY + timedelta(days=14)
    assert out.referral is None
    summary = selectors.describe_screening(out.reading, out.cases, out.referral)
    assert "血压偏高（疑似高血压），请在2周内复查" in summary.message


def test_139_89_opens_no_case(doctor, resident, community):
    out = screen(doctor, resident, community.village, sbp=139, dbp=89)
    assert out.reading.result == "high_normal"
    assert out.cases == ()
    assert not ScreeningCase.objects.exists()


def test_three_days_over_threshold_makes_preliminary_and_refers_up_with_tracking(doctor, resident, community):
    screen(doctor, resident, community.village, on=TODAY - timedelta(days=20), sbp=150, dbp=95)
    screen(doctor, resident, community.village, on=TODAY - timedelta(days=6), sbp=142, dbp=80)
    out = screen(doctor, resident, community.village, sbp=138, dbp=92)
    assert out.reading.result == "preliminary_htn"
    (case,) = out.cases
    assert case.status == ScreeningCase.Status.PRELIMINARY
    assert case.due_on == TODAY + timedelta(days=14)
    assert ScreeningCase.objects.count() == 1  # the suspected case advanced, no second case
    referral = out.referral
    assert referral is not None
    assert referral.screening_case_id == case.pk
    assert referral.from_org_id == community.village.pk
    assert referral.to_org_id == community.township.pk
    assert referral.tracking_due_on == TODAY + timedelta(days=14)
    assert "R1.2" in referral.rules_fired
    assert "转诊至留格庄镇卫生院" in selectors.describe_screening(out.reading, out.cases, referral).message


def test_same_day_repeats_count_once(doctor, resident, community):
    screen(doctor, resident, community.village, on=TODAY - timedelta(days=7), sbp=150, dbp=95)
    screen(doctor, resident, community.village, sbp=150, dbp=95)
    out = screen(doctor, resident, community.village, sbp=152, dbp=96)  # same day again
    assert out.reading.result == "suspected_htn"
    assert out.cases[0].status == ScreeningCase.Status.SUSPECTED
    assert not Referral.objects.exists()


def test_a_further_high_reading_of_a_preliminary_case_does_not_refer_twice(doctor, resident, community):
    for days in (30, 20, 10):
        screen(doctor, resident, community.village, on=TODAY - timedelta(days=days), sbp=150, dbp=95)
    out = screen(doctor, resident, community.village, sbp=155, dbp=96)
    assert out.cases[0].status == ScreeningCase.Status.PRELIMINARY
    assert out.referral is None
    assert Referral.objects.count() == 1


def test_normal_recheck_excludes_the_suspected_case(doctor, resident, community):
    screen(doctor, resident, community.village, on=TODAY - timedelta(days=10), sbp=145, dbp=85)
    out = screen(doctor, resident, community.village, sbp=128, dbp=78)
    case = ScreeningCase.objects.get()
    assert case.status == ScreeningCase.Status.EXCLUDED
    assert case.closed_on == TODAY
    assert "已排除疑似高血压" in selectors.describe_screening(out.reading, out.cases).message


def test_high_glucose_opens_suspected_t2dm_and_high_bp_an_htn_case_too(doctor, resident, community):
    out = screen(doctor, resident, community.village, sbp=150, dbp=92, fpg_mmol="7.0")
    assert {c.disease for c in out.cases} == {"htn", "t2dm"}
    assert "R1.4" in out.reading.rules_fired
    message = selectors.describe_screening(out.reading, out.cases).message
    assert "疑似糖尿病" in message and "疑似高血压" in message


def test_fpg_69_opens_no_t2dm_case(doctor, resident, community):
    out = screen(doctor, resident, community.village, fpg_mmol=Decimal("6.9"))
    assert out.cases == ()


def test_risk_factors_and_bmi_are_stored(doctor, resident, community):
    out = screen(
        doctor,
        resident,
        community.village,
        sbp=132,
        dbp=80,
        height_cm="170",
        weight_kg="75",
        family_history_htn=True,
        high_salt_diet=True,
    )
    reading = out.reading
    assert services.body_mass_index(reading.height_cm, reading.weight_kg) == Decimal("26.0")
    assert set(reading.risk_factors) >= {
        "high_normal_bp",
        "overweight",
        "family_history_htn",
        "high_salt_diet",
    }
    assert "R1.3" in reading.rules_fired
    assert out.evaluation.next_bp_due == rules.add_months(TODAY, 6)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"sbp": 30, "dbp": 20}, errors.ReadingOutOfRange),
        ({"sbp": 400, "dbp": 90}, errors.ReadingOutOfRange),
        ({"sbp": 120, "dbp": 130}, errors.DiastolicNotBelowSystolic),
        ({"fpg_mmol": "126"}, errors.GlucoseUnitSuspect),
        ({"sbp": 120}, services.BloodPressureIncomplete),
        ({}, services.ScreeningEmpty),
        ({"sbp": "abc", "dbp": 80}, InvalidInput),
        ({"sbp": "120.5", "dbp": 80}, InvalidInput),
    ],
)
def test_bad_readings_are_refused_and_nothing_is_written(doctor, resident, community, values, error):
    with pytest.raises(error):
        screen(doctor, resident, community.village, **values)
    assert not ScreeningReading.objects.exists()
    assert not ScreeningCase.objects.exists()


def test_future_date_is_refused(doctor, resident, community):
    with pytest.raises(errors.DateInFuture):
        screen(doctor, resident, community.village, on=TODAY + timedelta(days=1), sbp=120, dbp=80)


def test_other_villages_resident_is_not_found(doctor, community):
    stranger = make_chronic_patient(community.other_village, name="吴外村")
    with pytest.raises(NotFound):
        screen(doctor, stranger, community.village, sbp=120, dbp=80)
    with pytest.raises(NotFound):
        screen(doctor, stranger, community.other_village, sbp=120, dbp=80)
    assert AuditEvent.objects.filter(outcome="refused", patient_id=stranger.pk).exists()


def test_same_client_uuid_records_once(doctor, resident, community):
    key = uuid.uuid4()
    first = screen(doctor, resident, community.village, sbp=150, dbp=95, client_uuid=key)
    again = screen(doctor, resident, community.village, sbp=150, dbp=95, client_uuid=str(key))
    assert again.replayed and again.reading.pk == first.reading.pk
    assert [c.pk for c in again.cases] == [c.pk for c in first.cases]
    assert ScreeningReading.objects.count() == 1
    assert ScreeningCase.objects.count() == 1


def test_recording_is_audited(doctor, resident, community):
    out = screen(doctor, resident, community.village, sbp=150, dbp=95)
    event = AuditEvent.objects.get(action="chronic.screening.record")
    assert event.patient_id == resident.pk
    assert event.detail["result"] == "suspected_htn"
    assert event.detail["cases"][0]["id"] == out.cases[0].pk


def test_resident_in_htn_registry_gets_no_htn_case(doctor, resident, community):
    make_registry(patient=resident)
    out = screen(doctor, resident, community.village, sbp=160, dbp=100)
    assert out.cases == ()
    message = selectors.describe_screening(out.reading, out.cases).message
    assert "已在高血压管理中" in message and "疑似" not in message


def test_resident_in_t2dm_registry_gets_no_t2dm_case(doctor, resident, community):
    make_registry(patient=resident, disease="t2dm")
    out = screen(doctor, resident, community.village, sbp=120, dbp=80, fpg_mmol="9.0")
    assert out.cases == ()
    assert "已在糖尿病管理中" in selectors.describe_screening(out.reading, out.cases).message


# --- confirm / exclude ----------------------------------------------------------------------------


def test_confirm_enrols_the_resident(doctor, resident, community, village_doctor):
    case = screen(doctor, resident, community.village, sbp=150, dbp=95).cases[0]
    registry = services.confirm_case(
        actor=doctor,
        case_id=case.pk,
        diagnosed_on=TODAY,
        diagnosis_source=Registry.DiagnosisSource.SCREENING,
        managing_org_id=community.village.pk,
        responsible_doctor_id=village_doctor.pk,
        today=TODAY,
        registered_on=TODAY,
    )
    case.refresh_from_db()
    assert case.status == ScreeningCase.Status.CONFIRMED
    assert case.registry_id == registry.pk
    assert registry.disease == "htn" and registry.status == Registry.Status.ACTIVE
    assert AuditEvent.objects.filter(action="chronic.screening.confirm").exists()


def test_closed_case_cannot_be_confirmed_or_excluded_again(doctor, resident, community):
    case = screen(doctor, resident, community.village, sbp=150, dbp=95).cases[0]
    services.exclude_case(actor=doctor, case_id=case.pk, excluded_on=TODAY, today=TODAY)
    with pytest.raises(services.CaseClosed):
        services.exclude_case(actor=doctor, case_id=case.pk, today=TODAY)
    with pytest.raises(services.CaseClosed):
        services.confirm_case(
            actor=doctor,
            case_id=case.pk,
            diagnosed_on=TODAY,
            diagnosis_source="screening",
            managing_org_id=community.village.pk,
            today=TODAY,
        )
    assert not Registry.objects.exists()


def test_other_villages_case_is_not_found(community, resident, staff_of, doctor):
    case = screen(doctor, resident, community.village, sbp=150, dbp=95).cases[0]
    outsider = actor_of(staff_of("village_doctor", community.other_village))
    with pytest.raises(NotFound):
        services.exclude_case(actor=outsider, case_id=case.pk, today=TODAY)


# --- work lists -----------------------------------------------------------------------------------


def test_screening_due_lists_only_35_plus_not_screened_this_year_and_not_enrolled(doctor, community):
    due = make_chronic_patient(community.village, name="甲", birth=date(1991, 6, 1))  # 35 today
    make_chronic_patient(community.village, name="乙", birth=date(1991, 6, 2))  # 34
    screened = make_chronic_patient(community.village, name="丙", birth=date(1960, 1, 1))
    enrolled = make_chronic_patient(community.village, name="丁", birth=date(1960, 1, 1))
    last_year = make_chronic_patient(community.village, name="戊", birth=date(1960, 1, 1))
    followed = make_chronic_patient(community.village, name="己", birth=date(1960, 1, 1))
    make_chronic_patient(community.other_village, name="庚", birth=date(1960, 1, 1))  # out of scope
    screen(doctor, screened, community.village, on=date(2026, 1, 5), sbp=120, dbp=80)
    screen(doctor, last_year, community.village, on=date(2025, 12, 31), sbp=120, dbp=80, today=TODAY)
    make_registry(patient=enrolled)
    dm = make_registry(patient=followed, disease="t2dm")
    make_follow_up(dm, visit_on=date(2026, 3, 1), sbp=130, dbp=80, fpg_mmol="6.5")

    page = selectors.screening_due(doctor, TODAY)
    assert {row.patient.id for row in page.items} == {due.pk, last_year.pk}
    assert page.total == 2


def test_screening_due_paginates(doctor, community):
    for i in range(5):
        make_chronic_patient(community.village, name=f"张{i}", birth=date(1960, 1, 1))
    first = selectors.screening_due(doctor, TODAY, per_page=2)
    third = selectors.screening_due(doctor, TODAY, page=3, per_page=2)
    assert first.total == 5 and len(first.items) == 2 and first.has_next
    assert len(third.items) == 1 and not third.has_next


def test_high_risk_due_after_six_months(doctor, community):
    risky = make_chronic_patient(community.village, name="高危", birth=date(1960, 1, 1))  # ≥55
    young = make_chronic_patient(community.village, name="年轻", birth=date(1985, 1, 1))
    recent = make_chronic_patient(community.village, name="近期", birth=date(1960, 1, 1))
    screen(doctor, risky, community.village, on=date(2025, 12, 1), sbp=120, dbp=78, today=TODAY)
    screen(doctor, young, community.village, on=date(2025, 11, 1), sbp=118, dbp=76, today=TODAY)
    screen(doctor, recent, community.village, on=date(2026, 5, 1), sbp=120, dbp=78)

    page = selectors.high_risk_due(doctor, TODAY, within_days=0)
    assert [row.patient.id for row in page.items] == [risky.pk]
    assert page.items[0].due_on == date(2026, 6, 1)
    assert page.items[0].days_overdue == 0
    # the resident screened on 1 May is due on 1 November: in the list when looking far enough ahead
    later = selectors.high_risk_due(doctor, TODAY, within_days=153)
    assert {row.patient.id for row in later.items} == {risky.pk, recent.pk}


def test_high_risk_due_uses_the_latest_reading_only(doctor, community):
    p = make_chronic_patient(community.village, name="高危", birth=date(1960, 1, 1))
    screen(doctor, p, community.village, on=date(2025, 10, 1), sbp=120, dbp=78, today=TODAY)
    screen(doctor, p, community.village, on=date(2026, 5, 20), sbp=120, dbp=78)
    assert selectors.high_risk_due(doctor, TODAY).total == 0


@pytest.mark.parametrize(
    "horizon", [date(2026, 2, 28), date(2026, 4, 30), date(2026, 8, 30), date(2024, 2, 29)]
)
def test_due_bound_inverts_add_months(horizon):
    bound = selectors._due_bound(horizon, 6)
    for offset in range(-40, 40):
        d = bound + timedelta(days=offset)
        assert (rules.add_months(d, 6) <= horizon) == (d <= bound)


def test_cases_due_lists_open_cases_of_the_scope(doctor, resident, community, staff_of):
    case = screen(doctor, resident, community.village, on=TODAY - timedelta(days=20), sbp=150, dbp=95).cases[
        0
    ]
    other = make_chronic_patient(community.other_village, name="外村")
    outsider = actor_of(staff_of("village_doctor", community.other_village))
    screen(outsider, other, community.other_village, on=TODAY - timedelta(days=20), sbp=150, dbp=95)

    page = selectors.cases_due(doctor, TODAY)
    assert [row.id for row in page.items] == [case.pk]
    assert page.items[0].days_overdue == 6
    township = actor_of(staff_of("doctor", community.township))
    assert selectors.cases_due(township, TODAY).total == 1
    county = actor_of(staff_of("doctor", community.county))
    assert selectors.cases_due(county, TODAY).total == 2


def test_confirming_a_preliminary_case_tracks_its_referral(doctor, resident, community):
    for days in (30, 20, 10):
        screen(doctor, resident, community.village, on=TODAY - timedelta(days=days), sbp=150, dbp=95)
    case = ScreeningCase.objects.get()
    assert case.status == ScreeningCase.Status.PRELIMINARY
    services.confirm_case(
        actor=doctor,
        case_id=case.pk,
        diagnosed_on=TODAY,
        diagnosis_source=Registry.DiagnosisSource.COUNTY_HOSPITAL,
        managing_org_id=community.village.pk,
        today=TODAY,
        registered_on=TODAY,
    )
    referral = Referral.objects.get()
    assert referral.status == Referral.Status.TRACKED
    assert referral.tracked_on == TODAY


def test_excluding_a_preliminary_case_tracks_its_referral(doctor, resident, community):
    for days in (30, 20, 10):
        screen(doctor, resident, community.village, on=TODAY - timedelta(days=days), sbp=150, dbp=95)
    case = ScreeningCase.objects.get()
    services.exclude_case(actor=doctor, case_id=case.pk, reason="县医院动态血压正常", today=TODAY)
    referral = Referral.objects.get()
    assert referral.status == Referral.Status.TRACKED
    assert "县医院动态血压正常" in referral.outcome


@pytest.mark.django_db(transaction=IS_POSTGRES)
def test_concurrent_screenings_of_one_resident_open_one_case(concurrent_db):
    """Four phones submit high readings for the same resident at once: every reading is stored and
    exactly one suspected case is open (the patient row is locked while the case is decided).
    On SQLite (one writer at a time) the same submissions run one after another."""
    county = f.make_org("县医院", "county_hospital", code="C-SCR")
    village = f.make_org("村卫生室", "village_clinic", county, code="V-SCR")
    actor = actor_of(f.make_staff("village_doctor", village))
    patient = make_chronic_patient(village)

    def work(i: int):
        return services.record_screening(
            actor=actor,
            patient_id=patient.pk,
            organisation_id=village.pk,
            taken_on=TODAY,
            setting="free_clinic",
            sbp=150 + i,
            dbp=95,
            today=TODAY,
        )

    results = race(4, work) if IS_POSTGRES else [work(i) for i in range(4)]
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert ScreeningReading.objects.filter(patient=patient).count() == 4
    assert ScreeningCase.objects.filter(patient=patient, status="suspected").count() == 1
