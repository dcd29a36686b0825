"""Shared by the exam services: who may act for a patient, the §2 parameters, the rule data of
exam types (E-4), cancelling an appointment (its place back to the pool) and whom to notify."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.conf import settings

from yilian.common import audit, policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.exams import errors, rules
from yilian.exams.models import (
    ExamAppointment,
    ExamAppointmentHistory,
    ExamSlot,
    ExamType,
)
from yilian.patients import selectors as patient_selectors
from yilian.patients.models import FamilyLink, Patient

logger = logging.getLogger("yilian")

# Who may: order exams (doctors, village doctors, integrating systems), book them for a patient at
# the centre's desk, and manage the resources' calendars — each over the patient's or resource's
# organisation subtree (common.policy).
ORDER_PERMISSION = policy.EXAM_ORDER
DESK_PERMISSION = policy.EXAM_BOOK
CALENDAR_MANAGE_PERMISSION = policy.EXAM_MANAGE


def parameters() -> rules.ExamParameters:
    """The §2 parameters: ``YILIAN_EXAM_SITE_GAP_MINUTES`` may override the E-3 gap."""
    gap = getattr(settings, "YILIAN_EXAM_SITE_GAP_MINUTES", rules.DEFAULTS.site_gap_minutes)
    return rules.ExamParameters(site_gap_minutes=int(gap))


def _target(appointment: ExamAppointment) -> audit.Target:
    return audit.Target("exams.ExamAppointment", appointment.pk, appointment.patient_id)


def _history(
    appointment: ExamAppointment, from_status: str, actor: Actor, at: datetime, reason: str = ""
) -> None:
    ExamAppointmentHistory.objects.create(
        appointment=appointment,
        from_status=from_status,
        to_status=appointment.status,
        at=at,
        by_id=actor.user_id,
        reason=reason[:200],
    )


def access_patient(actor: Actor, patient_id: int, *, purpose: str = "exams") -> Patient:
    """A patient account reaches the patients it manages; staff and systems go through the patients
    gate (``DESK_PERMISSION`` over the home organisation, audited). Forbidden and missing look alike."""
    if actor.kind == "patient":
        if patient_id not in actor.managed_patient_ids:
            raise NotFound()
        patient = Patient.objects.filter(pk=patient_id, status=Patient.Status.ACTIVE).first()
        if patient is None:
            raise NotFound()
        return patient
    if not actor.is_staff_member:
        raise NotFound()
    return patient_selectors.access_patient(actor, patient_id, purpose=purpose)


def specs_for(exam_types) -> dict[int, rules.ExamSpec]:
    """Rule data of exam types (E-4), with the ``must_precede`` codes in one query."""
    ids = [t.pk for t in exam_types]
    precede: dict[int, set[str]] = defaultdict(set)
    through = ExamType.must_precede.through
    for row in through.objects.filter(from_examtype_id__in=ids).values(
        "from_examtype_id", "to_examtype__code"
    ):
        precede[row["from_examtype_id"]].add(row["to_examtype__code"])
    return {t.pk: t.spec(frozenset(precede[t.pk])) for t in exam_types}


def check_may_book_for(actor: Actor, patient: Patient) -> None:
    """A patient account books the patients it manages; staff at the centre need ``DESK_PERMISSION``
    over the patient's home organisation. Forbidden looks like missing."""
    if actor.kind == "patient":
        if patient.pk not in actor.managed_patient_ids:
            raise NotFound()
        return
    if not (actor.is_staff_member and policy.covers(actor, DESK_PERMISSION, patient.home_org.path)):
        raise NotFound()


def _cancel(
    appointment: ExamAppointment, *, actor: Actor, reason_code: str, reason: str, now: datetime
) -> None:
    before = appointment.status
    if not rules.can_transition(rules.APPOINTMENT_TRANSITIONS, before, rules.CANCELLED):
        raise errors.InvalidTransition()
    appointment.status = rules.CANCELLED
    appointment.cancel_reason = reason_code
    appointment.cancelled_at = now
    appointment.save(update_fields=["status", "cancel_reason", "cancelled_at"])
    ExamSlot.objects.filter(pk=appointment.slot_id, status=rules.SLOT_BOOKED).update(status=rules.SLOT_FREE)
    _history(appointment, before, actor, now, reason)
    audit.record(
        actor,
        "exams.appointment_cancel",
        target=_target(appointment),
        reason=reason,
        detail={"code": reason_code},
    )


def _recipient(patient: Patient, actor: Actor):
    """The account to tell: the booking patient account, else the patient's own (self) account."""
    from yilian.accounts.models import User

    if actor.kind == "patient" and actor.user_id:
        return User.objects.filter(pk=actor.user_id).first(), None
    link = (
        FamilyLink.objects.filter(patient=patient, relationship=FamilyLink.Relationship.SELF)
        .select_related("account__user")
        .first()
    )
    if link is None:
        return None, None
    return link.account.user, link.account.phone
