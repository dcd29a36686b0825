"""Writes on disease registries (专病档案): enrolment, closing, transfer.

Rules (../shared/docs/rules/chronic.md): §1 ``Registry`` (one per resident per disease; closed only
for death, moving out or a revoked diagnosis — 失访 is derived, never stored, R7.3), R2.1 (enrolment
creates the registry), R1.2 (a confirmed screening case enrols). State changes follow
``rules.REGISTRY_TRANSITIONS`` and leave an append-only ``RegistryStatusHistory`` row and an audit row
in the same transaction.

Refusals are audited by the API / page error handlers, outside this transaction (a refusal row
written here would be rolled back with it).

Scope: the actor must hold ``CHRONIC_MANAGE`` over the patient's home organisation *and* over the
registry's managing organisation; a patient or registry outside that scope is "not found" (the same
answer as a missing one, so ids cannot be probed).

Closing a registry closes nothing else: the patient's other registries, open referrals and
screening cases stay as they are (a death reported on the HTN registry does not silently end the
T2DM one — the caller closes each registry it means to close, e.g. the call list's "died").
"""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.errors import AlreadyEnrolled, DateInFuture, InvalidTransition, RegistryClosed
from yilian.chronic.models import Disease, Registry, RegistryStatusHistory, ScreeningCase
from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.community.models import Organisation, Staff
from yilian.patients.models import Patient


class OrganisationNotInScope(InvalidInput):
    """The managing organisation is unknown or outside the organisations the actor manages."""

    code = "ORGANISATION_NOT_IN_SCOPE"
    status = 422
    default_message = _("管理机构不存在，或不在您负责的机构范围内。")


class DoctorNotEligible(InvalidInput):
    """The responsible doctor must be active staff of the managing organisation or one above it."""

    code = "RESPONSIBLE_DOCTOR_INVALID"
    status = 422
    default_message = _("责任医生不存在、已离职，或不属于管理机构及其上级机构。")


class ScreeningCaseInvalid(InvalidInput):
    code = "SCREENING_CASE_INVALID"
    status = 422
    default_message = _("筛查病例不存在，或不属于该患者和病种，或已确诊/排除。")


def _today() -> date:
    return timezone.localdate()


def _covers(actor: Actor, org: Organisation) -> bool:
    return policy.covers(actor, policy.CHRONIC_MANAGE, org.path)


def _patient_in_scope(actor: Actor, patient_id: int) -> Patient:
    """The patient, if real, active and within the actor's CHRONIC_MANAGE scope; else ``NotFound``."""
    patient = Patient.objects.select_related("home_org").filter(pk=patient_id).first()
    if patient is None or patient.status != Patient.Status.ACTIVE:
        raise NotFound(field="patient_id")
    if not _covers(actor, patient.home_org):
        raise NotFound(field="patient_id")
    return patient


def _org_in_scope(actor: Actor, org_id: int, field: str) -> Organisation:
    org = Organisation.objects.filter(pk=org_id, status=Organisation.Status.ACTIVE).first()
    if org is None or not _covers(actor, org):
        raise OrganisationNotInScope(field=field)
    return org


def _doctor_for(doctor_id: int | None, managing_org: Organisation, field: str) -> Staff | None:
    """A responsible doctor works at the managing organisation or one above it on its path (a
    township doctor may be responsible for a village's patients)."""
    if doctor_id is None:
        return None
    doctor = Staff.objects.select_related("organisation").filter(pk=doctor_id, is_active=True).first()
    if doctor is None or not managing_org.path.startswith(doctor.organisation.path):
        raise DoctorNotEligible(field=field)
    return doctor


def _locked_registry(actor: Actor, registry_id: int) -> Registry:
    registry = (
        Registry.objects.select_for_update(of=("self",))
        .select_related("managing_org", "patient")
        .filter(pk=registry_id)
        .first()
    )
    if registry is None or not _covers(actor, registry.managing_org):
        raise NotFound(field="registry_id")
    return registry


