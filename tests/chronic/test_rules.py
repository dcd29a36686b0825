"""Unit tests of the pure chronic-disease rules (docs/rules/chronic.md): one per rule and boundary."""

from __future__ import annotations

import ast
import dataclasses
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from yilian.chronic import rules as r
from yilian.chronic.rules import (
    CANCER,
    CHD,
    COPD,
    DEFAULTS,
    HTN,
    STROKE,
    T2DM,
    Parameters,
    PreviousVisit,
    RegistryFacts,
    ScreeningInput,
    VisitInput,
    evaluate_visit,
)

DAY = date(2024, 5, 10)
YEAR = (date(2024, 1, 1), date(2024, 12, 31))


def htn(sbp=None, dbp=None, *, age=50, mode="clinic", on=DAY, **kw):
    return VisitInput(disease=HTN, visit_on=on, mode=mode, age=age, sbp=sbp, dbp=dbp, **kw)


def dm(fpg=None, *, age=50, mode="clinic", on=DAY, **kw):
    return VisitInput(
        disease=T2DM, visit_on=on, mode=mode, age=age, fpg_mmol=None if fpg is None else D(fpg), **kw
    )


# --------------------------------------------------------------------------------------------------
# Module shape
# --------------------------------------------------------------------------------------------------


def test_rules_module_imports_nothing_from_django():
    tree = ast.parse(Path(r.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not {name for name in imported if name.split(".")[0] == "django"}


def test_module_docstring_names_its_sources():
    assert "chronic.md" in r.__doc__
    assert "国家基本公共卫生服务规范（第三版）" in r.__doc__


def test_defaults_are_the_chronic_md_settings():
    assert Parameters() == DEFAULTS
    assert (DEFAULTS.routine_interval_months, DEFAULTS.recheck_days, DEFAULTS.referral_tracking_days) == (
        3,
        14,
        14,
    )
    assert DEFAULTS.elderly_age == 65
    assert DEFAULTS.require_quarterly_distribution is False
    assert DEFAULTS.pregnant_fpg_threshold == D("6.1")
    assert (DEFAULTS.reminder_overdue_days, DEFAULTS.lost_after_days) == (3, 365)
    assert (DEFAULTS.call_reached_snooze_days, DEFAULTS.call_later_snooze_days) == (30, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.recheck_days = 7  # type: ignore[misc]


def test_every_symptom_code_has_a_chinese_label():
    assert set(r.SYMPTOM_LABELS) == r.HTN_SYMPTOMS | r.T2DM_SYMPTOMS
    assert all(label and not label.isascii() for label in r.SYMPTOM_LABELS.values())


def test_symptom_codes_are_exactly_those_of_chronic_md():
    assert {
        "altered_consciousness",
        "severe_headache_or_dizziness",
        "nausea_vomiting",
        "blurred_vision",
        "eye_pain",
        "palpitations",
        "chest_tightness",
        "orthopnea",
    } == r.HTN_SYMPTOMS
    assert {
        "altered_consciousness_or_behavior",
        "acetone_breath",
        "palpitations",
        "sweating",
        "anorexia",
        "nausea",
        "vomiting",
        "polydipsia",
        "polyuria",
        "abdominal_pain",
        "deep_rapid_breathing",
        "flushed_skin",
        "sudden_vision_loss",
    } == r.T2DM_SYMPTOMS


def test_unknown_symptoms_are_reported():
    assert r.unknown_symptoms(["palpitations", "hiccups"]) == {"hiccups"}


# --------------------------------------------------------------------------------------------------
# §2 dates
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 3, date(2024, 4, 30)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2023, 1, 31), 1, date(2023, 2, 28)),  # common year
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2024, 11, 30), 3, date(2025, 2, 28)),  # crosses the year
        (date(2024, 5, 10), 3, date(2024, 8, 10)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 5, 10), 0, date(2024, 5, 10)),
    ],
)
def test_add_months_keeps_the_day_clamped_to_month_end(start, months, expected):
    assert r.add_months(start, months) == expected


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1959, 5, 10), date(2024, 5, 10), 65),
        (date(1959, 5, 11), date(2024, 5, 10), 64),
        (date(1959, 5, 9), date(2024, 5, 10), 65),
        (date(1960, 2, 29), date(2023, 2, 28), 62),
        (date(1960, 2, 29), date(2023, 3, 1), 63),
        (date(1960, 2, 29), date(2024, 2, 29), 64),
    ],
)
def test_age_is_completed_years(born, on, age):
    assert r.age_on(born, on) == age


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------


def test_plausible_readings_have_no_problem():
    assert (
        r.validate_readings(
            sbp=138,
            dbp=86,
            sbp2=136,
            dbp2=84,
            fpg_mmol=D("6.2"),
            glucose_any_mmol=D("9.0"),
            heart_rate=72,
            temperature_c=D("36.6"),
            weight_kg=D("68.5"),
            height_cm=D("165.0"),
            waist_cm=D("88.0"),
            symptoms=["palpitations"],
            note="x",
        )
        == []
    )


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("sbp", 30, "out_of_range"),
        ("sbp", 400, "out_of_range"),
        ("sbp", 49, "out_of_range"),
        ("sbp", 301, "out_of_range"),
        ("dbp", 29, "out_of_range"),
        ("dbp", 201, "out_of_range"),
        ("sbp2", 400, "out_of_range"),
        ("dbp2", 10, "out_of_range"),
        ("heart_rate", 19, "out_of_range"),
        ("heart_rate", 251, "out_of_range"),
        ("fpg_mmol", D("0.9"), "out_of_range"),
        ("temperature_c", D("45.0"), "out_of_range"),
        ("weight_kg", D("1.0"), "out_of_range"),
        ("height_cm", D("300.0"), "out_of_range"),
        ("waist_cm", D("10.0"), "out_of_range"),
        ("sbp", "abc", "out_of_range"),
        ("fpg_mmol", D("126"), "glucose_unit_suspect"),
        ("glucose_any_mmol", D("200"), "glucose_unit_suspect"),
        ("fpg_mmol", D("35.1"), "glucose_unit_suspect"),
        ("glucose_any_mmol", D("700"), "out_of_range"),  # 38.9 mmol/L is not plausible either
    ],
)
def test_implausible_readings_are_refused(field, value, problem):
    assert r.validate_readings(**{field: value}) == [(field, problem)]


