"""Chronic-disease management rules (慢病管理规则): pure functions, no database, no Django.

Source: ``docs/rules/chronic.md`` (rule numbers R1.x–R7.x, IND-x, SIM-x are cited in each docstring),
itself built from 国家基本公共卫生服务规范（第三版）(国卫基层发〔2017〕13号) — 高血压患者健康管理服务规范,
2型糖尿病患者健康管理服务规范 — and, for the comparison indicators, the Simple / HEARTS definitions.

Everything tunable is a field of :class:`Parameters` (chronic.md §2: "defaults are settings, not
constants"); :data:`DEFAULTS` is what the acceptance cases use. Dates are ``datetime.date``, glucose
is mmol/L as :class:`~decimal.Decimal`, blood pressure mmHg as ``int``.

Platform decisions taken here (the standard is silent; each is repeated where it applies):

* Phone follow-ups (R2.2, R5.3) never count as face-to-face, are not classified (classification
  ``""``), give no target verdicts (``*_at_target`` is ``None``: self-reported readings do not feed
  IND-2/IND-4, chronic.md §12.7) and do not enter the consecutive-unsatisfied chain; danger signs
  reported on the phone still make the visit urgent (R3.1/R3.2 → R3.3).
* CHD, stroke, COPD and cancer (chronic.md §1) have no national follow-up standard: routine interval
  ``other_disease_interval_months``; classification from the complication/ADR flags and, when a BP
  was measured, R4.1; urgent on the danger signs shared by both national lists (see
  :data:`OTHER_DISEASE_URGENT_SYMPTOMS`).
* Screening for T2DM (R1.4 extension): FPG ≥ 7.0 or random glucose ≥ 11.1 mmol/L (WHO diagnostic
  thresholds) make a resident ``suspected_t2dm``; both thresholds are parameters.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

# --------------------------------------------------------------------------------------------------
# Parameters (chronic.md §2)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameters:
    """The settings of chronic.md §2 (plus the platform's own, documented where used).

    ``routine_interval_months`` (R5.1), ``recheck_days`` (R5.2/R5.3/R3.3 next visit),
    ``referral_tracking_days`` (R1.2 tracking task, R3.3/R7.2 referral tracking), ``elderly_age``
    (R4.1), ``require_quarterly_distribution`` (IND-1/IND-3), ``pregnant_fpg_threshold`` (R3.2,
    §12.10), ``reminder_overdue_days`` (R7.4), ``lost_after_days`` (R7.3), ``call_reached_snooze_days``
    / ``call_later_snooze_days`` (R7.3 call results), ``other_disease_interval_months`` (§1, CHD/
    stroke/COPD/cancer), ``t2dm_fpg_threshold`` / ``t2dm_random_glucose_threshold`` (screening,
    WHO diagnostic thresholds), ``high_risk_bp_interval_months`` (R1.3), ``bp_screening_min_age``
    (R1.1), ``high_risk_age`` (R1.3 (6)), ``prevalence_htn_adult`` / ``prevalence_t2dm_adult``
    (IND-5).
    """

    routine_interval_months: int = 3
    recheck_days: int = 14
    referral_tracking_days: int = 14
    elderly_age: int = 65
    require_quarterly_distribution: bool = False
    pregnant_fpg_threshold: Decimal = Decimal("6.1")
    reminder_overdue_days: int = 3
    lost_after_days: int = 365
    call_reached_snooze_days: int = 30
    call_later_snooze_days: int = 7
    other_disease_interval_months: int = 3
    t2dm_fpg_threshold: Decimal = Decimal("7.0")
    t2dm_random_glucose_threshold: Decimal = Decimal("11.1")
    high_risk_bp_interval_months: int = 6
    bp_screening_min_age: int = 35
    high_risk_age: int = 55
    # IND-5 (健康管理率) denominators: adult prevalence from the local survey (chronic.md §2).
    prevalence_htn_adult: Decimal = Decimal("0.25")
    prevalence_t2dm_adult: Decimal = Decimal("0.11")


DEFAULTS = Parameters()

HTN, T2DM, CHD, STROKE, COPD, CANCER = "htn", "t2dm", "chd", "stroke", "copd", "cancer"
DISEASES = (HTN, T2DM, CHD, STROKE, COPD, CANCER)
OTHER_DISEASES = frozenset({CHD, STROKE, COPD, CANCER})

CLINIC, HOME, PHONE = "clinic", "home", "phone"
MODES = frozenset({CLINIC, HOME, PHONE})
FACE_TO_FACE = frozenset({CLINIC, HOME})

SATISFIED, UNSATISFIED, ADR, COMPLICATION = "satisfied", "unsatisfied", "adr", "complication"
NO_REFERRAL, ROUTINE, URGENT = "none", "routine", "urgent"

REASON_URGENT = "urgent"
REASON_TWO_CONSECUTIVE_UNSATISFIED = "two_consecutive_unsatisfied"
REASON_ADR_UNCONTROLLABLE = "adr_uncontrollable"
REASON_NEW_COMPLICATION = "new_complication"
REASON_COMPLICATION_WORSENED = "complication_worsened"
REFERRAL_REASONS = (
    REASON_URGENT,
    REASON_TWO_CONSECUTIVE_UNSATISFIED,
    REASON_ADR_UNCONTROLLABLE,
    REASON_NEW_COMPLICATION,
    REASON_COMPLICATION_WORSENED,
)
CLASSIFICATION_LABELS: dict[str, str] = {
    SATISFIED: "控制满意",
    UNSATISFIED: "控制不满意",
    ADR: "不良反应",
    COMPLICATION: "并发症",
}
REFERRAL_LABELS: dict[str, str] = {NO_REFERRAL: "无需转诊", ROUTINE: "转诊", URGENT: "紧急转诊"}
REASON_LABELS: dict[str, str] = {
    REASON_URGENT: "危急情况，紧急转诊",
    REASON_TWO_CONSECUTIVE_UNSATISFIED: "连续两次控制不满意",
    REASON_ADR_UNCONTROLLABLE: "药物不良反应难以控制",
    REASON_NEW_COMPLICATION: "出现新的并发症",
    REASON_COMPLICATION_WORSENED: "原有并发症加重",
}

# R3.1 — hypertension danger symptoms, codes exactly as in chronic.md.
HTN_SYMPTOMS: frozenset[str] = frozenset(
    {
        "altered_consciousness",
        "severe_headache_or_dizziness",
        "nausea_vomiting",
        "blurred_vision",
        "eye_pain",
        "palpitations",
        "chest_tightness",
        "orthopnea",
    }
)
# R3.2 — T2DM danger symptoms, codes exactly as in chronic.md.
T2DM_SYMPTOMS: frozenset[str] = frozenset(
    {
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
    }
)
ALL_SYMPTOMS: frozenset[str] = HTN_SYMPTOMS | T2DM_SYMPTOMS
# Platform decision (§1 other diseases): the danger signs common to R3.1 and R3.2.
OTHER_DISEASE_URGENT_SYMPTOMS: frozenset[str] = frozenset(
    {"altered_consciousness", "altered_consciousness_or_behavior", "palpitations"}
)
# One form serves both diseases (R5.7): a symptom ticked under its HTN or T2DM wording counts for
# the other list too (e.g. "nausea" ticked on a T2DM form is the HTN "nausea_vomiting").
SYMPTOM_EQUIVALENTS: dict[str, frozenset[str]] = {
    "altered_consciousness": frozenset({"altered_consciousness_or_behavior"}),
    "altered_consciousness_or_behavior": frozenset({"altered_consciousness"}),
    "nausea_vomiting": frozenset({"nausea", "vomiting"}),
    "nausea": frozenset({"nausea_vomiting"}),
    "vomiting": frozenset({"nausea_vomiting"}),
}
SYMPTOM_LABELS: dict[str, str] = {
    "altered_consciousness": "意识改变",
    "severe_headache_or_dizziness": "剧烈头痛或头晕",
    "nausea_vomiting": "恶心呕吐",
    "blurred_vision": "视力模糊",
    "eye_pain": "眼痛",
    "palpitations": "心悸",
    "chest_tightness": "胸闷",
    "orthopnea": "喘憋不能平卧",
    "altered_consciousness_or_behavior": "意识或行为改变",
    "acetone_breath": "呼气有烂苹果味",
    "sweating": "大汗",
    "anorexia": "食欲减退",
    "nausea": "恶心",
    "vomiting": "呕吐",
    "polydipsia": "多饮",
    "polyuria": "多尿",
    "abdominal_pain": "腹痛",
    "deep_rapid_breathing": "深大呼吸",
    "flushed_skin": "皮肤潮红",
    "sudden_vision_loss": "视力骤降",
}

# Plausible ranges for input validation (inclusive). A reading outside is refused, never stored.
RANGES: dict[str, tuple[int | Decimal, int | Decimal]] = {
    "sbp": (50, 300),
    "dbp": (30, 200),
    "heart_rate": (20, 250),
    "fpg_mmol": (Decimal("1.0"), Decimal("35.0")),
    "glucose_any_mmol": (Decimal("1.0"), Decimal("35.0")),
    "temperature_c": (Decimal("34.0"), Decimal("43.0")),
    "weight_kg": (Decimal("2.0"), Decimal("300.0")),
    "height_cm": (Decimal("40.0"), Decimal("250.0")),
    "waist_cm": (Decimal("30.0"), Decimal("200.0")),
    "bmi": (Decimal("10.0"), Decimal("80.0")),
}
# Second readings share the first reading's range.
_RANGE_ALIASES = {"sbp2": "sbp", "dbp2": "dbp"}
_GLUCOSE_FIELDS = frozenset({"fpg_mmol", "glucose_any_mmol"})
MG_DL_PER_MMOL_L = Decimal(18)

# R3 thresholds.
URGENT_SBP = 180
URGENT_DBP = 110
URGENT_GLUCOSE_HIGH = Decimal("16.7")
URGENT_GLUCOSE_LOW = Decimal("3.9")
URGENT_HEART_RATE_ABOVE = 100
URGENT_TEMPERATURE_ABOVE = Decimal("39.0")
# R4 targets.
HTN_SBP_TARGET = 140
HTN_SBP_TARGET_ELDERLY = 150
HTN_DBP_TARGET = 90
FPG_TARGET = Decimal("7.0")


# --------------------------------------------------------------------------------------------------
# Dates (chronic.md §2)
# --------------------------------------------------------------------------------------------------


def add_months(d: date, n: int) -> date:
    """``d`` plus ``n`` calendar months, day clamped to the target month's end (chronic.md §2).

    2024-01-31 + 3 months = 2024-04-30; 2024-01-31 + 1 = 2024-02-29; 2023-01-31 + 1 = 2023-02-28.
    ``n`` may be negative.
    """
    months = d.year * 12 + (d.month - 1) + n
    year, month0 = divmod(months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(d.day, last))


def age_on(birth_date: date, on: date) -> int:
    """Age in completed years (周岁) on ``on`` (chronic.md §2).

    Someone born on 29 February completes a year on 1 March in common years.
    """
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def quarter_of(d: date, period_start: date) -> int:
    """The quarter (1-based) of the period starting ``period_start`` that contains ``d`` (IND-1).

    Quarter q covers ``[add_months(start, 3(q-1)), add_months(start, 3q))``; a calendar-year period
    gives Q1 = Jan–Mar … Q4 = Oct–Dec. ``d`` before the start raises ``ValueError``.
    """
    if d < period_start:
        raise ValueError("date before the period start")
    q = (month_distance(period_start, d) // 3) + 1
    # month_distance ignores the day of month: step back when d is before the quarter's first day.
    while q > 1 and d < add_months(period_start, 3 * (q - 1)):
        q -= 1
    return q


def _quarters_in(period_start: date, period_end: date) -> int:
    """Number of quarters (started) in ``[period_start, period_end]``: 4 for a calendar year."""
    return quarter_of(period_end, period_start)


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------

OUT_OF_RANGE = "out_of_range"
DBP_NOT_BELOW_SBP = "dbp_not_below_sbp"
GLUCOSE_UNIT_SUSPECT = "glucose_unit_suspect"


def _dec(value: object) -> Decimal:
    """A reading as an exact Decimal: floats go through their shortest repr (16.7 stays 16.7)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return Decimal(str(value))


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | float | str):
        try:
            result = Decimal(str(value))
        except (InvalidOperation, ValueError):
            return None
        return result if result.is_finite() else None
    return None


