"""Screening (筛查) at village free clinics (义诊) and annual checks: chronic.md R1.1–R1.4.

``record_screening`` stores one reading with what the rules made of it (``rules.evaluate_screening``)
and opens or advances the resident's ``ScreeningCase`` per disease (R1.2):

* a reading over the threshold (SBP ≥140 or DBP ≥90; FPG ≥7.0 / random glucose ≥11.1 for T2DM)
  opens a *suspected* case with a re-check due in ``recheck_days``;
* three different days over the threshold (same-day repeats count once) make it *preliminary*:
  a referral up the community's path for confirmation, tracked at +``referral_tracking_days``;
* a normal re-check of a suspected case excludes it.

``confirm_case`` enrols the confirmed resident (R2.1, via ``services.registries.enrol``);
``exclude_case`` closes a case without enrolment. Every write is atomic and audited; a retried
submission (same ``client_uuid``) returns the first result instead of recording twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import errors, rules
from yilian.chronic.models import Disease, Referral, Registry, ScreeningCase, ScreeningReading
from yilian.chronic.selectors import screening as screening_selectors
from yilian.common import audit
from yilian.common.errors import Conflict, InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.patients.models import Patient


class ScreeningEmpty(InvalidInput):
    """A screening must measure something: a blood pressure or a glucose value (R1.1, R1.4)."""

    code = "SCREENING_EMPTY"
    default_message = _("请至少填写血压（收缩压和舒张压）或血糖中的一项。")


class BloodPressureIncomplete(InvalidInput):
    code = "BP_INCOMPLETE"
    default_message = _("血压须同时填写收缩压和舒张压。")


class ScreeningReplayMismatch(Conflict):
    """The same ``client_uuid`` was already used for another resident's reading."""

    code = "CLIENT_UUID_REUSED"
    default_message = _("该提交编号已用于另一位居民的筛查记录，请刷新页面后重新填写。")


class ScreeningConflict(Conflict):
    """A concurrent write on the same resident's screening won; the phone simply submits again."""

    code = "SCREENING_CONFLICT"
    default_message = _("该居民的筛查记录刚被他人更新，请重新提交。")


class CaseClosed(errors.InvalidTransition):
    code = "SCREENING_CASE_CLOSED"
    default_message = _("该筛查病例已确诊或已排除，不能再操作。")


READING_FIELDS = ("sbp", "dbp", "fpg_mmol", "glucose_any_mmol", "height_cm", "weight_kg", "waist_cm")
_PROBLEM_ERRORS = {
    "out_of_range": errors.ReadingOutOfRange,
    "dbp_not_below_sbp": errors.DiastolicNotBelowSystolic,
    "glucose_unit_suspect": errors.GlucoseUnitSuspect,
}
_FIELD_LABELS = {
    "sbp": _("收缩压"),
    "dbp": _("舒张压"),
    "fpg_mmol": _("空腹血糖"),
    "glucose_any_mmol": _("随机血糖"),
    "height_cm": _("身高"),
    "weight_kg": _("体重"),
    "waist_cm": _("腰围"),
}
# How many earlier BP readings the R1.2 "three different days" rule is given (the rule keeps the
# latest reading of each day and looks at the three most recent days).
EARLIER_READINGS = 20


@dataclass(frozen=True)
class ScreeningOutcome:
    """What ``record_screening`` did: the stored reading, the case per disease it touched, the
    referral it opened (if any), and whether this was a replay of an earlier submission."""

    reading: ScreeningReading
    evaluation: rules.ScreeningResult | None
    cases: tuple[ScreeningCase, ...]
    referral: Referral | None
    replayed: bool = False


