"""Visit states after booking: check-in, no-shows, fulfilment (access.md B-11..B-13, §8 F-Appointment)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.scheduling import errors, rules
from yilian.scheduling.models import Appointment
from yilian.scheduling.services.base import (
    VISIT_PERMISSION,
    _history,
    _may_manage_schedule,
    _target,
)

logger = logging.getLogger("yilian")


@transaction.atomic
def mark_no_shows(*, actor: Actor, now: datetime | None = None) -> list[int]:
    """B-11: every BOOKED appointment of a session that ended (SIGNIN_CLOSE = session end) without a
    sign-in becomes NO_SHOW; an ARRIVED one never does (the patient signed in; a queue void after
    missed calls goes through ``mark_no_show``). Returns the patients whose booking this suspends (B-12); the
    suspension itself is computed from the no-show history at booking time, so that an admin
    correction (B-13) lifts it without a second source of truth."""
    now = now or timezone.now()
    due = list(
        Appointment.objects.select_for_update(
            skip_locked=connection.features.has_select_for_update_skip_locked
        )
        .filter(status=Appointment.Status.BOOKED, session__ends_at__lte=now)
        .order_by("id")[:5000]
    )
    patients: set[int] = set()
    for appointment in due:
        appointment.status = Appointment.Status.NO_SHOW
        appointment.save(update_fields=["status"])
        _history(appointment, rules.BOOKED, actor, now, "B-11")
        audit.record(actor, "scheduling.no_show", target=_target(appointment))
        patients.add(appointment.patient_id)
    suspended: list[int] = []
    for patient_id in sorted(patients):
        if _note_suspension(actor, patient_id, now) is not None:
            suspended.append(patient_id)
    return suspended


def suspension_of(*, patient_id: int, now: datetime | None = None) -> datetime | None:
    """B-12 + B-14 for one patient (read-only): when their booking suspension ends, or ``None``."""
    now = now or timezone.now()
    params = rules.DEFAULTS
    rows = Appointment.objects.filter(patient_id=patient_id).filter(
        Q(status=rules.NO_SHOW, service_date__gte=timezone.localdate(now) - timedelta(days=730))
        | Q(
            status=rules.CANCELLED,
            cancel_reason=rules.REASON_PATIENT,
            cancelled_at__gte=now - timedelta(days=60),
        )
    )
    no_shows = [r.service_date for r in rows if r.status == rules.NO_SHOW]
    cancels = [r.cancelled_at for r in rows if r.status == rules.CANCELLED and r.cancelled_at]
    return rules.suspended_until(now, no_shows, cancels, params)


@transaction.atomic
def correct_no_show(
    *, actor: Actor, appointment_id: int, reason: str, now: datetime | None = None
) -> Appointment:
    """B-13: an admin correction NO_SHOW → ENTERED_IN_ERROR, with an audited reason; the suspension
    is recomputed from the remaining no-shows at the next booking."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise InvalidInput(_("请填写更正原因（不超过200字）。"), field="reason")
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("department__organisation")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None or not _may_manage_schedule(actor, appointment.department):
        raise NotFound()
    if (
        not rules.can_transition(appointment.status, rules.ENTERED_IN_ERROR)
        or appointment.status != rules.NO_SHOW
    ):
        raise errors.InvalidTransition()
    appointment.status = Appointment.Status.ENTERED_IN_ERROR
    appointment.save(update_fields=["status"])
    _history(appointment, rules.NO_SHOW, actor, now, reason)
    audit.record(actor, "scheduling.no_show_corrected", target=_target(appointment), reason=reason)
    return appointment


def _visit_for_update(actor: Actor, appointment_id: int, *, patient_may: bool = False) -> Appointment:
    """The appointment, locked, if ``actor`` may change its visit state: the system, staff with
    ``VISIT_PERMISSION`` over the department's organisation, or (check-in only) the patient's own
    account. Forbidden and missing look alike (NotFound)."""
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("department__organisation")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        raise NotFound()
    if actor.kind == "system":
        return appointment
    if actor.kind == "patient":
        if patient_may and appointment.patient_id in actor.managed_patient_ids:
            return appointment
        raise NotFound()
    if actor.is_staff_member and policy.covers(
        actor, VISIT_PERMISSION, appointment.department.organisation.path
    ):
        return appointment
    raise NotFound()