@pytest.mark.parametrize(
    ("field", "value"), [("sbp", 50), ("sbp", 300), ("dbp", 30), ("fpg_mmol", D("35.0"))]
)
def test_range_limits_are_inclusive(field, value):
    assert r.validate_readings(**{field: value}) == []


@pytest.mark.parametrize(("sbp", "dbp"), [(120, 130), (120, 120)])
def test_diastolic_must_be_below_systolic(sbp, dbp):
    assert r.validate_readings(sbp=sbp, dbp=dbp) == [("dbp", "dbp_not_below_sbp")]


def test_second_reading_pair_is_checked_too():
    assert r.validate_readings(sbp=150, dbp=90, sbp2=80, dbp2=95) == [("dbp2", "dbp_not_below_sbp")]


def test_pair_check_skipped_when_one_value_is_out_of_range():
    assert r.validate_readings(sbp=30, dbp=80) == [("sbp", "out_of_range")]


def test_none_values_are_ignored():
    assert r.validate_readings(sbp=None, dbp=None, fpg_mmol=None) == []


# --------------------------------------------------------------------------------------------------
# R4.1 / R4.2 targets
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sbp", "dbp", "age", "at_target"),
    [
        (140, 90, 50, False),
        (139, 89, 50, True),
        (140, 89, 50, False),
        (139, 90, 50, False),
        (149, 89, 70, True),
        (150, 85, 70, False),
        (149, 90, 70, False),
        (145, 80, 64, False),  # one day before 65 the strict target applies
        (145, 80, 65, True),  # from 65 the relaxed target applies
    ],
)
def test_r4_1_bp_target_boundaries(sbp, dbp, age, at_target):
    evaluation = evaluate_visit(htn(sbp, dbp, age=age), None)
    assert evaluation.bp_at_target is at_target
    assert evaluation.at_target is at_target
    assert evaluation.classification == ("satisfied" if at_target else "unsatisfied")
    assert "R4.1" in evaluation.rules_fired


def test_r4_1_elderly_age_is_a_parameter():
    params = Parameters(elderly_age=80)
    assert evaluate_visit(htn(145, 80, age=70), None, params).bp_at_target is False


@pytest.mark.parametrize(("fpg", "at_target"), [("7.0", False), ("6.9", True), ("7.1", False), ("4.5", True)])
def test_r4_2_fpg_target_boundaries(fpg, at_target):
    evaluation = evaluate_visit(dm(fpg), None)
    assert evaluation.fpg_at_target is at_target
    assert evaluation.at_target is at_target
    assert "R4.2" in evaluation.rules_fired


def test_r4_2_missing_fpg_is_not_evaluable():
    plan = DAY + timedelta(days=40)
    evaluation = evaluate_visit(
        dm(None, glucose_any_mmol=D("9.0")), PreviousVisit(DAY - timedelta(days=30), False), current_plan=plan
    )
    assert evaluation.fpg_at_target is None
    assert evaluation.at_target is None
    assert evaluation.classification == ""
    assert evaluation.referral == "none"  # does not continue the R5.3 chain
    assert evaluation.next_due_on == plan


def test_r4_2_missing_fpg_still_classified_by_the_other_criteria():
    assert evaluate_visit(dm(None, adr=True), None).classification == "adr"


# --------------------------------------------------------------------------------------------------
# R3.1 / R3.2 / R3.3 urgent
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sbp", "dbp", "urgent"),
    [(179, 100, False), (180, 100, True), (170, 109, False), (170, 110, True)],
)
def test_r3_1_htn_urgent_bp_thresholds(sbp, dbp, urgent):
    evaluation = evaluate_visit(htn(sbp, dbp), None)
    assert evaluation.urgent is urgent
    assert evaluation.referral == ("urgent" if urgent else "none")
    assert ("R3.1" in evaluation.rules_fired) is urgent


@pytest.mark.parametrize("symptom", sorted(r.HTN_SYMPTOMS))
def test_r3_1_each_htn_symptom_is_urgent(symptom):
    evaluation = evaluate_visit(htn(130, 80, symptoms=frozenset({symptom})), None)
    assert evaluation.urgent
    assert evaluation.referral_reasons == ("urgent",)
    assert f"symptom:{symptom}" in evaluation.urgent_signs


def test_r3_1_a_t2dm_only_symptom_is_not_urgent_for_htn():
    assert not evaluate_visit(htn(130, 80, symptoms=frozenset({"polyuria"})), None).urgent


def test_r3_1_equivalent_wording_from_the_diabetes_list_counts():
    assert evaluate_visit(htn(130, 80, symptoms=frozenset({"vomiting"})), None).urgent
    assert evaluate_visit(dm("6.0", symptoms=frozenset({"nausea_vomiting"})), None).urgent


@pytest.mark.parametrize(("sbp", "dbp", "urgent"), [(140, 80, True), (130, 90, True), (139, 89, False)])
def test_r3_1_pregnant_with_bp_140_90_is_urgent(sbp, dbp, urgent):
    assert evaluate_visit(htn(sbp, dbp, pregnant_or_lactating=True), None).urgent is urgent
    assert not evaluate_visit(htn(sbp, dbp), None).urgent


def test_r3_1_unmanageable_other_disease_is_urgent():
    assert evaluate_visit(htn(130, 80, unmanageable_other_disease=True), None).urgent
    assert evaluate_visit(dm("6.0", unmanageable_other_disease=True), None).urgent


@pytest.mark.parametrize(
    ("fpg", "urgent"), [("16.6", False), ("16.7", True), ("4.0", False), ("3.9", True), ("20.0", True)]
)
def test_r3_2_glucose_thresholds_fasting(fpg, urgent):
    evaluation = evaluate_visit(dm(fpg), None)
    assert evaluation.urgent is urgent
    assert ("R3.2" in evaluation.rules_fired) is urgent