def validate_readings(**values: object) -> list[tuple[str, str]]:
    """Problems with the readings of one visit or screening, as ``[(field, problem_code)]``.

    Refuses impossible input before any rule runs (issue #4 "bad input gets a clear 4xx"):

    * ``out_of_range``: outside :data:`RANGES` (inclusive; ``sbp2``/``dbp2`` use the ``sbp``/``dbp``
      range) or not a number;
    * ``dbp_not_below_sbp``: diastolic ≥ systolic, checked for the pair (``sbp``, ``dbp``) and
      (``sbp2``, ``dbp2``) when both values of the pair are in range; reported on ``dbp``/``dbp2``;
    * ``glucose_unit_suspect``: a glucose above 35 mmol/L whose value ÷ 18 is plausible in mmol/L
      (typed in mg/dL, chronic.md §9); reported instead of ``out_of_range``.

    ``None`` values and keys that are not readings (e.g. ``symptoms``) are ignored, so a service may
    pass its whole form. An empty list means the readings are acceptable.
    """
    problems: list[tuple[str, str]] = []
    in_range: dict[str, Decimal] = {}
    for name, raw in values.items():
        key = _RANGE_ALIASES.get(name, name)
        if key not in RANGES or raw is None:
            continue
        value = _as_decimal(raw)
        if value is None:
            problems.append((name, OUT_OF_RANGE))
            continue
        low, high = RANGES[key]
        if low <= value <= high:
            in_range[name] = value
        elif key in _GLUCOSE_FIELDS and value > high and low <= value / MG_DL_PER_MMOL_L <= high:
            problems.append((name, GLUCOSE_UNIT_SUSPECT))
        else:
            problems.append((name, OUT_OF_RANGE))
    for sbp_name, dbp_name in (("sbp", "dbp"), ("sbp2", "dbp2")):
        if sbp_name in in_range and dbp_name in in_range and in_range[dbp_name] >= in_range[sbp_name]:
            problems.append((dbp_name, DBP_NOT_BELOW_SBP))
    return problems