def _history(registry: Registry, actor: Actor, from_status: str, to_status: str, reason: str) -> None:
    RegistryStatusHistory.objects.create(
        registry=registry,
        from_status=from_status,
        to_status=to_status,
        at=timezone.now(),
        by_id=actor.user_id,
        reason=reason[:200],
    )


def _check_transition(current: str, new: str) -> None:
    if new not in rules.REGISTRY_TRANSITIONS.get(current, frozenset()):
        if current == Registry.Status.CLOSED:
            raise RegistryClosed()
        raise InvalidTransition(field="status", current=current, requested=new)


@transaction.atomic
def enrol(
    *,
    actor: Actor,
    patient_id: int,
    disease: str,
    registered_on: date,
    diagnosed_on: date,
    diagnosis_source: str,
    managing_org_id: int,
    responsible_doctor_id: int | None = None,
    reminder_consent: bool = False,
    prior_cvd: bool = False,
    screening_case_id: int | None = None,
    today: date | None = None,
) -> Registry:
    """Enrol a patient in a disease registry (建档, R2.1; a confirmed screening case, R1.2).

    Refuses: a patient not found in scope; a managing organisation outside scope; a second active
    registry of the same disease (``AlreadyEnrolled``, also enforced by the partial unique index
    ``registry_one_active_per_disease`` against a concurrent enrolment); a registration date in the
    future or before the diagnosis date; a screening case that is not this patient's open case of
    this disease (it is marked confirmed and linked to the new registry).
    """
    today = today or _today()
    if disease not in Disease.values:
        raise InvalidInput(_("病种无效：%(value)s。") % {"value": disease}, field="disease")
    if diagnosis_source not in Registry.DiagnosisSource.values:
        raise InvalidInput(_("确诊来源无效。"), field="diagnosis_source")
    if registered_on > today:
        raise DateInFuture(_("建档日期不能晚于今天。"), field="registered_on")
    if diagnosed_on > registered_on:
        raise InvalidInput(_("确诊日期不能晚于建档日期。"), field="diagnosed_on")
    patient = _patient_in_scope(actor, patient_id)
    if diagnosed_on < patient.birth_date:
        raise InvalidInput(_("确诊日期早于患者出生日期，请核对。"), field="diagnosed_on")
    managing_org = _org_in_scope(actor, managing_org_id, "managing_org_id")
    doctor = _doctor_for(responsible_doctor_id, managing_org, "responsible_doctor_id")

    case = None
    if screening_case_id is not None:
        case = ScreeningCase.objects.select_for_update().filter(pk=screening_case_id).first()
        if (
            case is None
            or case.patient_id != patient.pk
            or case.disease != disease
            or ScreeningCase.Status.CONFIRMED
            not in rules.SCREENING_CASE_TRANSITIONS.get(case.status, frozenset())
        ):
            raise ScreeningCaseInvalid(field="screening_case_id")

    if Registry.objects.filter(patient=patient, disease=disease, status=Registry.Status.ACTIVE).exists():
        raise AlreadyEnrolled(field="disease")
    try:
        with transaction.atomic():
            registry = Registry.objects.create(
                patient=patient,
                disease=disease,
                registered_on=registered_on,
                diagnosed_on=diagnosed_on,
                diagnosis_source=diagnosis_source,
                managing_org=managing_org,
                responsible_doctor=doctor,
                reminder_consent=reminder_consent,
                prior_cvd=prior_cvd,
                created_by_id=actor.user_id,
            )
    except IntegrityError as exc:  # a concurrent enrolment won the partial unique index
        raise AlreadyEnrolled(field="disease") from exc

    if case is not None:
        case.status = ScreeningCase.Status.CONFIRMED
        case.registry = registry
        case.closed_on = registered_on
        case.save(update_fields=["status", "registry", "closed_on", "updated_at"])
    _history(registry, actor, "", Registry.Status.ACTIVE, "enrol")
    audit.record(
        actor,
        "chronic.registry.enrol",
        target=audit.Target("registry", registry.pk, patient.pk),
        detail={
            "disease": disease,
            "managing_org_id": managing_org.pk,
            "registered_on": registered_on.isoformat(),
            "screening_case_id": screening_case_id,
        },
    )
    return registry