@pytest.mark.parametrize(
    ("glucose", "urgent"), [("16.6", False), ("16.7", True), ("4.0", False), ("3.9", True)]
)
def test_r3_2_glucose_thresholds_random(glucose, urgent):
    assert evaluate_visit(dm(None, glucose_any_mmol=D(glucose)), None).urgent is urgent


@pytest.mark.parametrize(("sbp", "dbp", "urgent"), [(179, 109, False), (180, 80, True), (150, 110, True)])
def test_r3_2_t2dm_bp_thresholds(sbp, dbp, urgent):
    assert evaluate_visit(dm("6.0", sbp=sbp, dbp=dbp), None).urgent is urgent


@pytest.mark.parametrize(("rate", "urgent"), [(100, False), (101, True)])
def test_r3_2_heart_rate_above_100(rate, urgent):
    assert evaluate_visit(dm("6.0", heart_rate=rate), None).urgent is urgent


@pytest.mark.parametrize(("temperature", "urgent"), [("39.0", False), ("39.1", True)])
def test_r3_2_temperature_above_39(temperature, urgent):
    assert evaluate_visit(dm("6.0", temperature_c=D(temperature)), None).urgent is urgent


@pytest.mark.parametrize("symptom", sorted(r.T2DM_SYMPTOMS))
def test_r3_2_each_t2dm_symptom_is_urgent(symptom):
    evaluation = evaluate_visit(dm("6.0", symptoms=frozenset({symptom})), None)
    assert evaluation.urgent
    assert evaluation.referral == "urgent"


def test_r3_2_htn_only_symptom_is_not_urgent_for_t2dm():
    assert not evaluate_visit(dm("6.0", symptoms=frozenset({"eye_pain"})), None).urgent


@pytest.mark.parametrize(("fpg", "urgent"), [("6.0", False), ("6.1", True)])
def test_r3_2_pregnant_fpg_threshold(fpg, urgent):
    assert evaluate_visit(dm(fpg, pregnant_or_lactating=True), None).urgent is urgent
    assert not evaluate_visit(dm(fpg), None).urgent


def test_r3_2_pregnant_threshold_is_a_parameter():
    params = Parameters(pregnant_fpg_threshold=D("5.6"))
    assert evaluate_visit(dm("5.8", pregnant_or_lactating=True), None, params).urgent


def test_r3_3_urgent_rechecks_in_14_days_and_keeps_the_classification():
    evaluation = evaluate_visit(htn(190, 100), None)
    assert evaluation.urgent
    assert evaluation.referral == "urgent"
    assert evaluation.referral_reasons == ("urgent",)
    assert evaluation.classification == "unsatisfied"
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert {"R3.1", "R3.3", "R4.3"} <= set(evaluation.rules_fired)


def test_r3_3_urgent_with_bp_at_target_is_still_satisfied():
    evaluation = evaluate_visit(htn(130, 80, symptoms=frozenset({"chest_tightness"})), None)
    assert evaluation.classification == "satisfied"
    assert evaluation.referral == "urgent"
    assert evaluation.next_due_on == DAY + timedelta(days=14)


def test_r3_3_next_date_follows_recheck_days():
    assert evaluate_visit(htn(190, 100), None, Parameters(recheck_days=10)).next_due_on == DAY + timedelta(
        days=10
    )


# --------------------------------------------------------------------------------------------------
# R4.3 classification precedence
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "bp", "classification"),
    [
        ({"new_complication": True, "adr": True}, (150, 95), "complication"),
        ({"complication_worsened": True, "adr": True}, (130, 80), "complication"),
        ({"adr": True}, (150, 95), "adr"),
        ({"adr_uncontrollable": True}, (130, 80), "adr"),
        ({}, (150, 95), "unsatisfied"),
        ({}, (130, 80), "satisfied"),
    ],
)
def test_r4_3_precedence(flags, bp, classification):
    assert evaluate_visit(htn(*bp, **flags), None).classification == classification


# --------------------------------------------------------------------------------------------------
# R5.x what happens next
# --------------------------------------------------------------------------------------------------


def test_r5_1_satisfied_next_visit_in_three_months():
    evaluation = evaluate_visit(htn(130, 80, on=date(2024, 1, 31)), None)
    assert evaluation.classification == "satisfied"
    assert evaluation.referral == "none"
    assert evaluation.referral_reasons == ()
    assert evaluation.next_due_on == date(2024, 4, 30)
    assert "R5.1" in evaluation.rules_fired


def test_r5_1_interval_is_a_parameter():
    assert evaluate_visit(htn(130, 80), None, Parameters(routine_interval_months=1)).next_due_on == date(
        2024, 6, 10
    )


@pytest.mark.parametrize("previous", [None, PreviousVisit(DAY - timedelta(days=90), True)])
def test_r5_2_first_unsatisfied_rechecks_in_two_weeks_without_referral(previous):
    evaluation = evaluate_visit(htn(150, 95), previous)
    assert evaluation.classification == "unsatisfied"
    assert evaluation.referral == "none"
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert "R5.2" in evaluation.rules_fired


def test_r5_2_adr_rechecks_in_two_weeks_without_referral():
    evaluation = evaluate_visit(htn(130, 80, adr=True), None)
    assert (evaluation.classification, evaluation.referral) == ("adr", "none")
    assert evaluation.next_due_on == DAY + timedelta(days=14)


def test_r5_3_two_consecutive_unsatisfied_refer():
    evaluation = evaluate_visit(htn(150, 95), PreviousVisit(DAY - timedelta(days=14), False))
    assert evaluation.referral == "routine"
    assert evaluation.referral_reasons == ("two_consecutive_unsatisfied",)
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert "R5.3" in evaluation.rules_fired