def unknown_symptoms(codes: Iterable[str]) -> frozenset[str]:
    """Symptom codes not in R3.1/R3.2 (:data:`ALL_SYMPTOMS`); services refuse them before evaluating."""
    return frozenset(codes) - ALL_SYMPTOMS


# --------------------------------------------------------------------------------------------------
# Per-visit evaluation (R3–R5)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitInput:
    """One follow-up visit as the rules see it (chronic.md §1 ``FollowUp``), for one disease.

    ``age`` is the completed age on ``visit_on`` (:func:`age_on`); ``symptoms`` are codes of
    :data:`HTN_SYMPTOMS` / :data:`T2DM_SYMPTOMS`.
    """

    disease: str
    visit_on: date
    mode: str
    age: int
    sbp: int | None = None
    dbp: int | None = None
    fpg_mmol: Decimal | None = None
    glucose_any_mmol: Decimal | None = None
    heart_rate: int | None = None
    temperature_c: Decimal | None = None
    symptoms: frozenset[str] = frozenset()
    pregnant_or_lactating: bool = False
    unmanageable_other_disease: bool = False
    adr: bool = False
    adr_uncontrollable: bool = False
    new_complication: bool = False
    complication_worsened: bool = False


@dataclass(frozen=True)
class PreviousVisit:
    """The previous face-to-face visit of the same disease that had the disease's measurement (R5.2/R5.3).

    Phone visits and visits without the measurement are skipped by the caller: they neither continue
    nor break the chain (chronic.md §12.4: any gap).
    """

    visit_on: date
    at_target: bool


@dataclass(frozen=True)
class VisitEvaluation:
    """The rules' verdict on one visit (R3–R5), stored on ``FollowUp``.

    ``urgent_signs`` (platform addition) names the danger signs that fired, e.g. ``"sbp>=180"``,
    ``"glucose<=3.9"``, ``"symptom:chest_tightness"``, for display and audit.
    """

    bp_at_target: bool | None
    fpg_at_target: bool | None
    at_target: bool | None
    urgent: bool
    classification: str
    referral: str
    referral_reasons: tuple[str, ...]
    rules_fired: tuple[str, ...]
    next_due_on: date
    urgent_signs: tuple[str, ...] = ()


def bp_at_target(sbp: int | None, dbp: int | None, age: int, params: Parameters = DEFAULTS) -> bool | None:
    """R4.1: SBP < 140 and DBP < 90; at age ≥ ``elderly_age`` (65) SBP < 150 and DBP < 90.

    ``None`` when either value is missing (not measured). 140/89 and 139/90 are not at target,
    139/89 is; at 70, 149/89 is at target and 150/85 is not.
    """
    if sbp is None or dbp is None:
        return None
    sbp_limit = HTN_SBP_TARGET_ELDERLY if age >= params.elderly_age else HTN_SBP_TARGET
    return sbp < sbp_limit and dbp < HTN_DBP_TARGET


def fpg_at_target(fpg_mmol: Decimal | None) -> bool | None:
    """R4.2: FPG < 7.0 mmol/L (7.0 is not at target); ``None`` when not measured."""
    if fpg_mmol is None:
        return None
    return _dec(fpg_mmol) < FPG_TARGET


def _expand_symptoms(symptoms: Iterable[str]) -> frozenset[str]:
    codes = set(symptoms)
    for code in list(codes):
        codes |= SYMPTOM_EQUIVALENTS.get(code, frozenset())
    return frozenset(codes)


def _bp_danger(visit: VisitInput) -> list[str]:
    signs = []
    if visit.sbp is not None and visit.sbp >= URGENT_SBP:
        signs.append("sbp>=180")
    if visit.dbp is not None and visit.dbp >= URGENT_DBP:
        signs.append("dbp>=110")
    return signs


def _glucose_danger(visit: VisitInput) -> list[str]:
    signs = []
    for value in (visit.fpg_mmol, visit.glucose_any_mmol):
        if value is None:
            continue
        if _dec(value) >= URGENT_GLUCOSE_HIGH and "glucose>=16.7" not in signs:
            signs.append("glucose>=16.7")
        if _dec(value) <= URGENT_GLUCOSE_LOW and "glucose<=3.9" not in signs:
            signs.append("glucose<=3.9")
    return signs


def _vital_danger(visit: VisitInput) -> list[str]:
    signs = []
    if visit.heart_rate is not None and visit.heart_rate > URGENT_HEART_RATE_ABOVE:
        signs.append("heart_rate>100")
    if visit.temperature_c is not None and _dec(visit.temperature_c) > URGENT_TEMPERATURE_ABOVE:
        signs.append("temperature>39.0")
    return signs


