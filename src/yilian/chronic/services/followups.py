"""Recording a chronic-disease follow-up visit (随访): validation, evaluation, plan, referral.

Rules (../shared/docs/rules/chronic.md): R2.2/R2.3 (face-to-face = clinic or home; phone does not
count), R3.x (urgent), R4.x (targets), R5.1–R5.7 (classification and what happens next, evaluated
per disease, R5.7), R7.2 (a later follow-up tracks the open referrals), all computed by
``rules.evaluate_visit``; this module only gathers its inputs and stores its output.

Decisions written down here:

* **BP used for evaluation**: when both readings are complete (SBP and DBP of the first and of the
  second measurement), each of SBP and DBP is the mean of the two, rounded half up (139.5 → 140);
  otherwise the one complete reading. Both readings are stored as given.
* **Age** is the completed years on the visit day (``rules.age_on``), stored as ``age_at_visit``.
* **Previous visit for R5.3** = the latest *earlier* (by visit day) face-to-face follow-up of the
  same registry that carried the disease's measurement (``bp_at_target`` for HTN,
  ``fpg_at_target`` for T2DM, not null); phone visits neither continue nor break the chain.
* **Back-dated visits**: the registry's plan (``last_follow_up_on``, ``next_follow_up_on``) comes
  from the latest visit by day (then by recording order), so a visit recorded late for an earlier
  day does not move the plan back; evaluations already stored for later visits are not redone.
  ``last_classification`` is that of the latest visit that was classified (face-to-face).
* ``adr_uncontrollable`` implies ``adr``.
* A visit for several diseases (HTN + T2DM) is one row per registry tied by ``visit_key``; with
  ``diseases`` omitted it covers every active registry of the patient in the actor's scope.
* Nothing is half-written: every check runs before the first write, inside one transaction.
* **Concurrency / idempotency**: the registries are locked (``select_for_update``, in id order so
  two visits for HTN + T2DM cannot deadlock); a retried submission with the same ``client_uuid``
  returns the rows already stored and writes nothing (the unique ``(registry, client_uuid)`` index
  backs this up).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.errors import (
    DateInFuture,
    DiastolicNotBelowSystolic,
    GlucoseUnitSuspect,
    NotEnrolled,
    ReadingOutOfRange,
    ReadingsRequired,
    VisitBeforeEnrolment,
)
from yilian.chronic.models import Disease, FollowUp, Registry
from yilian.chronic.services import referrals as referral_services
from yilian.chronic.services import rollup
from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.community.models import Organisation
from yilian.patients.models import Patient

MODES = ("clinic", "home", "phone")
READING_LABELS = {
    "sbp": _("收缩压"),
    "dbp": _("舒张压"),
    "sbp2": _("收缩压（第二次）"),
    "dbp2": _("舒张压（第二次）"),
    "fpg_mmol": _("空腹血糖"),
    "glucose_any_mmol": _("随机血糖"),
    "heart_rate": _("心率"),
    "temperature_c": _("体温"),
    "height_cm": _("身高"),
    "weight_kg": _("体重"),
    "waist_cm": _("腰围"),
}
# Which at-target column carries "the disease's measurement" in the R5.3 chain: FPG for T2DM, BP
# for HTN and the other diseases (as ``rules.evaluate_visit`` computes ``at_target``).
MEASURE_COLUMN = {"t2dm": "fpg_at_target"}
MAX_SYMPTOMS = 30
MAX_MEDICATIONS = 20


@dataclass
class FollowUpData:
    """What the doctor entered for one visit (随访记录表), before any evaluation."""

    visit_on: date
    mode: str
    sbp: int | None = None
    dbp: int | None = None
    sbp2: int | None = None
    dbp2: int | None = None
    fpg_mmol: Decimal | None = None
    glucose_any_mmol: Decimal | None = None
    heart_rate: int | None = None
    temperature_c: Decimal | None = None
    height_cm: Decimal | None = None
    weight_kg: Decimal | None = None
    waist_cm: Decimal | None = None
    symptoms: list[str] = field(default_factory=list)
    pregnant_or_lactating: bool = False
    unmanageable_other_disease: bool = False
    adr: bool = False
    adr_uncontrollable: bool = False
    new_complication: bool = False
    complication_worsened: bool = False
    adherence: str = ""
    medications: list[dict] = field(default_factory=list)
    lifestyle: dict = field(default_factory=dict)
    note: str = ""


def _half_up_mean(a: int, b: int) -> int:
    """Mean of two whole mmHg readings, rounded half up (decision in the module docstring)."""
    return (a + b + 1) // 2


def evaluation_bp(data: FollowUpData) -> tuple[int | None, int | None]:
    """The BP the rules see: the mean of two complete readings, else the complete one given."""
    first = data.sbp is not None and data.dbp is not None
    second = data.sbp2 is not None and data.dbp2 is not None
    if first and second:
        return _half_up_mean(data.sbp, data.sbp2), _half_up_mean(data.dbp, data.dbp2)
    if first:
        return data.sbp, data.dbp
    if second:
        return data.sbp2, data.dbp2
    return None, None


def _dec(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except Exception as exc:  # any unparsable number is the caller's input error
        raise InvalidInput(
            _("%(label)s的数值格式有误。") % {"label": READING_LABELS.get(name, name)}, field=name
        ) from exc


def _range_text(name: str) -> tuple[Any, Any]:
    key = name[:-1] if name in ("sbp2", "dbp2") else name
    return rules.RANGES.get(key, (None, None))


def _refuse_problem(name: str, problem: str) -> None:
    label = READING_LABELS.get(name, name)
    if problem == "out_of_range":
        low, high = _range_text(name)
        raise ReadingOutOfRange(
            _("%(label)s超出可能范围（%(low)s–%(high)s），请核对后重新输入。")
            % {"label": label, "low": low, "high": high},
            field=name,
            min=str(low),
            max=str(high),
        )
    if problem == "dbp_not_below_sbp":
        raise DiastolicNotBelowSystolic(field=name)
    if problem == "glucose_unit_suspect":
        raise GlucoseUnitSuspect(
            _("%(label)s看起来是 mg/dL，请换算为 mmol/L（除以 18）后再填写。") % {"label": label}, field=name
        )
    raise InvalidInput(_("%(label)s有误。") % {"label": label}, field=name)


def validate_data(data: FollowUpData, *, today: date) -> None:
    """Every check on the entered values that needs no registry (chronic.md input rules)."""
    if not isinstance(data.visit_on, date):
        raise InvalidInput(_("随访日期有误。"), field="visit_on")
    if data.visit_on > today:
        raise DateInFuture(_("随访日期不能晚于今天。"), field="visit_on")
    if data.mode not in MODES:
        raise InvalidInput(_("随访方式只能是门诊、家庭或电话。"), field="mode")
    for first, second in (("sbp", "dbp"), ("sbp2", "dbp2")):
        if (getattr(data, first) is None) != (getattr(data, second) is None):
            missing = second if getattr(data, second) is None else first
            raise InvalidInput(
                _("%(label)s未填写：收缩压和舒张压需同时填写。") % {"label": READING_LABELS[missing]},
                field=missing,
            )
    for name in ("fpg_mmol", "glucose_any_mmol", "temperature_c", "height_cm", "weight_kg", "waist_cm"):
        setattr(data, name, _dec(getattr(data, name), name))
    readings = {name: getattr(data, name) for name in READING_LABELS}
    for name, problem in rules.validate_readings(**readings):
        _refuse_problem(name, problem)
    if not isinstance(data.symptoms, list | tuple | set | frozenset) or len(data.symptoms) > MAX_SYMPTOMS:
        raise InvalidInput(_("症状条目过多。"), field="symptoms")
    unknown = sorted(rules.unknown_symptoms(str(c) for c in data.symptoms))
    if unknown:
        raise InvalidInput(_("未知的症状代码：%(code)s。") % {"code": unknown[0][:40]}, field="symptoms")
    if data.adherence not in ("", *FollowUp.Adherence.values):
        raise InvalidInput(_("服药依从性只能是规律、间断或不服药。"), field="adherence")
    if not isinstance(data.medications, list) or len(data.medications) > MAX_MEDICATIONS:
        raise InvalidInput(_("用药条目过多（最多 %(n)s 条）。") % {"n": MAX_MEDICATIONS}, field="medications")
    if not isinstance(data.lifestyle, dict):
        raise InvalidInput(_("生活方式指导格式有误。"), field="lifestyle")
    if len(data.note or "") > 500:
        raise InvalidInput(_("备注不能超过 500 字。"), field="note")
    if data.adr_uncontrollable:
        data.adr = True


def _has_measurement(disease: str, data: FollowUpData) -> bool:
    if disease == Disease.HTN:
        return evaluation_bp(data) != (None, None)
    if disease == Disease.T2DM:
        return data.fpg_mmol is not None or data.glucose_any_mmol is not None
    return True


def _recording_org(actor: Actor, registry: Registry) -> Organisation:
    """Where the visit was recorded: the actor's deepest organisation holding CHRONIC_MANAGE over
    the registry's managing organisation (a village doctor → the village; a township doctor
    recording a village patient → the township); the managing organisation when none is deeper."""
    candidates = [
        a
        for a in actor.assignments
        if policy.CHRONIC_MANAGE in policy.ROLE_PERMISSIONS.get(a.role, ())
        and registry.managing_org.path.startswith(a.org_path)
    ]
    if not candidates:
        return registry.managing_org
    best = max(candidates, key=lambda a: len(a.org_path))
    if best.org_id == registry.managing_org_id:
        return registry.managing_org
    return Organisation.objects.select_related("parent").get(pk=best.org_id)


def _scope_q(actor: Actor) -> Q:
    q = Q(pk__in=[])
    for path in policy.scope_paths(actor, policy.CHRONIC_MANAGE):
        q |= Q(managing_org__path__startswith=path)
    return q


def _target_registries(
    actor: Actor, patient_id: int, diseases: list[str] | None, *, lock: bool
) -> list[Registry]:
    qs = Registry.objects.filter(_scope_q(actor), patient_id=patient_id, status=Registry.Status.ACTIVE)
    if diseases:
        qs = qs.filter(disease__in=diseases)
    if lock:
        qs = qs.select_for_update(of=("self",))
    return list(qs.select_related("managing_org", "patient").order_by("pk"))


def _patient_visible(actor: Actor, patient: Patient) -> bool:
    if policy.covers(actor, policy.CHRONIC_MANAGE, patient.home_org.path):
        return True
    return Registry.objects.filter(_scope_q(actor), patient=patient).exists()


def _existing(patient_id: int, client_uuid: uuid.UUID | None) -> list[FollowUp]:
    if client_uuid is None:
        return []
    return list(
        FollowUp.objects.filter(patient_id=patient_id, client_uuid=client_uuid)
        .select_related("registry")
        .order_by("registry_id")
    )


def _previous(registry: Registry, visit_on: date) -> rules.PreviousVisit | None:
    column = MEASURE_COLUMN.get(registry.disease, "bp_at_target")
    row = (
        FollowUp.objects.filter(
            registry=registry,
            visit_on__lt=visit_on,
            mode__in=sorted(rules.FACE_TO_FACE),
            **{f"{column}__isnull": False},
        )
        .order_by("-visit_on", "-pk")
        .values_list("visit_on", column)
        .first()
    )
    return rules.PreviousVisit(visit_on=row[0], at_target=row[1]) if row else None


def _refresh_plan(registry: Registry) -> None:
    """The plan comes from the latest visit by day (then recording order): see the module docstring."""
    latest = (
        FollowUp.objects.filter(registry=registry)
        .order_by("-visit_on", "-pk")
        .values("visit_on", "next_due_on")
        .first()
    )
    classified = (
        FollowUp.objects.filter(registry=registry)
        .exclude(classification="")
        .order_by("-visit_on", "-pk")
        .values_list("classification", flat=True)
        .first()
    )
    registry.last_follow_up_on = latest["visit_on"]
    registry.next_follow_up_on = latest["next_due_on"]
    registry.last_classification = classified or ""
    registry.save(
        update_fields=["last_follow_up_on", "next_follow_up_on", "last_classification", "updated_at"]
    )


def _refresh_rollup(registry: Registry, year: int) -> None:
    """Keep the per-year roll-up (``RegistryYear``, IND-1..IND-4) in this transaction (area E)."""
    rollup.refresh_registry_year(registry=registry, year=year)


@transaction.atomic
def record_follow_up(
    *,
    actor: Actor,
    patient_id: int,
    data: FollowUpData,
    diseases: list[str] | None = None,
    client_uuid: uuid.UUID | None = None,
    today: date | None = None,
    refresh_rollup: bool = True,
) -> list[FollowUp]:
    """Record one visit for the patient's active registries (or those in ``diseases``), each
    evaluated by ``rules.evaluate_visit`` (R3–R5); see the module docstring for the decisions.

    ``refresh_rollup=False`` is for a caller that records many visits in its own transaction and
    refreshes each (registry, year) roll-up once at the end (the bulk import); everyone else keeps
    the default, so the roll-up never lags the follow-ups.

    Refuses with the errors of ``chronic.errors``: READING_OUT_OF_RANGE (naming the field and its
    range), DIASTOLIC_NOT_BELOW_SYSTOLIC, GLUCOSE_UNIT_SUSPECT, DATE_IN_FUTURE,
    VISIT_BEFORE_ENROLMENT, READINGS_REQUIRED (a face-to-face visit without the disease's own
    measurement: BP for HTN, FPG or random glucose for T2DM), NOT_ENROLLED; NOT_FOUND for a patient
    outside the actor's scope.
    """
    today = today or timezone.localdate()
    params = referral_services.parameters()
    if diseases is not None:
        bad = [d for d in diseases if d not in Disease.values]
        if bad:
            raise InvalidInput(_("病种无效：%(value)s。") % {"value": str(bad[0])[:20]}, field="diseases")
        diseases = list(dict.fromkeys(diseases))
    patient = Patient.objects.select_related("home_org").filter(pk=patient_id).first()
    if patient is None or not _patient_visible(actor, patient):
        raise NotFound(field="patient_id")

    done = _existing(patient.pk, client_uuid)
    if done:
        return done
    validate_data(data, today=today)
    registries = _target_registries(actor, patient.pk, diseases, lock=True)
    # Re-read after the lock: a concurrent submission with the same key may have just committed.
    done = _existing(patient.pk, client_uuid)
    if done:
        return done
    found = {r.disease for r in registries}
    missing = [d for d in (diseases or []) if d not in found]
    if missing or not registries:
        raise NotEnrolled(
            _("该患者未在%(disease)s建档，或档案已结案。")
            % {"disease": Disease(missing[0]).label if missing else _("任何病种")},
            field="diseases",
        )
    face_to_face = data.mode in rules.FACE_TO_FACE
    for registry in registries:
        if data.visit_on < registry.registered_on:
            raise VisitBeforeEnrolment(
                _("随访日期早于%(disease)s建档日期（%(on)s）。")
                % {"disease": registry.get_disease_display(), "on": registry.registered_on.isoformat()},
                field="visit_on",
                disease=registry.disease,
            )
        if face_to_face and not _has_measurement(registry.disease, data):
            if registry.disease == Disease.HTN:
                raise ReadingsRequired(
                    _("高血压面对面随访必须填写血压。"), field="sbp", disease=registry.disease
                )
            raise ReadingsRequired(
                _("糖尿病面对面随访必须填写空腹血糖或随机血糖。"), field="fpg_mmol", disease=registry.disease
            )

    if data.visit_on < patient.birth_date:
        raise InvalidInput(_("随访日期早于患者出生日期，请核对。"), field="visit_on")
    age = rules.age_on(patient.birth_date, data.visit_on)
    sbp, dbp = evaluation_bp(data)
    symptoms = frozenset(data.symptoms)
    visit_key = uuid.uuid4()
    stored: list[FollowUp] = []
    try:
        with transaction.atomic():
            for registry in registries:
                evaluation = rules.evaluate_visit(
                    rules.VisitInput(
                        disease=registry.disease,
                        visit_on=data.visit_on,
                        mode=data.mode,
                        age=age,
                        sbp=sbp,
                        dbp=dbp,
                        fpg_mmol=data.fpg_mmol,
                        glucose_any_mmol=data.glucose_any_mmol,
                        heart_rate=data.heart_rate,
                        temperature_c=data.temperature_c,
                        symptoms=symptoms,
                        pregnant_or_lactating=data.pregnant_or_lactating,
                        unmanageable_other_disease=data.unmanageable_other_disease,
                        adr=data.adr,
                        adr_uncontrollable=data.adr_uncontrollable,
                        new_complication=data.new_complication,
                        complication_worsened=data.complication_worsened,
                    ),
                    _previous(registry, data.visit_on),
                    params,
                    current_plan=registry.next_follow_up_on,
                )
                org = _recording_org(actor, registry)
                follow_up = FollowUp.objects.create(
                    registry=registry,
                    patient=patient,
                    disease=registry.disease,
                    organisation=org,
                    visit_key=visit_key,
                    visit_on=data.visit_on,
                    mode=data.mode,
                    sbp=data.sbp,
                    dbp=data.dbp,
                    sbp2=data.sbp2,
                    dbp2=data.dbp2,
                    fpg_mmol=data.fpg_mmol,
                    glucose_any_mmol=data.glucose_any_mmol,
                    heart_rate=data.heart_rate,
                    temperature_c=data.temperature_c,
                    height_cm=data.height_cm,
                    weight_kg=data.weight_kg,
                    waist_cm=data.waist_cm,
                    symptoms=sorted(symptoms),
                    pregnant_or_lactating=data.pregnant_or_lactating,
                    unmanageable_other_disease=data.unmanageable_other_disease,
                    adr=data.adr,
                    adr_uncontrollable=data.adr_uncontrollable,
                    new_complication=data.new_complication,
                    complication_worsened=data.complication_worsened,
                    adherence=data.adherence,
                    medications=data.medications,
                    lifestyle=data.lifestyle,
                    note=data.note or "",
                    age_at_visit=age,
                    bp_at_target=evaluation.bp_at_target,
                    fpg_at_target=evaluation.fpg_at_target,
                    classification=evaluation.classification,
                    urgent=evaluation.urgent,
                    referral=evaluation.referral,
                    referral_reasons=list(evaluation.referral_reasons),
                    rules_fired=list(evaluation.rules_fired),
                    urgent_signs=list(evaluation.urgent_signs),
                    next_due_on=evaluation.next_due_on,
                    client_uuid=client_uuid,
                    recorded_by_id=actor.user_id,
                )
                # R7.2: this visit tracks the referrals opened before it; then R3.3/R5.3–R5.5 may open one.
                referral_services.mark_tracked_by_follow_up(
                    actor=actor, registry_id=registry.pk, visit_on=data.visit_on, follow_up_id=follow_up.pk
                )
                if evaluation.referral != FollowUp.Referral.NONE:
                    referral_services.open_referral(
                        actor=actor,
                        patient_id=patient.pk,
                        disease=registry.disease,
                        kind=evaluation.referral,
                        reasons=evaluation.referral_reasons,
                        rules_fired=evaluation.rules_fired,
                        from_org_id=org.pk,
                        opened_on=data.visit_on,
                        registry_id=registry.pk,
                        follow_up_id=follow_up.pk,
                    )
                _refresh_plan(registry)
                if refresh_rollup:
                    _refresh_rollup(registry, data.visit_on.year)
                audit.record(
                    actor,
                    "chronic.follow_up.record",
                    target=audit.Target("follow_up", follow_up.pk, patient.pk),
                    detail={
                        "disease": registry.disease,
                        "registry_id": registry.pk,
                        "visit_on": data.visit_on.isoformat(),
                        "mode": data.mode,
                        "classification": evaluation.classification,
                        "urgent": evaluation.urgent,
                        "referral": evaluation.referral,
                        "rules_fired": list(evaluation.rules_fired),
                    },
                )
                stored.append(follow_up)
    except IntegrityError:
        # Only a concurrent twin with the same client_uuid can get here past the lock (e.g. when
        # another registry row was enrolled meanwhile); its rows are the answer.
        done = _existing(patient.pk, client_uuid)
        if done:
            return done
        raise
    return stored