def test_r5_3_third_consecutive_unsatisfied_refers_again():
    # After the second (referred) visit the third one sees the second as its previous, not at target.
    second = evaluate_visit(htn(150, 95), PreviousVisit(DAY - timedelta(days=14), False))
    third_on = second.next_due_on
    third = evaluate_visit(htn(152, 96, on=third_on), PreviousVisit(DAY, second.at_target))
    assert third.referral == "routine"
    assert third.referral_reasons == ("two_consecutive_unsatisfied",)


def test_r5_3_any_gap_between_the_two_visits_counts():
    assert evaluate_visit(htn(150, 95), PreviousVisit(date(2023, 1, 1), False)).referral == "routine"


def test_r5_3_chain_broken_by_a_visit_at_target():
    assert evaluate_visit(htn(150, 95), PreviousVisit(DAY - timedelta(days=14), True)).referral == "none"


def test_r5_3_current_visit_at_target_does_not_refer():
    assert evaluate_visit(htn(130, 80), PreviousVisit(DAY - timedelta(days=14), False)).referral == "none"


def test_r5_3_applies_to_t2dm():
    evaluation = evaluate_visit(dm("8.0"), PreviousVisit(DAY - timedelta(days=14), False))
    assert evaluation.referral_reasons == ("two_consecutive_unsatisfied",)


def test_r5_3_uses_the_target_not_the_classification():
    # An ADR visit not at target after an unsatisfied one is still two consecutive not at target.
    evaluation = evaluate_visit(htn(150, 95, adr=True), PreviousVisit(DAY - timedelta(days=14), False))
    assert evaluation.classification == "adr"
    assert evaluation.referral_reasons == ("two_consecutive_unsatisfied",)


@pytest.mark.parametrize(
    ("flags", "reasons"),
    [
        ({"adr_uncontrollable": True}, ("adr_uncontrollable",)),
        ({"new_complication": True}, ("new_complication",)),
        ({"complication_worsened": True}, ("complication_worsened",)),
        (
            {"new_complication": True, "complication_worsened": True},
            ("new_complication", "complication_worsened"),
        ),
    ],
)
def test_r5_4_routine_referral_reasons(flags, reasons):
    evaluation = evaluate_visit(htn(130, 80, **flags), None)
    assert evaluation.referral == "routine"
    assert evaluation.referral_reasons == reasons
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert "R5.4" in evaluation.rules_fired


def test_r5_5_urgent_and_routine_merge_into_urgent_with_all_reasons():
    evaluation = evaluate_visit(
        htn(185, 100, new_complication=True), PreviousVisit(DAY - timedelta(days=14), False)
    )
    assert evaluation.referral == "urgent"
    assert evaluation.referral_reasons == ("urgent", "two_consecutive_unsatisfied", "new_complication")
    assert evaluation.classification == "complication"
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert "R5.5" in evaluation.rules_fired


def test_rules_fired_are_in_rule_order():
    evaluation = evaluate_visit(htn(185, 100), PreviousVisit(DAY - timedelta(days=14), False))
    assert evaluation.rules_fired == ("R3.1", "R3.3", "R4.1", "R4.3", "R5.3", "R5.5")


# --------------------------------------------------------------------------------------------------
# R2.2 phone follow-ups
# --------------------------------------------------------------------------------------------------


def test_r2_2_phone_is_not_classified_nor_targeted():
    evaluation = evaluate_visit(htn(150, 95, mode="phone"), PreviousVisit(DAY - timedelta(days=14), False))
    assert evaluation.classification == ""
    assert evaluation.bp_at_target is None
    assert evaluation.at_target is None
    assert evaluation.referral == "none"  # no R5.3 chain on the phone
    assert evaluation.rules_fired == ("R2.2",)


def test_r2_2_phone_keeps_a_later_current_plan():
    plan = DAY + timedelta(days=30)
    assert evaluate_visit(htn(mode="phone"), None, current_plan=plan).next_due_on == plan


@pytest.mark.parametrize("plan", [None, DAY, DAY - timedelta(days=5)])
def test_r2_2_phone_without_a_later_plan_asks_for_a_visit_in_two_weeks(plan):
    assert evaluate_visit(htn(mode="phone"), None, current_plan=plan).next_due_on == DAY + timedelta(days=14)


def test_r2_2_phone_reporting_a_complication_brings_the_visit_forward():
    plan = DAY + timedelta(days=60)
    evaluation = evaluate_visit(htn(mode="phone", new_complication=True), None, current_plan=plan)
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert evaluation.referral == "none"


def test_r2_2_phone_danger_signs_are_still_urgent():
    evaluation = evaluate_visit(
        htn(mode="phone", symptoms=frozenset({"chest_tightness"})),
        None,
        current_plan=DAY + timedelta(days=60),
    )
    assert evaluation.urgent
    assert evaluation.referral == "urgent"
    assert evaluation.referral_reasons == ("urgent",)
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert evaluation.classification == ""


def test_r2_2_phone_self_reported_reading_is_urgent():
    assert evaluate_visit(dm("2.8", mode="phone"), None).urgent


def test_r5_3_phone_visits_are_skipped_in_the_chain():
    # unsatisfied face-to-face → phone call → unsatisfied face-to-face: the caller passes the first
    # face-to-face visit as the previous one, and the phone call in between changes nothing.
    first = evaluate_visit(htn(150, 95, on=date(2024, 3, 1)), None)
    phone = evaluate_visit(htn(mode="phone", on=date(2024, 3, 8)), None)
    assert phone.at_target is None  # the caller never turns a phone call into a PreviousVisit
    third = evaluate_visit(
        htn(151, 94, on=date(2024, 3, 15)), PreviousVisit(date(2024, 3, 1), first.at_target)
    )
    assert third.referral_reasons == ("two_consecutive_unsatisfied",)


@pytest.mark.parametrize("mode", ["clinic", "home"])
def test_face_to_face_modes(mode):
    assert {"clinic", "home"} == r.FACE_TO_FACE
    assert evaluate_visit(htn(130, 80, mode=mode), None).classification == "satisfied"


def test_unknown_mode_or_disease_is_a_programming_error():
    with pytest.raises(ValueError):
        evaluate_visit(htn(130, 80, mode="video"), None)
    with pytest.raises(ValueError):
        evaluate_visit(VisitInput(disease="flu", visit_on=DAY, mode="clinic", age=50), None)