def urgent_signs(visit: VisitInput, params: Parameters = DEFAULTS) -> tuple[str, ...]:
    """The danger signs present at a visit, per disease (R3.1 HTN, R3.2 T2DM; §1 other diseases).

    * HTN (R3.1): SBP ≥ 180; DBP ≥ 110; a symptom of :data:`HTN_SYMPTOMS`; pregnant or lactating
      with SBP ≥ 140 or DBP ≥ 90; another disease that cannot be managed at this level.
    * T2DM (R3.2): any glucose (fasting or random) ≥ 16.7 or ≤ 3.9 mmol/L; SBP ≥ 180 or DBP ≥ 110;
      a symptom of :data:`T2DM_SYMPTOMS`; heart rate > 100/min (the caller records the persistent
      rate); temperature > 39.0 °C; pregnant or lactating with FPG ≥ ``pregnant_fpg_threshold``
      (6.1, chronic.md §12.10; random glucose is not used for this sign); unmanageable other disease.
    * CHD, stroke, COPD, cancer (platform decision): the signs both national lists share — SBP ≥ 180
      or DBP ≥ 110, altered consciousness, palpitations, unmanageable other disease — plus readings
      dangerous whatever the disease: glucose ≥ 16.7 or ≤ 3.9, temperature > 39.0 °C.

    Symptoms count under either list's wording (:data:`SYMPTOM_EQUIVALENTS`). Empty = not urgent.
    """
    symptoms = _expand_symptoms(visit.symptoms)
    signs: list[str] = []
    if visit.disease == HTN:
        signs += _bp_danger(visit)
        signs += [f"symptom:{code}" for code in sorted(symptoms & HTN_SYMPTOMS)]
        if visit.pregnant_or_lactating and (
            (visit.sbp is not None and visit.sbp >= HTN_SBP_TARGET)
            or (visit.dbp is not None and visit.dbp >= HTN_DBP_TARGET)
        ):
            signs.append("pregnant_bp>=140/90")
    elif visit.disease == T2DM:
        signs += _glucose_danger(visit)
        signs += _bp_danger(visit)
        signs += [f"symptom:{code}" for code in sorted(symptoms & T2DM_SYMPTOMS)]
        signs += _vital_danger(visit)
        if (
            visit.pregnant_or_lactating
            and visit.fpg_mmol is not None
            and _dec(visit.fpg_mmol) >= params.pregnant_fpg_threshold
        ):
            signs.append("pregnant_fpg>=threshold")
    elif visit.disease in OTHER_DISEASES:
        signs += _bp_danger(visit)
        signs += _glucose_danger(visit)
        signs += [f"symptom:{code}" for code in sorted(symptoms & OTHER_DISEASE_URGENT_SYMPTOMS)]
        if visit.temperature_c is not None and _dec(visit.temperature_c) > URGENT_TEMPERATURE_ABOVE:
            signs.append("temperature>39.0")
    else:
        raise ValueError(f"unknown disease {visit.disease!r}")
    if visit.unmanageable_other_disease:
        signs.append("unmanageable_other_disease")
    return tuple(signs)


def classify(
    *, at_target: bool | None, adr: bool, new_complication: bool, complication_worsened: bool
) -> str:
    """R4.3 classification with precedence 并发症 > 不良反应 > 控制不满意 > 控制满意 (chronic.md §12.5).

    ``adr`` is true also when the ADR is uncontrollable. Returns ``""`` when nothing decides (no ADR,
    no complication and the target measurement missing, e.g. a T2DM visit without FPG, R4.2).
    """
    if new_complication or complication_worsened:
        return COMPLICATION
    if adr:
        return ADR
    if at_target is None:
        return ""
    return SATISFIED if at_target else UNSATISFIED


def _rule_key(rule: str) -> tuple[int, ...]:
    return tuple(int(part) for part in rule[1:].split("."))


def evaluate_visit(
    visit: VisitInput,
    previous: PreviousVisit | None,
    params: Parameters = DEFAULTS,
    current_plan: date | None = None,
) -> VisitEvaluation:
    """Evaluate one follow-up for one disease (R2.2, R3.1–R3.3, R4.1–R4.3, R5.1–R5.5).

    Face-to-face visits (clinic, home):

    * targets: ``bp_at_target`` by R4.1 (at the visit's age), ``fpg_at_target`` by R4.2;
      ``at_target`` is the disease's own: BP for HTN and the other diseases, FPG for T2DM.
    * urgent (R3.1/R3.2, see :func:`urgent_signs`) ⇒ referral ``urgent``, reason ``urgent``, next
      visit = visit + ``recheck_days`` (R3.3); the classification is still computed.
    * classification (R4.3, :func:`classify`).
    * R5.3: not at target and ``previous.at_target`` false ⇒ routine referral
      ``two_consecutive_unsatisfied`` (a third consecutive one again); R5.4: ``adr_uncontrollable``,
      ``new_complication``, ``complication_worsened`` ⇒ routine referral with those reasons;
      R5.5: urgent plus routine reasons ⇒ ``urgent`` and all reasons listed (``urgent`` first).
    * next visit: any referral, first 不满意 or ADR (R5.2), complication (R5.4) ⇒ visit +
      ``recheck_days``; 控制满意 (R5.1) ⇒ ``add_months(visit, routine_interval_months)``
      (``other_disease_interval_months`` for CHD/stroke/COPD/cancer).
    * nothing evaluable (a T2DM visit without FPG and no flags, R4.2): classification ``""``,
      next visit as for a phone follow-up (below). For the other diseases a visit without BP and
      without flags is 控制满意 (nothing uncontrolled was found).

    The plan date after a referral uses ``recheck_days``; the referral's own tracking date is
    ``referral_tracking_days`` (:func:`referral_tracking_due`), set by the referral service.

    Phone follow-ups (R2.2; decision): not face-to-face, so no classification (``""``), no target
    verdicts (``None``), no routine referral and no place in the R5.3 chain (the caller's
    ``previous`` skips them too). Danger signs reported on the phone still make it urgent (R3.3:
    next = visit + ``recheck_days``). Otherwise the next date keeps ``current_plan`` when it is later
    than the call, else visit + ``recheck_days`` (come in within two weeks); if ADR or complication
    flags are reported, the earlier of the two.

    ``rules_fired`` lists the rule IDs that decided, in rule order (e.g. ``("R3.1", "R3.3", "R4.1",
    "R4.3", "R5.3", "R5.5")``). An urgent visit fires ``R3.2`` for T2DM and ``R3.1`` for HTN and for
    CHD/stroke/COPD/cancer (their danger signs are led by R3.1's); ``urgent_signs`` says which sign.
    """
    if visit.mode not in MODES:
        raise ValueError(f"unknown follow-up mode {visit.mode!r}")
    if visit.disease not in DISEASES:
        raise ValueError(f"unknown disease {visit.disease!r}")
    fired: set[str] = set()
    signs = urgent_signs(visit, params)
    urgent = bool(signs)
    if urgent:
        fired.add("R3.2" if visit.disease == T2DM else "R3.1")
        fired.add("R3.3")
    recheck = visit.visit_on + timedelta(days=params.recheck_days)

    if visit.mode not in FACE_TO_FACE:
        fired.add("R2.2")
        if urgent:
            next_due = recheck
        elif current_plan is not None and current_plan > visit.visit_on:
            flagged = (
                visit.adr or visit.adr_uncontrollable or visit.new_complication or visit.complication_worsened
            )
            next_due = min(current_plan, recheck) if flagged else current_plan
        else:
            next_due = recheck
        return VisitEvaluation(
            bp_at_target=None,
            fpg_at_target=None,
            at_target=None,
            urgent=urgent,
            classification="",
            referral=URGENT if urgent else NO_REFERRAL,
            referral_reasons=(REASON_URGENT,) if urgent else (),
            rules_fired=tuple(sorted(fired, key=_rule_key)),
            next_due_on=next_due,
            urgent_signs=signs,
        )

    bp_ok = bp_at_target(visit.sbp, visit.dbp, visit.age, params)
    fpg_ok = fpg_at_target(visit.fpg_mmol)
    if bp_ok is not None:
        fired.add("R4.1")
    if fpg_ok is not None:
        fired.add("R4.2")
    at_target = fpg_ok if visit.disease == T2DM else bp_ok
    adr = visit.adr or visit.adr_uncontrollable
    classification = classify(
        at_target=at_target,
        adr=adr,
        new_complication=visit.new_complication,
        complication_worsened=visit.complication_worsened,
    )
    if classification == "" and visit.disease in OTHER_DISEASES:
        classification = SATISFIED
    if classification:
        fired.add("R4.3")

    routine: list[str] = []
    if at_target is False and previous is not None and previous.at_target is False:
        routine.append(REASON_TWO_CONSECUTIVE_UNSATISFIED)
        fired.add("R5.3")
    if visit.adr_uncontrollable:
        routine.append(REASON_ADR_UNCONTROLLABLE)
        fired.add("R5.4")
    if visit.new_complication:
        routine.append(REASON_NEW_COMPLICATION)
        fired.add("R5.4")
    if visit.complication_worsened:
        routine.append(REASON_COMPLICATION_WORSENED)
        fired.add("R5.4")

    if urgent:
        referral = URGENT
        reasons = (REASON_URGENT, *routine)
        if routine:
            fired.add("R5.5")
    elif routine:
        referral, reasons = ROUTINE, tuple(routine)
    else:
        referral, reasons = NO_REFERRAL, ()

    interval = (
        params.other_disease_interval_months
        if visit.disease in OTHER_DISEASES
        else params.routine_interval_months
    )
    if urgent or routine:
        next_due = recheck
    elif classification in (UNSATISFIED, ADR):
        fired.add("R5.2")
        next_due = recheck
    elif classification == SATISFIED:
        fired.add("R5.1")
        next_due = add_months(visit.visit_on, interval)
    elif current_plan is not None and current_plan > visit.visit_on:
        next_due = current_plan
    else:
        next_due = recheck
    return VisitEvaluation(
        bp_at_target=bp_ok,
        fpg_at_target=fpg_ok,
        at_target=at_target,
        urgent=urgent,
        classification=classification,
        referral=referral,
        referral_reasons=reasons,
        rules_fired=tuple(sorted(fired, key=_rule_key)),
        next_due_on=next_due,
        urgent_signs=signs,
    )