@transaction.atomic
def close_registry(
    *, actor: Actor, registry_id: int, closed_on: date, reason: str, note: str = "", today: date | None = None
) -> Registry:
    """Close a registry (结案) for death, moving out or a revoked diagnosis (§1; never for 失访, R7.3).

    ``closed_on`` may not be in the future nor before ``registered_on``. Only this registry changes
    (see the module docstring).
    """
    today = today or _today()
    if reason not in Registry.CloseReason.values:
        raise InvalidInput(_("结案原因无效：只能是死亡、迁出或排除诊断。"), field="reason")
    if closed_on > today:
        raise DateInFuture(_("结案日期不能晚于今天。"), field="closed_on")
    registry = _locked_registry(actor, registry_id)
    _check_transition(registry.status, Registry.Status.CLOSED)
    if closed_on < registry.registered_on:
        raise InvalidInput(_("结案日期不能早于建档日期。"), field="closed_on")
    registry.status = Registry.Status.CLOSED
    registry.closed_on = closed_on
    registry.close_reason = reason
    registry.save(update_fields=["status", "closed_on", "close_reason", "updated_at"])
    _history(registry, actor, Registry.Status.ACTIVE, Registry.Status.CLOSED, f"{reason} {note}".strip())
    audit.record(
        actor,
        "chronic.registry.close",
        target=audit.Target("registry", registry.pk, registry.patient_id),
        reason=note,
        detail={"close_reason": reason, "closed_on": closed_on.isoformat()},
    )
    return registry


@transaction.atomic
def transfer_registry(
    *,
    actor: Actor,
    registry_id: int,
    managing_org_id: int | None = None,
    responsible_doctor_id: int | None = None,
    clear_doctor: bool = False,
    reason: str = "",
) -> Registry:
    """Hand an active registry to another managing organisation and/or responsible doctor (转管).

    The actor must manage both the current and the new organisation. Moving to another
    organisation without naming a doctor leaves no responsible doctor unless the current one also
    works above the new organisation. The plan (next due date) is kept.
    """
    registry = _locked_registry(actor, registry_id)
    if registry.status != Registry.Status.ACTIVE:
        raise RegistryClosed()
    if managing_org_id is None and responsible_doctor_id is None and not clear_doctor:
        raise InvalidInput(_("请指定新的管理机构或责任医生。"), field="managing_org_id")
    before = {
        "managing_org_id": registry.managing_org_id,
        "responsible_doctor_id": registry.responsible_doctor_id,
    }
    org = registry.managing_org
    if managing_org_id is not None and managing_org_id != registry.managing_org_id:
        org = _org_in_scope(actor, managing_org_id, "managing_org_id")
    if responsible_doctor_id is not None:
        doctor = _doctor_for(responsible_doctor_id, org, "responsible_doctor_id")
    elif clear_doctor:
        doctor = None
    else:
        doctor = registry.responsible_doctor
        if doctor is not None and not org.path.startswith(doctor.organisation.path):
            doctor = None
    registry.managing_org = org
    registry.responsible_doctor = doctor
    registry.save(update_fields=["managing_org", "responsible_doctor", "updated_at"])
    after = {"managing_org_id": org.pk, "responsible_doctor_id": doctor.pk if doctor else None}
    _history(
        registry,
        actor,
        registry.status,
        registry.status,
        f"transfer org {before['managing_org_id']}->{org.pk} doctor "
        f"{before['responsible_doctor_id']}->{after['responsible_doctor_id']} {reason}".strip(),
    )
    audit.record(
        actor,
        "chronic.registry.transfer",
        target=audit.Target("registry", registry.pk, registry.patient_id),
        reason=reason,
        detail={"before": before, "after": after},
    )
    return registry