# --------------------------------------------------------------------------------------------------
# Other diseases (CHD, stroke, COPD, cancer)
# --------------------------------------------------------------------------------------------------


def other(disease, **kw):
    return VisitInput(disease=disease, visit_on=DAY, mode="clinic", age=60, **kw)


@pytest.mark.parametrize("disease", [CHD, STROKE, COPD, CANCER])
def test_other_diseases_use_their_own_interval(disease):
    evaluation = evaluate_visit(other(disease), None, Parameters(other_disease_interval_months=6))
    assert evaluation.classification == "satisfied"
    assert evaluation.next_due_on == date(2024, 11, 10)


def test_other_disease_classification_uses_bp_when_measured():
    evaluation = evaluate_visit(other(CHD, sbp=150, dbp=92), None)
    assert evaluation.classification == "unsatisfied"
    assert evaluation.next_due_on == DAY + timedelta(days=14)
    assert evaluate_visit(
        other(CHD, sbp=150, dbp=92), PreviousVisit(DAY - timedelta(days=14), False)
    ).referral == ("routine")


def test_other_disease_complication_flags():
    assert evaluate_visit(other(STROKE, complication_worsened=True), None).referral == "routine"
    assert evaluate_visit(other(COPD, adr=True), None).classification == "adr"


@pytest.mark.parametrize(
    ("kw", "urgent"),
    [
        ({"sbp": 180, "dbp": 90}, True),
        ({"sbp": 170, "dbp": 110}, True),
        ({"glucose_any_mmol": D("3.9")}, True),
        ({"temperature_c": D("39.1")}, True),
        ({"symptoms": frozenset({"palpitations"})}, True),
        ({"symptoms": frozenset({"altered_consciousness"})}, True),
        ({"unmanageable_other_disease": True}, True),
        ({"symptoms": frozenset({"polyuria"})}, False),
        ({"heart_rate": 110}, False),
        ({"sbp": 179, "dbp": 109}, False),
    ],
)
def test_other_disease_universal_danger_signs(kw, urgent):
    assert evaluate_visit(other(COPD, **kw), None).urgent is urgent


# --------------------------------------------------------------------------------------------------
# Screening R1.1–R1.4
# --------------------------------------------------------------------------------------------------


def screen(sbp=None, dbp=None, *, on=DAY, age=40, sex="M", **kw):
    return ScreeningInput(on=on, age=age, sex=sex, sbp=sbp, dbp=dbp, **kw)


@pytest.mark.parametrize(
    ("age", "has_reading", "in_registry", "due"),
    [(35, False, False, True), (34, False, False, False), (60, True, False, False), (60, False, True, False)],
)
def test_r1_1_bp_screening_due(age, has_reading, in_registry, due):
    assert r.bp_screening_due(age, has_reading, in_registry) is due


@pytest.mark.parametrize(
    ("sbp", "dbp", "result"),
    [
        (140, 80, "suspected_htn"),
        (120, 90, "suspected_htn"),
        (139, 89, "high_normal"),
        (130, 70, "high_normal"),
        (120, 85, "high_normal"),
        (129, 84, "normal"),
    ],
)
def test_r1_2_single_reading_boundaries(sbp, dbp, result):
    assert r.evaluate_screening(screen(sbp, dbp)).result == result


def test_r1_2_suspected_gets_a_recheck():
    outcome = r.evaluate_screening(screen(150, 95))
    assert outcome.case_due_on == DAY + timedelta(days=14)
    assert outcome.next_bp_due == DAY + timedelta(days=14)
    assert outcome.refer is False
    assert "R1.2" in outcome.rules_fired


def test_r1_2_three_distinct_elevated_days_is_preliminary_with_referral():
    earlier = [(DAY - timedelta(days=14), 150, 92), (DAY - timedelta(days=7), 145, 85)]
    outcome = r.evaluate_screening(screen(142, 88), earlier)
    assert outcome.result == "preliminary_htn"
    assert outcome.refer is True
    assert outcome.case_due_on == DAY + timedelta(days=14)


def test_r1_2_same_day_repeats_count_once():
    earlier = [(DAY - timedelta(days=7), 150, 92), (DAY - timedelta(days=7), 152, 94), (DAY, 150, 95)]
    assert r.evaluate_screening(screen(148, 90), earlier).result == "suspected_htn"


def test_r1_2_the_latest_reading_of_a_day_counts():
    day = DAY - timedelta(days=7)
    elevated_then_normal = [(DAY - timedelta(days=14), 150, 92), (day, 150, 92), (day, 128, 80)]
    assert r.evaluate_screening(screen(148, 90), elevated_then_normal).result == "suspected_htn"
    normal_then_elevated = [(DAY - timedelta(days=14), 150, 92), (day, 128, 80), (day, 150, 92)]
    assert r.evaluate_screening(screen(148, 90), normal_then_elevated).result == "preliminary_htn"


def test_r1_2_only_the_three_most_recent_days_count():
    earlier = [
        (DAY - timedelta(days=30), 150, 95),
        (DAY - timedelta(days=21), 120, 80),
        (DAY - timedelta(days=14), 150, 95),
        (DAY - timedelta(days=7), 150, 95),
    ]
    assert r.evaluate_screening(screen(150, 95), earlier).result == "preliminary_htn"
    earlier_normal_recent = [*earlier[:2], (DAY - timedelta(days=7), 120, 80)]
    assert r.evaluate_screening(screen(150, 95), earlier_normal_recent).result == "suspected_htn"


def test_r1_2_later_readings_than_this_one_are_ignored():
    earlier = [(DAY - timedelta(days=7), 150, 95), (DAY + timedelta(days=7), 150, 95)]
    assert r.evaluate_screening(screen(150, 95), earlier).result == "suspected_htn"