def referral_tracking_due(opened_on: date, params: Parameters = DEFAULTS) -> date:
    """R3.3 / R7.2: the date by which a referral must be followed up (opened + 14 days)."""
    return opened_on + timedelta(days=params.referral_tracking_days)


# --------------------------------------------------------------------------------------------------
# Screening (R1.1–R1.4)
# --------------------------------------------------------------------------------------------------

NORMAL, HIGH_NORMAL = "normal", "high_normal"
SUSPECTED_HTN, PRELIMINARY_HTN, SUSPECTED_T2DM = "suspected_htn", "preliminary_htn", "suspected_t2dm"
NOT_MEASURED = "not_measured"
# The screening result's severity order: ``result`` is the most severe finding.
_RESULT_ORDER = (PRELIMINARY_HTN, SUSPECTED_HTN, SUSPECTED_T2DM, HIGH_NORMAL, NORMAL, NOT_MEASURED)
RESULT_LABELS: dict[str, str] = {
    NORMAL: "正常",
    HIGH_NORMAL: "血压正常高值",
    SUSPECTED_HTN: "血压升高，待复查",
    PRELIMINARY_HTN: "初步诊断高血压，建议转诊确诊",
    SUSPECTED_T2DM: "血糖升高，疑似糖尿病",
    NOT_MEASURED: "未测量",
}
RISK_FACTOR_LABELS: dict[str, str] = {
    "high_normal_bp": "血压正常高值（130–139/85–89）",
    "overweight": "超重（24≤BMI<28）",
    "obese": "肥胖（BMI≥28）",
    "central_obesity": "中心型肥胖（腰围男≥90cm，女≥85cm）",
    "family_history_htn": "高血压家族史",
    "high_salt_diet": "长期高盐饮食",
    "heavy_drinking": "长期过量饮酒",
    "age_55_plus": "年龄≥55岁",
}


@dataclass(frozen=True)
class ScreeningInput:
    """One screening measurement of a resident not in the registry (R1.1–R1.4)."""

    on: date
    age: int
    sex: str
    sbp: int | None = None
    dbp: int | None = None
    fpg_mmol: Decimal | None = None
    glucose_any_mmol: Decimal | None = None
    bmi: Decimal | None = None
    waist_cm: Decimal | None = None
    family_history_htn: bool = False
    high_salt_diet: bool = False
    heavy_drinking: bool = False
    smoking: bool = False
    family_history_dm: bool = False


@dataclass(frozen=True)
class ScreeningResult:
    """What the screening rules made of a reading (R1.2–R1.4).

    ``result`` is the most severe finding; ``findings`` (platform addition) lists every finding, so
    that a reading both ``suspected_htn`` and ``suspected_t2dm`` opens a case for each disease.
    ``case_due_on``: the re-check date (suspected, + ``recheck_days``) or the referral tracking date
    (preliminary, + ``referral_tracking_days``); ``None`` when no case is needed.
    """

    result: str
    high_risk: bool
    risk_factors: tuple[str, ...]
    next_bp_due: date | None
    case_due_on: date | None
    refer: bool
    rules_fired: tuple[str, ...]
    findings: tuple[str, ...] = field(default=())


def _bp_elevated(sbp: int | None, dbp: int | None) -> bool:
    return (sbp is not None and sbp >= HTN_SBP_TARGET) or (dbp is not None and dbp >= HTN_DBP_TARGET)


def _bp_high_normal(sbp: int | None, dbp: int | None) -> bool:
    return (sbp is not None and 130 <= sbp < HTN_SBP_TARGET) or (
        dbp is not None and 85 <= dbp < HTN_DBP_TARGET
    )