def _move(appointment: Appointment, to: str, actor: Actor, now: datetime, reason: str = "") -> None:
    """§8 F-Appointment: one transition of ``rules.TRANSITIONS``, with its history row."""
    previous = appointment.status
    if not rules.can_transition(previous, to):
        raise errors.InvalidTransition()
    appointment.status = to
    appointment.save(update_fields=["status", "cancel_reason"])
    _history(appointment, previous, actor, now, reason)


def _note_suspension(actor: Actor, patient_id: int, now: datetime) -> datetime | None:
    """B-12: after a no-show, re-evaluate the patient's suspension and audit it when in force. The
    suspension itself is always computed from the history (B-13 corrections lift it)."""
    until = suspension_of(patient_id=patient_id, now=now)
    if until is not None:
        audit.record(
            actor,
            "scheduling.booking_suspended",
            target=audit.Target("patients.Patient", patient_id, patient_id),
            detail={"until": until.isoformat()},
        )
    return until


@transaction.atomic
def mark_arrived(*, actor: Actor, appointment_id: int, now: datetime | None = None) -> Appointment:
    """Check-in (签到): BOOKED → ARRIVED (§8 F-Appointment ``arrived``). Called by the queueing app
    when the patient signs in at a kiosk, the desk or on their phone. Repeating it is a no-op."""
    now = now or timezone.now()
    appointment = _visit_for_update(actor, appointment_id, patient_may=True)
    if appointment.status == Appointment.Status.ARRIVED:
        return appointment
    _move(appointment, rules.ARRIVED, actor, now, "check-in")
    audit.record(actor, "scheduling.arrived", target=_target(appointment))
    return appointment


@transaction.atomic
def mark_no_show(
    *, actor: Actor, appointment_id: int, now: datetime | None = None, reason: str = ""
) -> Appointment:
    """爽约: BOOKED or ARRIVED → NO_SHOW. B-11 (no sign-in by session end) or, with ``reason``
    ``oth-missed-call``, a queue void after missed calls (access.md Q-8, Q-9), which keeps that
    reason code. Every no-show counts towards the B-12 suspension, re-evaluated here. Repeating it is
    a no-op."""
    now = now or timezone.now()
    reason = (reason or "").strip()[:200]
    appointment = _visit_for_update(actor, appointment_id)
    if appointment.status == Appointment.Status.NO_SHOW:
        return appointment
    if appointment.status not in (Appointment.Status.BOOKED, Appointment.Status.ARRIVED):
        raise errors.InvalidTransition()
    appointment.cancel_reason = rules.REASON_MISSED_CALL if reason == rules.REASON_MISSED_CALL else ""
    _move(appointment, rules.NO_SHOW, actor, now, reason or "B-11")
    audit.record(
        actor, "scheduling.no_show", target=_target(appointment), detail={"reason": reason or "B-11"}
    )
    _note_suspension(actor, appointment.patient_id, now)
    return appointment


@transaction.atomic
def mark_fulfilled(*, actor: Actor, appointment_id: int, now: datetime | None = None) -> Appointment:
    """就诊完成: ARRIVED → FULFILLED (§8 F-Appointment ``fulfilled``), when the doctor finishes the
    visit on the queue screen. A BOOKED appointment (seen without a recorded check-in) goes through
    ARRIVED first, both steps in the graph and in the history. Repeating it is a no-op."""
    now = now or timezone.now()
    appointment = _visit_for_update(actor, appointment_id)
    if appointment.status == Appointment.Status.FULFILLED:
        return appointment
    if appointment.status == Appointment.Status.BOOKED:
        _move(appointment, rules.ARRIVED, actor, now, "seen without check-in")
    _move(appointment, rules.FULFILLED, actor, now, "visit finished")
    audit.record(actor, "scheduling.fulfilled", target=_target(appointment))
    return appointment