@pytest.mark.parametrize(
    ("kw", "factor"),
    [
        ({"sbp": 135, "dbp": 80}, "high_normal_bp"),
        ({"sbp": 120, "dbp": 86}, "high_normal_bp"),
        ({"bmi": D("24.0")}, "overweight"),
        ({"bmi": D("28.0")}, "obese"),
        ({"waist_cm": D("90.0"), "sex": "M"}, "central_obesity"),
        ({"waist_cm": D("85.0"), "sex": "F"}, "central_obesity"),
        ({"family_history_htn": True}, "family_history_htn"),
        ({"high_salt_diet": True}, "high_salt_diet"),
        ({"heavy_drinking": True}, "heavy_drinking"),
        ({"age": 55}, "age_55_plus"),
    ],
)
def test_r1_3_each_high_risk_factor(kw, factor):
    outcome = r.evaluate_screening(screen(**{"sbp": 120, "dbp": 75, **kw}))
    assert outcome.risk_factors == (factor,)
    assert outcome.high_risk is True
    assert outcome.next_bp_due == r.add_months(DAY, 6)
    assert "R1.3" in outcome.rules_fired


@pytest.mark.parametrize(
    "kw",
    [
        {"bmi": D("23.9")},
        {"waist_cm": D("89.9"), "sex": "M"},
        {"waist_cm": D("84.9"), "sex": "F"},
        {"age": 54},
        {"smoking": True},
        {"family_history_dm": True},
    ],
)
def test_r1_3_below_the_thresholds_is_not_high_risk(kw):
    outcome = r.evaluate_screening(screen(**{"sbp": 120, "dbp": 75, **kw}))
    assert outcome.high_risk is False
    assert outcome.risk_factors == ()
    assert outcome.next_bp_due is None
    assert outcome.result == "normal"


@pytest.mark.parametrize(
    ("fpg", "random", "suspected"),
    [("7.0", None, True), ("6.9", None, False), (None, "11.1", True), (None, "11.0", False)],
)
def test_r1_4_t2dm_screening_thresholds(fpg, random, suspected):
    outcome = r.evaluate_screening(
        screen(
            fpg_mmol=None if fpg is None else D(fpg), glucose_any_mmol=None if random is None else D(random)
        )
    )
    assert (outcome.result == "suspected_t2dm") is suspected
    assert (outcome.case_due_on is not None) is suspected


def test_r1_4_both_diseases_suspected_are_both_findings():
    outcome = r.evaluate_screening(screen(150, 95, fpg_mmol=D("7.5")))
    assert outcome.result == "suspected_htn"
    assert outcome.findings == ("suspected_htn", "suspected_t2dm")


def test_screening_without_any_reading_is_not_measured():
    assert r.evaluate_screening(screen()).result == "not_measured"


# --------------------------------------------------------------------------------------------------
# §6 indicators
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered_on", "required"),
    [
        (date(2023, 6, 1), 4),
        (date(2024, 1, 1), 4),
        (date(2024, 3, 31), 4),
        (date(2024, 4, 1), 3),
        (date(2024, 6, 30), 3),
        (date(2024, 7, 1), 2),
        (date(2024, 9, 30), 2),
        (date(2024, 10, 1), 1),
        (date(2024, 12, 31), 1),
        (date(2025, 1, 1), 0),
    ],
)
def test_ind_1_required_visits_for_mid_year_enrolment(registered_on, required):
    assert r.required_visits(registered_on, *YEAR) == required


@pytest.mark.parametrize(
    ("registered_on", "closed_on", "managed"),
    [
        (date(2023, 5, 1), None, True),
        (date(2024, 12, 31), None, True),
        (date(2025, 1, 1), None, False),
        (date(2023, 5, 1), date(2024, 6, 1), False),  # died/moved during the year
        (date(2023, 5, 1), date(2024, 12, 31), False),  # on the last day
        (date(2023, 5, 1), date(2025, 1, 1), True),  # after the period end
        (date(2022, 5, 1), date(2023, 6, 1), False),
    ],
)
def test_managed_with_deaths_and_moves_around_the_period_end(registered_on, closed_on, managed):
    assert r.is_managed(registered_on, closed_on, YEAR[1]) is managed


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (2, 3, D("66.7")),
        (1, 3, D("33.3")),
        (1, 8, D("12.5")),
        (1, 16, D("6.3")),  # 6.25 rounds half up
        (1, 1, D("100.0")),
        (0, 5, D("0.0")),
        (0, 0, None),
        (5, 0, None),
    ],
)
def test_percent_one_decimal_and_empty_denominator(numerator, denominator, expected):
    value = r.percent(numerator, denominator)
    assert value == expected
    if expected is not None:
        assert str(value) == str(expected)


def test_percent_refuses_negative_counts():
    with pytest.raises(ValueError):
        r.percent(-1, 3)


@pytest.mark.parametrize(
    ("d", "month", "distance"),
    [(date(2024, 1, 31), date(2024, 2, 1), 1), (date(2023, 12, 1), date(2024, 3, 31), 3), (DAY, DAY, 0)],
)
def test_sim_1_month_distance_is_in_calendar_months(d, month, distance):
    assert r.month_distance(d, month) == distance


def ff(*days):
    return frozenset(days)


def test_ind_1_fewer_than_four_face_to_face_visits_is_not_standard():
    three = ff(date(2024, 2, 1), date(2024, 5, 1), date(2024, 8, 1))
    four = three | {date(2024, 11, 1)}
    assert not r.is_standard_managed(date(2023, 1, 1), three, *YEAR)
    assert r.is_standard_managed(date(2023, 1, 1), four, *YEAR)


def test_ind_1_visits_before_enrolment_or_outside_the_year_do_not_count():
    visits = ff(date(2023, 12, 30), date(2024, 8, 1), date(2025, 1, 2))
    assert r.face_to_face_count(visits, date(2024, 7, 15), *YEAR) == 1
    assert r.is_standard_managed(date(2024, 7, 15), visits | {date(2024, 7, 1)}, *YEAR) is False
    assert r.is_standard_managed(date(2024, 7, 15), visits | {date(2024, 9, 1)}, *YEAR) is True