def htn_risk_factors(reading: ScreeningInput, params: Parameters = DEFAULTS) -> tuple[str, ...]:
    """R1.3 HTN high-risk (易患) factors present in a reading, as codes of :data:`RISK_FACTOR_LABELS`.

    (1) BP 130–139 and/or 85–89 (and not ≥ 140/90); (2) BMI ≥ 24 (``overweight`` below 28,
    ``obese`` from 28) and/or waist ≥ 90 cm (sex ``"M"``) / ≥ 85 cm (``"F"``); (3) family history of
    HTN; (4) long-term high-salt diet; (5) long-term heavy drinking; (6) age ≥ 55.
    """
    factors = []
    if _bp_high_normal(reading.sbp, reading.dbp) and not _bp_elevated(reading.sbp, reading.dbp):
        factors.append("high_normal_bp")
    if reading.bmi is not None:
        bmi = _dec(reading.bmi)
        if bmi >= 28:
            factors.append("obese")
        elif bmi >= 24:
            factors.append("overweight")
    if reading.waist_cm is not None:
        limit = {"M": 90, "F": 85}.get(reading.sex)
        if limit is not None and _dec(reading.waist_cm) >= limit:
            factors.append("central_obesity")
    if reading.family_history_htn:
        factors.append("family_history_htn")
    if reading.high_salt_diet:
        factors.append("high_salt_diet")
    if reading.heavy_drinking:
        factors.append("heavy_drinking")
    if reading.age >= params.high_risk_age:
        factors.append("age_55_plus")
    return tuple(factors)


def evaluate_screening(
    reading: ScreeningInput,
    earlier: Sequence[tuple[date, int | None, int | None]] = (),
    params: Parameters = DEFAULTS,
) -> ScreeningResult:
    """Classify a screening reading (R1.2 suspected/preliminary HTN, R1.3 high risk, R1.4 T2DM).

    * R1.2: SBP ≥ 140 or DBP ≥ 90 ⇒ ``suspected_htn`` (re-check in ``recheck_days``). The 3 most
      recent distinct days with a BP reading — this reading's day and ``earlier`` = ``(day, sbp,
      dbp)`` readings, days after ``reading.on`` ignored, a day's latest reading counting (this
      reading is the latest of its day; among earlier readings of one day the later in the sequence)
      — all elevated ⇒ ``preliminary_htn``: ``refer`` true, tracking task at + ``referral_tracking_days``.
    * R1.2 high-normal: 130–139 and/or 85–89 ⇒ ``high_normal``.
    * R1.3: any factor of :func:`htn_risk_factors` ⇒ ``high_risk``, next BP due in
      ``high_risk_bp_interval_months`` (6) from this reading; suspected residents are due at the
      re-check instead; others ``None`` (next year's free measurement, R1.1).
    * R1.4 (platform extension, WHO diagnostic thresholds, both parameters): FPG ≥ 7.0 or random
      glucose ≥ 11.1 mmol/L ⇒ ``suspected_t2dm`` (re-check in ``recheck_days``; no referral).
    * no BP and no glucose ⇒ ``not_measured``.
    """
    fired: set[str] = set()
    findings: list[str] = []
    case_due: date | None = None
    refer = False
    recheck = reading.on + timedelta(days=params.recheck_days)
    has_bp = reading.sbp is not None or reading.dbp is not None

    if has_bp:
        if _bp_elevated(reading.sbp, reading.dbp):
            fired.add("R1.2")
            latest_by_day: dict[date, tuple[int | None, int | None]] = {}
            for day, sbp, dbp in earlier:
                if day >= reading.on or (sbp is None and dbp is None):
                    continue
                latest_by_day[day] = (sbp, dbp)
            latest_by_day[reading.on] = (reading.sbp, reading.dbp)
            days = sorted(latest_by_day, reverse=True)[:3]
            if len(days) == 3 and all(_bp_elevated(*latest_by_day[d]) for d in days):
                findings.append(PRELIMINARY_HTN)
                refer = True
                case_due = referral_tracking_due(reading.on, params)
            else:
                findings.append(SUSPECTED_HTN)
                case_due = recheck
        elif _bp_high_normal(reading.sbp, reading.dbp):
            findings.append(HIGH_NORMAL)
        else:
            findings.append(NORMAL)

    has_glucose = reading.fpg_mmol is not None or reading.glucose_any_mmol is not None
    if (reading.fpg_mmol is not None and _dec(reading.fpg_mmol) >= params.t2dm_fpg_threshold) or (
        reading.glucose_any_mmol is not None
        and _dec(reading.glucose_any_mmol) >= params.t2dm_random_glucose_threshold
    ):
        fired.add("R1.4")
        findings.append(SUSPECTED_T2DM)
        case_due = recheck if case_due is None else min(case_due, recheck)
    elif has_glucose and not has_bp:
        findings.append(NORMAL)
    if not findings:
        findings.append(NOT_MEASURED)

    factors = htn_risk_factors(reading, params)
    if factors:
        fired.add("R1.3")
    if SUSPECTED_HTN in findings or PRELIMINARY_HTN in findings:
        next_bp_due: date | None = recheck
    elif factors:
        next_bp_due = add_months(reading.on, params.high_risk_bp_interval_months)
    else:
        next_bp_due = None
    result = min(findings, key=_RESULT_ORDER.index)
    return ScreeningResult(
        result=result,
        high_risk=bool(factors),
        risk_factors=factors,
        next_bp_due=next_bp_due,
        case_due_on=case_due,
        refer=refer,
        rules_fired=tuple(sorted(fired, key=_rule_key)),
        findings=tuple(sorted(set(findings), key=_RESULT_ORDER.index)),
    )


def bp_screening_due(
    age: int, has_bp_reading_this_year: bool, in_htn_registry: bool, params: Parameters = DEFAULTS
) -> bool:
    """R1.1: aged ≥ 35 (``bp_screening_min_age``), not in the HTN registry and no BP reading this year."""
    return age >= params.bp_screening_min_age and not has_bp_reading_this_year and not in_htn_registry


def health_check_due(has_health_check_this_year: bool) -> bool:
    """R2.4: an annual health check is due when none is recorded in the current year."""
    return not has_health_check_this_year


# --------------------------------------------------------------------------------------------------
# National indicators (chronic.md §6)
# --------------------------------------------------------------------------------------------------


def required_visits(registered_on: date, period_start: date, period_end: date) -> int:
    """IND-1 ``required(r)``: 4 if registered before the period, else ``5 − q`` (q = its quarter).

    Enrolled in Q1 → 4, Q2 → 3, Q3 → 2, Q4 → 1 (chronic.md §12.2); registered after the period → 0.
    For a period that is not a year, "4" is the number of quarters the period has begun.
    """
    quarters = _quarters_in(period_start, period_end)
    if registered_on < period_start:
        return quarters
    if registered_on > period_end:
        return 0
    return quarters + 1 - quarter_of(registered_on, period_start)


def is_managed(registered_on: date, closed_on: date | None, period_end: date) -> bool:
    """§6 ``Managed(P)``: registered on/before the period end and not closed on/before it.

    A registry closed (death, move, revoked diagnosis) during the period is out; one closed after the
    period end is in; never-followed-up patients stay in (失访 counts against the rate, §12.3).
    """
    if registered_on > period_end:
        return False
    return not (closed_on is not None and closed_on <= period_end)


