"""Factories for chronic-disease tests (any area may import them).

They write rows directly (no services, no audit), so that a test sets up exactly the history it
needs; use the services themselves when the behaviour under test is the writing.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from decimal import Decimal

from tests import factories as f
from yilian.chronic.models import FollowUp, Referral, Registry
from yilian.community.models import Organisation, Staff
from yilian.patients.models import Patient

_seq = itertools.count(1)


def make_chronic_patient(
    org: Organisation,
    *,
    name: str = "李建国",
    birth: date = date(1958, 3, 14),
    sex: str = "M",
    phone: str = "",
) -> Patient:
    """A patient of ``org`` old enough for the HTN/T2DM programmes (R2.1: aged ≥35)."""
    return f.make_patient(org, name=name, birth=birth, sex=sex, phone=phone)


def make_registry(
    *,
    patient: Patient | None = None,
    org: Organisation | None = None,
    disease: str = "htn",
    registered_on: date = date(2025, 1, 10),
    diagnosed_on: date | None = None,
    diagnosis_source: str = Registry.DiagnosisSource.COUNTY_HOSPITAL,
    responsible_doctor: Staff | None = None,
    status: str = Registry.Status.ACTIVE,
    closed_on: date | None = None,
    close_reason: str = "",
    next_follow_up_on: date | None = None,
    last_follow_up_on: date | None = None,
    last_classification: str = "",
    reminder_consent: bool = False,
    high_risk: bool = False,
    prior_cvd: bool = False,
) -> Registry:
    """An active (or, with ``closed_on``/``close_reason``, closed) registry of ``patient`` at ``org``.

    ``org`` defaults to the patient's home organisation; one of the two is required.
    """
    if patient is None:
        if org is None:
            raise ValueError("make_registry needs a patient or an org")
        patient = make_chronic_patient(org)
    org = org or patient.home_org
    if closed_on or close_reason:
        status = Registry.Status.CLOSED
        closed_on = closed_on or registered_on
        close_reason = close_reason or Registry.CloseReason.MOVED_OUT
    return Registry.objects.create(
        patient=patient,
        disease=disease,
        status=status,
        registered_on=registered_on,
        diagnosed_on=diagnosed_on or registered_on,
        diagnosis_source=diagnosis_source,
        managing_org=org,
        responsible_doctor=responsible_doctor,
        closed_on=closed_on,
        close_reason=close_reason,
        next_follow_up_on=next_follow_up_on,
        last_follow_up_on=last_follow_up_on,
        last_classification=last_classification,
        reminder_consent=reminder_consent,
        high_risk=high_risk,
        prior_cvd=prior_cvd,
    )


def make_follow_up(
    registry: Registry,
    *,
    visit_on: date,
    mode: str = FollowUp.Mode.CLINIC,
    sbp: int | None = None,
    dbp: int | None = None,
    fpg_mmol: Decimal | str | None = None,
    glucose_any_mmol: Decimal | str | None = None,
    bp_at_target: bool | None = None,
    fpg_at_target: bool | None = None,
    classification: str = "",
    urgent: bool = False,
    referral: str = FollowUp.Referral.NONE,
    referral_reasons: list[str] | None = None,
    rules_fired: list[str] | None = None,
    next_due_on: date | None = None,
    age_at_visit: int | None = None,
    organisation: Organisation | None = None,
    update_registry: bool = True,
) -> FollowUp:
    """A stored follow-up with the evaluation given (not computed); ``bp_at_target`` defaults to
    "<140/90" when a BP is given, ``fpg_at_target`` to "<7.0" when an FPG is given.

    With ``update_registry`` the registry's plan columns take this visit when it is the latest.
    """
    if fpg_mmol is not None:
        fpg_mmol = Decimal(str(fpg_mmol))
    if glucose_any_mmol is not None:
        glucose_any_mmol = Decimal(str(glucose_any_mmol))
    face_to_face = mode in (FollowUp.Mode.CLINIC, FollowUp.Mode.HOME)
    if bp_at_target is None and face_to_face and sbp is not None and dbp is not None:
        bp_at_target = sbp < 140 and dbp < 90
    if fpg_at_target is None and face_to_face and fpg_mmol is not None:
        fpg_at_target = fpg_mmol < Decimal("7.0")
    if not classification and face_to_face:
        at_target = bp_at_target if registry.disease == "htn" else fpg_at_target
        if at_target is not None:
            classification = "satisfied" if at_target else "unsatisfied"
    next_due_on = next_due_on or visit_on + timedelta(days=90 if classification != "unsatisfied" else 14)
    if age_at_visit is None:
        b = registry.patient.birth_date
        age_at_visit = visit_on.year - b.year - ((visit_on.month, visit_on.day) < (b.month, b.day))
    follow_up = FollowUp.objects.create(
        registry=registry,
        patient=registry.patient,
        disease=registry.disease,
        organisation=organisation or registry.managing_org,
        visit_key=uuid.uuid4(),
        visit_on=visit_on,
        mode=mode,
        sbp=sbp,
        dbp=dbp,
        fpg_mmol=fpg_mmol,
        glucose_any_mmol=glucose_any_mmol,
        age_at_visit=age_at_visit,
        bp_at_target=bp_at_target,
        fpg_at_target=fpg_at_target,
        classification=classification,
        urgent=urgent,
        referral=referral,
        referral_reasons=referral_reasons or [],
        rules_fired=rules_fired or [],
        next_due_on=next_due_on,
    )
    if update_registry and (registry.last_follow_up_on is None or visit_on >= registry.last_follow_up_on):
        registry.last_follow_up_on = visit_on
        registry.next_follow_up_on = next_due_on
        registry.last_classification = classification
        registry.save(update_fields=["last_follow_up_on", "next_follow_up_on", "last_classification"])
    return follow_up


def make_referral(
    registry: Registry,
    *,
    opened_on: date,
    kind: str = Referral.Kind.ROUTINE,
    reasons: list[str] | None = None,
    to_org: Organisation | None = None,
    tracking_days: int = 14,
    follow_up: FollowUp | None = None,
    status: str = Referral.Status.OPEN,
) -> Referral:
    """An open referral of ``registry`` up to the parent organisation (or ``to_org``)."""
    from_org = registry.managing_org
    return Referral.objects.create(
        patient=registry.patient,
        disease=registry.disease,
        registry=registry,
        follow_up=follow_up,
        kind=kind,
        reasons=reasons or ["two_consecutive_unsatisfied"],
        from_org=from_org,
        to_org=to_org or from_org.parent or from_org,
        status=status,
        opened_on=opened_on,
        tracking_due_on=opened_on + timedelta(days=tracking_days),
    )


def next_number() -> int:
    return next(_seq)