def test_ind_1_quarterly_distribution_when_required():
    params = Parameters(require_quarterly_distribution=True)
    bunched = ff(date(2024, 1, 5), date(2024, 2, 5), date(2024, 3, 5), date(2024, 4, 5))
    spread = ff(date(2024, 1, 5), date(2024, 4, 5), date(2024, 7, 5), date(2024, 10, 5))
    assert r.is_standard_managed(date(2023, 1, 1), bunched, *YEAR)
    assert not r.is_standard_managed(date(2023, 1, 1), bunched, *YEAR, params)
    assert r.is_standard_managed(date(2023, 1, 1), spread, *YEAR, params)
    # enrolled in Q3: needs one visit in each of Q3 and Q4
    assert r.is_standard_managed(date(2024, 7, 10), ff(date(2024, 8, 1), date(2024, 11, 1)), *YEAR, params)
    assert not r.is_standard_managed(date(2024, 7, 10), ff(date(2024, 8, 1), date(2024, 9, 1)), *YEAR, params)


def test_national_indicators_reference():
    quarterly = ff(date(2024, 2, 1), date(2024, 5, 1), date(2024, 8, 1), date(2024, 11, 1))
    facts = [
        RegistryFacts(date(2023, 1, 1), None, quarterly, last_bp_at_target=True),  # standard, controlled
        RegistryFacts(date(2023, 1, 1), None, quarterly, last_bp_at_target=False),  # standard, not controlled
        RegistryFacts(date(2023, 1, 1), None, ff(date(2024, 3, 1)), last_bp_at_target=True),  # too few visits
        RegistryFacts(date(2023, 1, 1)),  # never followed up (失访): counts against both
        RegistryFacts(
            date(2024, 10, 20), None, ff(date(2024, 11, 1)), last_bp_at_target=True
        ),  # Q4 enrolment
        RegistryFacts(date(2023, 1, 1), date(2024, 6, 1), quarterly, last_bp_at_target=True),  # died: out
        RegistryFacts(date(2025, 1, 5), None, ff(), last_bp_at_target=True),  # after the period: out
        RegistryFacts(date(2023, 1, 1), None, quarterly, last_fpg_at_target=True, disease=T2DM),
        RegistryFacts(date(2023, 1, 1), None, ff(), last_fpg_at_target=None, disease=T2DM),
        RegistryFacts(date(2023, 1, 1), None, quarterly, last_bp_at_target=True, disease=CHD),  # ignored
    ]
    result = r.national_indicators(facts, *YEAR)
    assert result["IND-1"] == r.IndicatorValue(3, 5, D("60.0"))
    assert result["IND-2"] == r.IndicatorValue(3, 5, D("60.0"))
    assert result["IND-3"] == r.IndicatorValue(1, 2, D("50.0"))
    assert result["IND-4"] == r.IndicatorValue(1, 2, D("50.0"))


def test_national_indicators_empty():
    result = r.national_indicators([], *YEAR)
    assert result["IND-1"] == r.IndicatorValue(0, 0, None)
    assert set(result) == {"IND-1", "IND-2", "IND-3", "IND-4"}


# --------------------------------------------------------------------------------------------------
# R7.1 / R7.2 operational indicators
# --------------------------------------------------------------------------------------------------


def test_r7_1_quarterly_follow_up():
    q = r.quarter_bounds(date(2024, 5, 20))
    assert q == (date(2024, 4, 1), date(2024, 6, 30))
    assert r.quarterly_follow_up(date(2024, 1, 1), None, [date(2024, 6, 30)], *q) == (True, True)
    assert r.quarterly_follow_up(date(2024, 1, 1), None, [date(2024, 7, 1)], *q) == (True, False)
    assert r.quarterly_follow_up(date(2024, 4, 1), None, [date(2024, 5, 1)], *q) == (False, False)
    assert r.quarterly_follow_up(date(2024, 1, 1), date(2024, 5, 1), [date(2024, 4, 2)], *q) == (False, False)


@pytest.mark.parametrize(
    ("tracked_on", "as_of", "expected"),
    [
        (date(2024, 5, 24), date(2024, 5, 24), (True, True)),  # on day 14
        (date(2024, 5, 25), date(2024, 6, 1), (True, False)),  # day 15: late
        (None, date(2024, 5, 23), (False, False)),  # window still open
        (None, date(2024, 6, 1), (True, False)),
    ],
)
def test_r7_2_referral_tracked_in_time(tracked_on, as_of, expected):
    assert r.referral_tracked_in_time(DAY, tracked_on, as_of) == expected
    assert r.referral_tracking_due(DAY) == date(2024, 5, 24)


def test_r7_2_referral_in_period():
    assert r.referral_in_period([date(2024, 3, 1)], *YEAR)
    assert not r.referral_in_period([date(2023, 12, 31)], *YEAR)


# --------------------------------------------------------------------------------------------------
# SIM-2 / SIM-3 / SIM-4
# --------------------------------------------------------------------------------------------------

M = date(2024, 6, 30)


@pytest.mark.parametrize(
    ("dead", "registered_on", "last_visit", "state"),
    [
        (True, date(2024, 6, 1), date(2024, 6, 1), "dead"),
        (False, date(2023, 7, 1), None, "under_care"),  # msr = 11
        (False, date(2023, 6, 1), None, "lost_to_follow_up"),  # msr = 12
        (False, date(2020, 1, 1), date(2023, 7, 31), "under_care"),  # msv = 11
        (False, date(2020, 1, 1), date(2023, 6, 1), "lost_to_follow_up"),  # msv = 12
    ],
)
def test_sim_2_care_state(dead, registered_on, last_visit, state):
    assert r.care_state(dead=dead, registered_on=registered_on, last_visit_on=last_visit, month=M) == state