def _decimal(value, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidInput(
            _("%(field)s 必须是数字。") % {"field": _FIELD_LABELS[field]}, field=field
        ) from exc
    if not number.is_finite():
        raise InvalidInput(_("%(field)s 必须是数字。") % {"field": _FIELD_LABELS[field]}, field=field)
    return number.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _int(value, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(_("%(field)s 必须是整数。") % {"field": _FIELD_LABELS[field]}, field=field)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidInput(
            _("%(field)s 必须是整数。") % {"field": _FIELD_LABELS[field]}, field=field
        ) from exc
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidInput(_("%(field)s 必须是整数。") % {"field": _FIELD_LABELS[field]}, field=field)
    return int(number)


def validate_screening_readings(values: dict) -> None:
    """Refuse impossible values (``rules.RANGES``), a diastolic not below the systolic and glucose
    that is only plausible in mg/dL (chronic.md §9), through ``rules.validate_readings``."""
    problems = rules.validate_readings(**{k: v for k, v in values.items() if v is not None})
    for field, problem in problems:
        error = _PROBLEM_ERRORS.get(problem, errors.ReadingOutOfRange)
        label = _FIELD_LABELS.get(field, field)
        if error is errors.ReadingOutOfRange:
            low, high = rules.RANGES.get(field, ("", ""))
            raise error(
                _("%(field)s %(value)s 超出可能范围（%(low)s–%(high)s），请核对后重新输入。")
                % {"field": label, "value": values.get(field), "low": low, "high": high},
                field=field,
            )
        raise error(field=field)


def body_mass_index(height_cm: Decimal | None, weight_kg: Decimal | None) -> Decimal | None:
    """BMI = kg / m², one decimal (R1.3 (2): ≥24 overweight, ≥28 obese)."""
    if not height_cm or not weight_kg:
        return None
    metres = height_cm / Decimal(100)
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _earlier_bp(patient_id: int, taken_on: date) -> list[tuple[date, int | None, int | None]]:
    """Earlier BP readings (day, sbp, dbp), oldest first, on or before ``taken_on`` (R1.2)."""
    rows = list(
        ScreeningReading.objects.filter(patient_id=patient_id, taken_on__lte=taken_on, sbp__isnull=False)
        .order_by("-taken_on", "-id")
        .values_list("taken_on", "sbp", "dbp")[:EARLIER_READINGS]
    )
    rows.reverse()
    return rows


def _in_registry(patient_id: int, disease: str) -> bool:
    return Registry.objects.filter(
        patient_id=patient_id, disease=disease, status=Registry.Status.ACTIVE
    ).exists()


def _open_case(patient_id: int, disease: str) -> ScreeningCase | None:
    return (
        ScreeningCase.objects.select_for_update()
        .filter(
            patient_id=patient_id,
            disease=disease,
            status__in=[ScreeningCase.Status.SUSPECTED, ScreeningCase.Status.PRELIMINARY],
        )
        .first()
    )


def _replay(client_uuid, patient_id: int) -> ScreeningOutcome | None:
    if client_uuid is None:
        return None
    reading = ScreeningReading.objects.filter(client_uuid=client_uuid).first()
    if reading is None:
        return None
    if reading.patient_id != patient_id:
        raise ScreeningReplayMismatch(field="client_uuid")
    # The cases this reading left behind: per disease, the latest opened on or before its day.
    cases = []
    for disease in (Disease.HTN, Disease.T2DM):
        case = (
            ScreeningCase.objects.filter(
                patient_id=patient_id, disease=disease, opened_on__lte=reading.taken_on
            )
            .order_by("-opened_on", "-id")
            .first()
        )
        if case is not None:
            cases.append(case)
    referral = (
        Referral.objects.select_related("to_org")
        .filter(screening_case__in=cases, opened_on=reading.taken_on)
        .order_by("-id")
        .first()
    )
    return ScreeningOutcome(
        reading=reading, evaluation=None, cases=tuple(cases), referral=referral, replayed=True
    )


def _parse_uuid(client_uuid) -> uuid.UUID | None:
    if client_uuid in (None, ""):
        return None
    if isinstance(client_uuid, uuid.UUID):
        return client_uuid
    try:
        return uuid.UUID(str(client_uuid))
    except ValueError as exc:
        raise InvalidInput(_("提交编号格式有误。"), field="client_uuid") from exc


def record_screening(
    *,
    actor: Actor,
    patient_id: int,
    organisation_id: int,
    taken_on: date,
    setting: str,
    sbp=None,
    dbp=None,
    fpg_mmol=None,
    glucose_any_mmol=None,
    ecg_abnormal: bool | None = None,
    height_cm=None,
    weight_kg=None,
    waist_cm=None,
    family_history_htn: bool = False,
    family_history_dm: bool = False,
    high_salt_diet: bool = False,
    heavy_drinking: bool = False,
    smoking: bool = False,
    client_uuid: uuid.UUID | str | None = None,
    today: date | None = None,
    params: rules.Parameters = rules.DEFAULTS,
) -> ScreeningOutcome:
    """Record one screening reading and act on it (R1.1–R1.4); see the module docstring.

    Idempotent by ``client_uuid``: a phone that retries after a lost answer gets the first result.
    """
    client_uuid = _parse_uuid(client_uuid)
    # The gate runs before the transaction so that a refused look at another clinic's resident
    # stays in the audit log (access.md L-1) although the screening itself is not written.
    patient = screening_selectors.access_screening_patient(actor, patient_id, purpose="screening")
    try:
        with transaction.atomic():
            return _record_screening(
                actor=actor,
                patient=patient,
                organisation_id=organisation_id,
                taken_on=taken_on,
                setting=setting,
                values={
                    "sbp": _int(sbp, "sbp"),
                    "dbp": _int(dbp, "dbp"),
                    "fpg_mmol": _decimal(fpg_mmol, "fpg_mmol"),
                    "glucose_any_mmol": _decimal(glucose_any_mmol, "glucose_any_mmol"),
                    "height_cm": _decimal(height_cm, "height_cm"),
                    "weight_kg": _decimal(weight_kg, "weight_kg"),
                    "waist_cm": _decimal(waist_cm, "waist_cm"),
                },
                flags={
                    "ecg_abnormal": ecg_abnormal,
                    "family_history_htn": bool(family_history_htn),
                    "family_history_dm": bool(family_history_dm),
                    "high_salt_diet": bool(high_salt_diet),
                    "heavy_drinking": bool(heavy_drinking),
                    "smoking": bool(smoking),
                },
                client_uuid=client_uuid,
                today=today or timezone.localdate(),
                params=params,
            )
    except IntegrityError:
        # Two submissions of the same client_uuid raced; the loser returns the winner's result.
        replay = _replay(client_uuid, patient_id)
        if replay is None:
            raise ScreeningConflict() from None
        return replay


def _record_screening(
    *, actor, patient, organisation_id, taken_on, setting, values, flags, client_uuid, today, params
) -> ScreeningOutcome:
    # One screening of a resident at a time: the R1.2 day count and the open case depend on the
    # readings before this one (a lock on the patient row; SQLite serialises writers anyway).
    Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True).first()
    replay = _replay(client_uuid, patient.pk)
    if replay is not None:
        return replay
    organisation = screening_selectors.organisation_in_scope(actor, organisation_id)
    if setting not in ScreeningReading.Setting.values:
        raise InvalidInput(_("筛查场景无效。"), field="setting")
    if not isinstance(taken_on, date):
        raise InvalidInput(_("测量日期格式有误。"), field="taken_on")
    if taken_on > today:
        raise errors.DateInFuture(_("测量日期不能晚于今天。"), field="taken_on")
    if taken_on < patient.birth_date:
        raise InvalidInput(_("测量日期早于出生日期。"), field="taken_on")
    if (values["sbp"] is None) != (values["dbp"] is None):
        raise BloodPressureIncomplete(field="dbp" if values["dbp"] is None else "sbp")
    if values["sbp"] is None and values["fpg_mmol"] is None and values["glucose_any_mmol"] is None:
        raise ScreeningEmpty(field="sbp")
    validate_screening_readings(values)

    bmi = body_mass_index(values["height_cm"], values["weight_kg"])
    earlier = _earlier_bp(patient.pk, taken_on)
    evaluation = rules.evaluate_screening(
        rules.ScreeningInput(
            on=taken_on,
            age=rules.age_on(patient.birth_date, taken_on),
            sex=patient.sex if patient.sex in ("M", "F") else "M",
            sbp=values["sbp"],
            dbp=values["dbp"],
            fpg_mmol=values["fpg_mmol"],
            glucose_any_mmol=values["glucose_any_mmol"],
            bmi=bmi,
            waist_cm=values["waist_cm"],
            family_history_htn=flags["family_history_htn"],
            family_history_dm=flags["family_history_dm"],
            high_salt_diet=flags["high_salt_diet"],
            heavy_drinking=flags["heavy_drinking"],
            smoking=flags["smoking"],
        ),
        earlier,
        params,
    )
    reading = ScreeningReading(
        patient=patient,
        organisation=organisation,
        taken_on=taken_on,
        setting=setting,
        **values,
        **flags,
        result=evaluation.result[:20],
        risk_factors=list(evaluation.risk_factors),
        rules_fired=list(evaluation.rules_fired),
        client_uuid=client_uuid,
        recorded_by_id=actor.user_id,
    )
    reading.full_clean(exclude=["patient", "organisation", "recorded_by"], validate_unique=False)
    reading.save()

    cases: list[ScreeningCase] = []
    referral = None
    if values["sbp"] is not None and not _in_registry(patient.pk, Disease.HTN):
        case, referral = _advance_htn_case(
            actor=actor,
            patient=patient,
            organisation=organisation,
            reading=reading,
            evaluation=evaluation,
            params=params,
        )
        if case is not None:
            cases.append(case)
    if (values["fpg_mmol"] is not None or values["glucose_any_mmol"] is not None) and not _in_registry(
        patient.pk, Disease.T2DM
    ):
        case = _advance_t2dm_case(
            patient=patient, organisation=organisation, reading=reading, evaluation=evaluation, params=params
        )
        if case is not None:
            cases.append(case)

    audit.record(
        actor,
        "chronic.screening.record",
        target=audit.Target("screening_reading", reading.pk, patient.pk),
        detail={
            "result": reading.result,
            "rules_fired": reading.rules_fired,
            "cases": [{"id": c.pk, "disease": c.disease, "status": c.status} for c in cases],
            "referral_id": referral.pk if referral else None,
        },
    )
    return ScreeningOutcome(reading=reading, evaluation=evaluation, cases=tuple(cases), referral=referral)


def _findings(evaluation: rules.ScreeningResult) -> frozenset[str]:
    return frozenset(evaluation.findings or (evaluation.result,))


def _exclude_on_normal(case: ScreeningCase | None, reading: ScreeningReading) -> ScreeningCase | None:
    """R1.2: a normal re-check (on or after the day the case opened) excludes a *suspected* case. A
    preliminary case waits for the higher hospital's answer (``confirm_case`` / ``exclude_case``)."""
    if (
        case is not None
        and case.status == ScreeningCase.Status.SUSPECTED
        and reading.taken_on >= case.opened_on
    ):
        case.status = ScreeningCase.Status.EXCLUDED
        case.closed_on = reading.taken_on
        case.save(update_fields=["status", "closed_on", "updated_at"])
    return case


def _suspect(case, *, patient, disease, organisation, reading, due_on) -> ScreeningCase:
    """Open a suspected case, or move an open suspected case's re-check to the new date."""
    if case is None:
        return ScreeningCase.objects.create(
            patient=patient,
            disease=disease,
            organisation=organisation,
            status=ScreeningCase.Status.SUSPECTED,
            opened_on=reading.taken_on,
            due_on=due_on,
        )
    if case.status == ScreeningCase.Status.SUSPECTED and due_on > case.due_on:
        case.due_on = due_on
        case.save(update_fields=["due_on", "updated_at"])
    return case


def _advance_htn_case(*, actor, patient, organisation, reading, evaluation, params):
    """R1.2: open / advance / exclude the resident's hypertension screening case; a preliminary
    case (three different days over 140/90) is referred up the community's path."""
    case = _open_case(patient.pk, Disease.HTN)
    findings = _findings(evaluation)
    if rules.PRELIMINARY_HTN in findings:
        due_on = rules.referral_tracking_due(reading.taken_on, params)
        if case is None:
            case = ScreeningCase.objects.create(
                patient=patient,
                disease=Disease.HTN,
                organisation=organisation,
                status=ScreeningCase.Status.PRELIMINARY,
                opened_on=reading.taken_on,
                due_on=due_on,
            )
        elif case.status == ScreeningCase.Status.PRELIMINARY:
            return case, None  # already referred for confirmation; that referral stands
        else:
            _transition(case, ScreeningCase.Status.PRELIMINARY)
            case.status = ScreeningCase.Status.PRELIMINARY
            case.due_on = due_on
            case.save(update_fields=["status", "due_on", "updated_at"])
        return case, _refer(actor=actor, case=case, reading=reading, evaluation=evaluation)
    if rules.SUSPECTED_HTN in findings:
        due_on = reading.taken_on + timedelta(days=params.recheck_days)
        return (
            _suspect(
                case,
                patient=patient,
                disease=Disease.HTN,
                organisation=organisation,
                reading=reading,
                due_on=due_on,
            ),
            None,
        )
    return _exclude_on_normal(case, reading), None


def _advance_t2dm_case(*, patient, organisation, reading, evaluation, params):
    """R1.4 (platform extension, see ``rules.evaluate_screening``): a glucose over the threshold opens
    a suspected T2DM case, re-checked (fasting) in ``recheck_days``; a normal re-check excludes it.
    Confirmation is by the clinic (``confirm_case``)."""
    case = _open_case(patient.pk, Disease.T2DM)
    if rules.SUSPECTED_T2DM in _findings(evaluation):
        due_on = reading.taken_on + timedelta(days=params.recheck_days)
        return _suspect(
            case,
            patient=patient,
            disease=Disease.T2DM,
            organisation=organisation,
            reading=reading,
            due_on=due_on,
        )
    return _exclude_on_normal(case, reading)


def _refer(*, actor, case, reading, evaluation) -> Referral:
    """R1.2: refer a preliminary case up the community's path for confirmation (B's ``open_referral``,
    tracking due at +``referral_tracking_days``)."""
    from yilian.chronic.services import referrals

    return referrals.open_referral(
        actor=actor,
        patient_id=case.patient_id,
        disease=case.disease,
        kind=Referral.Kind.ROUTINE,
        reasons=["preliminary_htn"],
        rules_fired=list(evaluation.rules_fired),
        from_org_id=reading.organisation_id,
        opened_on=reading.taken_on,
        screening_case_id=case.pk,
    )


def _track_open_referrals(*, actor: Actor, case: ScreeningCase, outcome: str, on: date) -> None:
    """R1.2 / R7.2: the answer on a preliminary case (confirmed or excluded) is the tracking contact
    of its open referral. A referral from a clinic outside the actor's scope is left to that clinic."""
    from yilian.chronic.services import referrals

    for referral in Referral.objects.filter(screening_case=case, status=Referral.Status.OPEN).order_by("id"):
        try:
            referrals.track_referral(
                actor=actor,
                referral_id=referral.pk,
                tracked_on=max(on, referral.opened_on),
                outcome=outcome,
                today=max(on, referral.opened_on),
            )
        except NotFound:
            continue


def _transition(case: ScreeningCase, to: str) -> None:
    allowed = rules.SCREENING_CASE_TRANSITIONS.get(case.status, frozenset())
    if to not in allowed:
        raise CaseClosed()


@transaction.atomic
def confirm_case(
    *,
    actor: Actor,
    case_id: int,
    diagnosed_on: date,
    diagnosis_source: str,
    managing_org_id: int,
    responsible_doctor_id: int | None = None,
    registered_on: date | None = None,
    reminder_consent: bool = False,
    today: date | None = None,
) -> Registry:
    """A screening case confirmed (确诊) → enrol the resident in the disease registry (R1.2 "only
    confirmed primary HTN is enrolled", R2.1) through ``services.registries.enrol``."""
    from yilian.chronic.services import registries

    today = today or timezone.localdate()
    case = screening_selectors.access_case(actor, case_id, for_update=True)
    _transition(case, ScreeningCase.Status.CONFIRMED)
    if not isinstance(diagnosed_on, date):
        raise InvalidInput(_("确诊日期格式有误。"), field="diagnosed_on")
    if diagnosed_on > today:
        raise errors.DateInFuture(_("确诊日期不能晚于今天。"), field="diagnosed_on")
    if diagnosed_on < case.opened_on:
        raise InvalidInput(_("确诊日期早于筛查发现日期。"), field="diagnosed_on")
    registry = registries.enrol(
        actor=actor,
        patient_id=case.patient_id,
        disease=case.disease,
        registered_on=registered_on or today,
        diagnosed_on=diagnosed_on,
        diagnosis_source=diagnosis_source,
        managing_org_id=managing_org_id,
        responsible_doctor_id=responsible_doctor_id,
        reminder_consent=reminder_consent,
        screening_case_id=case.pk,
    )
    _track_open_referrals(actor=actor, case=case, outcome=str(_("已确诊，纳入专病管理")), on=today)
    case.refresh_from_db()
    if case.status != ScreeningCase.Status.CONFIRMED or case.registry_id != registry.pk:
        case.status = ScreeningCase.Status.CONFIRMED
        case.registry = registry
        case.closed_on = case.closed_on or registry.registered_on
        case.save(update_fields=["status", "registry", "closed_on", "updated_at"])
    audit.record(
        actor,
        "chronic.screening.confirm",
        target=audit.Target("screening_case", case.pk, case.patient_id),
        detail={"registry_id": registry.pk, "disease": case.disease},
    )
    return registry


@transaction.atomic
def exclude_case(
    *,
    actor: Actor,
    case_id: int,
    excluded_on: date | None = None,
    reason: str = "",
    today: date | None = None,
) -> ScreeningCase:
    """Close a screening case without enrolment (排除: normal re-check, transient cause, or the
    higher hospital did not confirm it), R1.2."""
    today = today or timezone.localdate()
    excluded_on = excluded_on or today
    case = screening_selectors.access_case(actor, case_id, for_update=True)
    _transition(case, ScreeningCase.Status.EXCLUDED)
    if excluded_on > today:
        raise errors.DateInFuture(_("排除日期不能晚于今天。"), field="excluded_on")
    if excluded_on < case.opened_on:
        raise InvalidInput(_("排除日期早于筛查发现日期。"), field="excluded_on")
    case.status = ScreeningCase.Status.EXCLUDED
    case.closed_on = excluded_on
    case.save(update_fields=["status", "closed_on", "updated_at"])
    _track_open_referrals(
        actor=actor, case=case, outcome=(str(_("已排除")) + (f"：{reason}" if reason else ""))[:200], on=today
    )
    audit.record(
        actor,
        "chronic.screening.exclude",
        target=audit.Target("screening_case", case.pk, case.patient_id),
        reason=(reason or "")[:500],
    )
    return case


__all__ = [
    "BloodPressureIncomplete",
    "CaseClosed",
    "ScreeningEmpty",
    "ScreeningOutcome",
    "body_mass_index",
    "confirm_case",
    "exclude_case",
    "record_screening",
    "validate_screening_readings",
]