def percent(numerator: int, denominator: int) -> Decimal | None:
    """§6 percentages: exact fraction ×100 rounded half-up to 1 decimal; ``None`` for denominator 0."""
    if numerator < 0 or denominator < 0:
        raise ValueError("counts cannot be negative")
    if denominator == 0:
        return None
    tenths = (2 * numerator * 1000 + denominator) // (2 * denominator)
    return Decimal(tenths).scaleb(-1)


def month_distance(d: date, month: date) -> int:
    """SIM-1 ``md(date, M) = (M.year − date.year)·12 + (M.month − date.month)`` (calendar months)."""
    return (month.year - d.year) * 12 + (month.month - d.month)


def face_to_face_count(
    dates: Iterable[date], registered_on: date, period_start: date, period_end: date
) -> int:
    """R2.3 / §6 ``|FF(r)|``: distinct dates in ``[max(P.start, registered_on), P.end]``."""
    start = max(period_start, registered_on)
    return len({d for d in dates if start <= d <= period_end})


def is_standard_managed(
    registered_on: date,
    face_to_face_dates: Iterable[date],
    period_start: date,
    period_end: date,
    params: Parameters = DEFAULTS,
) -> bool:
    """IND-1 / IND-3 numerator test (规范管理): ``|FF(r)| ≥ required(r)``.

    With ``require_quarterly_distribution`` also ≥ 1 face-to-face date in each of the last
    ``required(r)`` quarters of the period.
    """
    dates = {d for d in face_to_face_dates if max(period_start, registered_on) <= d <= period_end}
    required = required_visits(registered_on, period_start, period_end)
    if len(dates) < required:
        return False
    if params.require_quarterly_distribution and required:
        quarters = _quarters_in(period_start, period_end)
        visited = {quarter_of(d, period_start) for d in dates}
        if not set(range(quarters - required + 1, quarters + 1)) <= visited:
            return False
    return True


@dataclass(frozen=True)
class RegistryFacts:
    """What IND-1..IND-4 need of one registry (reference for the indicator SQL, chronic.md §6).

    ``last_bp_at_target`` / ``last_fpg_at_target``: R4.1 / R4.2 at the last face-to-face visit in
    the period that had a BP / an FPG; ``None`` when there was none (失访 → not at target).
    """

    registered_on: date
    closed_on: date | None = None
    face_to_face_dates: frozenset[date] = frozenset()
    last_bp_at_target: bool | None = None
    last_fpg_at_target: bool | None = None
    disease: str = HTN


def last_measured_at_target(
    visits: Iterable[tuple[date, str, bool | None]], period_start: date, period_end: date
) -> bool | None:
    """IND-2 / IND-4 per registry: the verdict of the last face-to-face visit in the period that had
    the measurement.

    ``visits`` are ``(visit_on, mode, at_target)`` with ``at_target`` the stored ``bp_at_target``
    (IND-2, R4.1 at that visit's age) or ``fpg_at_target`` (IND-4, R4.2), ``None`` when not
    measured. Phone visits are ignored (chronic.md §12.7); of two measured visits on the same day
    the later in the sequence (recording order) wins. ``None`` = no such visit (失访 → not 达标).
    """
    best: tuple[date, bool] | None = None
    for visit_on, mode, at_target in visits:
        if mode not in FACE_TO_FACE or at_target is None or not period_start <= visit_on <= period_end:
            continue
        if best is None or visit_on >= best[0]:
            best = (visit_on, at_target)
    return None if best is None else best[1]


@dataclass(frozen=True)
class IndicatorValue:
    """One indicator: numerator, denominator and :func:`percent` (``None`` when the denominator is 0)."""

    numerator: int
    denominator: int
    percent: Decimal | None


def national_indicators(
    facts: Iterable[RegistryFacts],
    period_start: date,
    period_end: date,
    params: Parameters = DEFAULTS,
) -> dict[str, IndicatorValue]:
    """Reference implementation of IND-1..IND-4 over :class:`RegistryFacts` (chronic.md §6).

    Keys ``"IND-1"`` (HTN 规范管理率), ``"IND-2"`` (HTN 血压控制率), ``"IND-3"`` (T2DM 规范管理率),
    ``"IND-4"`` (T2DM 血糖控制率). HTN facts feed IND-1/IND-2, T2DM facts IND-3/IND-4; other diseases
    are ignored. Denominator = ``Managed(P)`` of the disease.
    """
    counts = {key: [0, 0] for key in ("IND-1", "IND-2", "IND-3", "IND-4")}
    for fact in facts:
        if fact.disease == HTN:
            process, control, at_target = "IND-1", "IND-2", fact.last_bp_at_target
        elif fact.disease == T2DM:
            process, control, at_target = "IND-3", "IND-4", fact.last_fpg_at_target
        else:
            continue
        if not is_managed(fact.registered_on, fact.closed_on, period_end):
            continue
        counts[process][1] += 1
        counts[control][1] += 1
        if is_standard_managed(fact.registered_on, fact.face_to_face_dates, period_start, period_end, params):
            counts[process][0] += 1
        if at_target is True:
            counts[control][0] += 1
    return {key: IndicatorValue(num, den, percent(num, den)) for key, (num, den) in counts.items()}


# --------------------------------------------------------------------------------------------------
# Platform operational indicators (R7.1, R7.2)
# --------------------------------------------------------------------------------------------------


def quarter_bounds(d: date) -> tuple[date, date]:
    """The calendar quarter containing ``d``: (first day, last day)."""
    first = date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    return first, add_months(first, 3) - timedelta(days=1)


def quarterly_follow_up(
    registered_on: date,
    closed_on: date | None,
    face_to_face_dates: Iterable[date],
    quarter_start: date,
    quarter_end: date,
) -> tuple[bool, bool]:
    """R7.1 季度随访率 for one registry: ``(in_denominator, in_numerator)``.

    Denominator: registered before the quarter start and not closed by the quarter end (as §6).
    Numerator: also ≥ 1 face-to-face visit in the quarter.
    """
    eligible = registered_on < quarter_start and not (closed_on is not None and closed_on <= quarter_end)
    visited = any(quarter_start <= d <= quarter_end for d in face_to_face_dates)
    return eligible, eligible and visited


def referral_tracked_in_time(
    opened_on: date, tracked_on: date | None, as_of: date, params: Parameters = DEFAULTS
) -> tuple[bool, bool]:
    """R7.2 转诊随访及时率 for one referral: ``(in_denominator, in_numerator)``.

    Denominator: the 14-day window (``referral_tracking_days``) closed by ``as_of`` (window end ≤
    as_of). Numerator: a tracking contact (any mode, phone included) on a day in
    ``[opened_on, opened_on + 14]``.
    """
    due = referral_tracking_due(opened_on, params)
    closed = due <= as_of
    on_time = tracked_on is not None and opened_on <= tracked_on <= due
    return closed, closed and on_time