@pytest.mark.parametrize(
    ("visit", "bp_on", "sbp", "dbp", "outcome"),
    [
        (None, None, None, None, "missed_visit"),
        (date(2024, 3, 31), date(2024, 3, 31), 130, 80, "missed_visit"),  # msv = 3
        (date(2024, 4, 1), None, None, None, "visited_no_bp"),
        (date(2024, 6, 1), date(2024, 3, 1), 130, 80, "visited_no_bp"),  # msb = 3
        (date(2024, 6, 1), date(2024, 6, 1), 139, 89, "controlled"),
        (date(2024, 6, 1), date(2024, 6, 1), 140, 80, "uncontrolled"),
        (date(2024, 6, 1), date(2024, 6, 1), 130, 90, "uncontrolled"),
        (date(2024, 6, 1), date(2024, 6, 1), 145, 80, "uncontrolled"),  # no age adjustment
    ],
)
def test_sim_3_outcome_last_3_months(visit, bp_on, sbp, dbp, outcome):
    assert (
        r.outcome_last_3_months(last_visit_on=visit, last_bp_on=bp_on, sbp=sbp, dbp=dbp, month=M) == outcome
    )


def test_sim_4_denominator():
    assert r.in_sim_denominator("under_care", date(2024, 3, 1), M)
    assert not r.in_sim_denominator("under_care", date(2024, 4, 1), M)  # msr = 2
    assert not r.in_sim_denominator("lost_to_follow_up", date(2020, 1, 1), M)
    assert r.in_sim_denominator("lost_to_follow_up", date(2020, 1, 1), M, with_ltfu=True)
    assert not r.in_sim_denominator("dead", date(2020, 1, 1), M, with_ltfu=True)


# --------------------------------------------------------------------------------------------------
# R7.3 / R7.4 work lists
# --------------------------------------------------------------------------------------------------


def test_r7_3_days_overdue():
    assert r.days_overdue(None, DAY) is None
    assert r.days_overdue(DAY, DAY) == 0
    assert r.days_overdue(DAY - timedelta(days=5), DAY) == 5
    assert not r.is_overdue(0)
    assert r.is_overdue(1)
    assert not r.is_overdue(None)


@pytest.mark.parametrize(("days", "lost"), [(365, False), (366, True), (None, False), (-3, False)])
def test_r7_3_lost_after_365_days(days, lost):
    assert r.is_lost(days) is lost


@pytest.mark.parametrize(
    ("days", "consent", "phone", "sent", "eligible"),
    [
        (3, True, True, False, True),
        (2, True, True, False, False),
        (30, True, True, False, True),
        (3, False, True, False, False),
        (3, True, False, False, False),
        (3, True, True, True, False),
        (None, True, True, False, False),
    ],
)
def test_r7_4_reminder_eligibility(days, consent, phone, sent, eligible):
    assert (
        r.reminder_eligible(days_overdue=days, consent=consent, has_phone=phone, already_sent=sent)
        is eligible
    )


@pytest.mark.parametrize(
    ("outcome", "snoozed", "close"),
    [
        ("reached", DAY + timedelta(days=30), None),
        ("remind_later", DAY + timedelta(days=7), None),
        ("no_answer", DAY + timedelta(days=1), None),
        ("moved", None, "moved_out"),
        ("died", None, "death"),
    ],
)
def test_r7_3_call_outcome_effects(outcome, snoozed, close):
    assert r.call_outcome_effect(outcome, DAY) == (snoozed, close)


def test_r7_3_unknown_call_outcome():
    with pytest.raises(ValueError):
        r.call_outcome_effect("busy", DAY)


def test_r7_3_call_list_order_high_risk_first_then_fewest_days():
    rows = [("a", False, 3), ("b", True, 40), ("c", True, 5), ("d", False, 1)]
    ordered = sorted(rows, key=lambda row: r.call_list_sort_key(high_risk=row[1], days_overdue=row[2]))
    assert [row[0] for row in ordered] == ["c", "b", "d", "a"]


# --------------------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------------------


def test_transition_tables():
    assert r.can_transition(r.REGISTRY_TRANSITIONS, "active", "closed")
    assert not r.can_transition(r.REGISTRY_TRANSITIONS, "closed", "active")
    assert r.can_transition(r.REFERRAL_TRANSITIONS, "open", "tracked")
    assert not r.can_transition(r.REFERRAL_TRANSITIONS, "tracked", "open")
    assert r.can_transition(r.SCREENING_CASE_TRANSITIONS, "suspected", "preliminary")
    assert not r.can_transition(r.SCREENING_CASE_TRANSITIONS, "preliminary", "suspected")
    assert not r.can_transition(r.SCREENING_CASE_TRANSITIONS, "confirmed", "excluded")


def test_ind_2_last_measured_face_to_face_visit_of_the_period_decides():
    visits = [
        (date(2024, 3, 1), "clinic", True),
        (date(2024, 9, 1), "home", False),
        (date(2024, 10, 1), "phone", None),  # phone never counts (§12.7)
        (date(2024, 11, 1), "clinic", None),  # no BP at that visit
        (date(2025, 1, 3), "clinic", True),  # after the period
    ]
    assert r.last_measured_at_target(visits, *YEAR) is False
    assert r.last_measured_at_target([(date(2024, 5, 1), "phone", True)], *YEAR) is None
    assert r.last_measured_at_target([], *YEAR) is None
    same_day = [(date(2024, 5, 1), "clinic", False), (date(2024, 5, 1), "clinic", True)]
    assert r.last_measured_at_target(same_day, *YEAR) is True


def test_labels_are_chinese():
    assert r.CLASSIFICATION_LABELS == {
        "satisfied": "控制满意",
        "unsatisfied": "控制不满意",
        "adr": "不良反应",
        "complication": "并发症",
    }
    assert set(r.REASON_LABELS) == set(r.REFERRAL_REASONS)
    assert r.REFERRAL_LABELS["urgent"] == "紧急转诊"


def test_float_readings_are_compared_exactly():
    # Decimal(16.7) would be 16.699999…; the rules read a float by its shortest repr.
    assert evaluate_visit(dm(None, glucose_any_mmol=16.7), None).urgent
    assert evaluate_visit(dm(None, glucose_any_mmol=3.9), None).urgent
    assert evaluate_visit(dm(None, temperature_c=39.1), None).urgent
    assert r.fpg_at_target(7.0) is False
    assert r.fpg_at_target(6.9) is True