def referral_in_period(referral_dates: Iterable[date], period_start: date, period_end: date) -> bool:
    """R7.2 转诊率 numerator test: ≥ 1 referral (urgent or routine) dated in the period."""
    return any(period_start <= d <= period_end for d in referral_dates)


# --------------------------------------------------------------------------------------------------
# Simple / HEARTS monthly indicators (SIM-1..SIM-4)
# --------------------------------------------------------------------------------------------------

DEAD, UNDER_CARE, LOST_TO_FOLLOW_UP = "dead", "under_care", "lost_to_follow_up"
MISSED_VISIT, VISITED_NO_BP, CONTROLLED, UNCONTROLLED = (
    "missed_visit",
    "visited_no_bp",
    "controlled",
    "uncontrolled",
)


def care_state(*, dead: bool, registered_on: date, last_visit_on: date | None, month: date) -> str:
    """SIM-2: ``dead``; else ``under_care`` if registered < 12 months or visited < 12 months ago
    (calendar months, SIM-1 ``md``, latest visit on/before the end of month ``M``); else
    ``lost_to_follow_up``. ``month`` is any day of the reporting month.
    """
    if dead:
        return DEAD
    if month_distance(registered_on, month) < 12:
        return UNDER_CARE
    if last_visit_on is not None and month_distance(last_visit_on, month) < 12:
        return UNDER_CARE
    return LOST_TO_FOLLOW_UP


def outcome_last_3_months(
    *,
    last_visit_on: date | None,
    last_bp_on: date | None,
    sbp: int | None,
    dbp: int | None,
    month: date,
) -> str:
    """SIM-3: ``missed_visit`` if no visit or msv ≥ 3; else ``visited_no_bp`` if no BP or msb ≥ 3;
    else ``controlled`` if the latest BP (as of the end of ``M``) is < 140/90, no age adjustment;
    else ``uncontrolled``.
    """
    if last_visit_on is None or month_distance(last_visit_on, month) >= 3:
        return MISSED_VISIT
    if last_bp_on is None or sbp is None or dbp is None or month_distance(last_bp_on, month) >= 3:
        return VISITED_NO_BP
    return CONTROLLED if sbp < HTN_SBP_TARGET and dbp < HTN_DBP_TARGET else UNCONTROLLED


def in_sim_denominator(state: str, registered_on: date, month: date, *, with_ltfu: bool = False) -> bool:
    """SIM-4 denominator: under care (or LTFU in the "with LTFU" variant) and registered ≥ 3 months ago."""
    allowed = (UNDER_CARE, LOST_TO_FOLLOW_UP) if with_ltfu else (UNDER_CARE,)
    return state in allowed and month_distance(registered_on, month) >= 3


# --------------------------------------------------------------------------------------------------
# Work lists, call list, reminders (R7.3, R7.4)
# --------------------------------------------------------------------------------------------------


def days_overdue(next_due_on: date | None, on: date) -> int | None:
    """R7.3 ``days_overdue = D − planned``; ``None`` without a plan; ≤ 0 means not (yet) overdue."""
    if next_due_on is None:
        return None
    return (on - next_due_on).days


def is_overdue(days: int | None) -> bool:
    """R7.3: overdue when the planned date is before today (``days_overdue`` > 0)."""
    return days is not None and days > 0


def is_lost(days_overdue: int | None, params: Parameters = DEFAULTS) -> bool:
    """R7.3: overdue more than ``lost_after_days`` (365) → the "lost" list, off the daily call list."""
    return days_overdue is not None and days_overdue > params.lost_after_days


def reminder_eligible(
    *,
    days_overdue: int | None,
    consent: bool,
    has_phone: bool,
    already_sent: bool,
    params: Parameters = DEFAULTS,
) -> bool:
    """R7.4: SMS reminder when overdue ≥ ``reminder_overdue_days`` (3), with consent and a phone,
    once per planned date (``already_sent`` = a reminder exists for this plan).
    """
    return (
        consent
        and has_phone
        and not already_sent
        and days_overdue is not None
        and days_overdue >= params.reminder_overdue_days
    )


CALL_REACHED, CALL_REMIND_LATER, CALL_NO_ANSWER, CALL_MOVED, CALL_DIED = (
    "reached",
    "remind_later",
    "no_answer",
    "moved",
    "died",
)
CALL_OUTCOMES = (CALL_REACHED, CALL_REMIND_LATER, CALL_NO_ANSWER, CALL_MOVED, CALL_DIED)


def call_outcome_effect(
    outcome: str, on: date, params: Parameters = DEFAULTS
) -> tuple[date | None, str | None]:
    """R7.3 call results → ``(call_snoozed_until, close_reason)``.

    ``reached`` (agreed to visit): off the call list for ``call_reached_snooze_days`` (30);
    ``remind_later``: ``call_later_snooze_days`` (7); ``no_answer`` (decision): off today's list, back
    tomorrow (``on`` + 1 day); ``moved``: close the registry, reason ``moved_out``; ``died``: close,
    reason ``death``. Unknown outcomes raise ``ValueError``.
    """
    if outcome == CALL_REACHED:
        return on + timedelta(days=params.call_reached_snooze_days), None
    if outcome == CALL_REMIND_LATER:
        return on + timedelta(days=params.call_later_snooze_days), None
    if outcome == CALL_NO_ANSWER:
        return on + timedelta(days=1), None
    if outcome == CALL_MOVED:
        return None, "moved_out"
    if outcome == CALL_DIED:
        return None, "death"
    raise ValueError(f"unknown call outcome {outcome!r}")


def call_list_sort_key(*, high_risk: bool, days_overdue: int) -> tuple[int, int]:
    """R7.3 call-list order: high-risk first, then fewest days overdue (Simple #682)."""
    return (0 if high_risk else 1, days_overdue)


# --------------------------------------------------------------------------------------------------
# Status transitions
# --------------------------------------------------------------------------------------------------

# §1 Registry: active → closed (death, moved_out, diagnosis_revoked); re-enrolment is a new registry.
REGISTRY_TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"closed"}),
    "closed": frozenset(),
}
# R3.3/R7.2 Referral: open → tracked | cancelled.
REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"tracked", "cancelled"}),
    "tracked": frozenset(),
    "cancelled": frozenset(),
}
# R1.2 ScreeningCase: suspected → preliminary (3 elevated days) → confirmed (enrolled) | excluded.
SCREENING_CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    "suspected": frozenset({"preliminary", "confirmed", "excluded"}),
    "preliminary": frozenset({"confirmed", "excluded"}),
    "confirmed": frozenset(),
    "excluded": frozenset(),
}


def can_transition(table: Mapping[str, frozenset[str]], current: str, new: str) -> bool:
    """Whether a status field may move from ``current`` to ``new`` per its ``*_TRANSITIONS`` table."""
    return new in table.get(current, frozenset())
