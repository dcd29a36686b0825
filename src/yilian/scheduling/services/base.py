"""Shared pieces of the scheduling services: parameters, history rows, locks, permissions."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from yilian.common import audit, policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.community.models import Department
from yilian.patients.models import Patient
from yilian.scheduling import rules
from yilian.scheduling.models import (
    Appointment,
    AppointmentStatusHistory,
    BookingPolicy,
    ClinicSession,
    Slot,
    WaitlistEntry,
)

logger = logging.getLogger("yilian")


IDEMPOTENCY_KEY_MAX = 64
MAX_WINDOW_CAPACITY = 500
GUARDIAN_AGE = 14  # B-16

# Desk staff book on a patient's behalf (窗口/电话预约) with ``appointment.book``.
DESK_BOOKING_PERMISSION = policy.APPOINTMENT_BOOK
# Creating and stopping sessions (出诊排班, 停诊): ``schedule.manage`` (plus the session's own doctor
# for a stop).
SCHEDULE_PERMISSION = policy.SCHEDULE_MANAGE
# Visit states (签到 / 爽约 / 就诊完成) are set by the queueing app on behalf of the desk, kiosk and
# doctor: staff who may scan e-health cards at the hospital (card.scan), a patient for their own
# check-in, or the system.
VISIT_PERMISSION = policy.CARD_SCAN
# The periodic steps (no-shows, hold expiry, waitlist offers) act as the system.
SYSTEM = Actor(kind="system", label="system:scheduling")


@dataclass(frozen=True)
class Booking:
    """The result of ``book_appointment``: ``created`` is False for an idempotent replay."""

    appointment: Appointment
    created: bool


def parameters_for(department_id: int) -> rules.BookingParameters:
    """The §0 parameters for a department: its ``BookingPolicy`` row over ``rules.DEFAULTS``."""
    return _parameters_from(BookingPolicy.objects.filter(department_id=department_id).first())


def _parameters_of(department: Department) -> rules.BookingParameters:
    """As ``parameters_for``, from a department fetched with ``select_related("booking_policy")``."""
    try:
        row = department.booking_policy
    except BookingPolicy.DoesNotExist:
        row = None
    return _parameters_from(row)


def _parameters_from(row: BookingPolicy | None) -> rules.BookingParameters:
    if row is None:
        return rules.DEFAULTS
    return dataclasses.replace(
        rules.DEFAULTS,
        booking_window_days=row.booking_window_days,
        release_time=row.release_time,
        close_minutes_before_end=row.close_minutes_before_end,
        cancel_deadline_days_before=row.cancel_deadline_days_before,
        cancel_deadline_time=row.cancel_deadline_time,
        rerelease_delay_min_minutes=row.rerelease_delay_min_minutes,
        rerelease_delay_max_minutes=row.rerelease_delay_max_minutes,
        referral_reserved_ratio=float(row.referral_reserved_ratio),
        expert_referral_reserved_ratio=float(row.expert_referral_reserved_ratio),
        onsite_reserved_ratio=float(row.onsite_reserved_ratio),
        referral_lead_days=row.referral_lead_days,
        referral_return_hours=row.referral_return_hours,
    )


def _target(appointment: Appointment) -> audit.Target:
    return audit.Target("scheduling.Appointment", appointment.pk, appointment.patient_id)


def _history(
    appointment: Appointment, from_status: str, actor: Actor, at: datetime, reason: str = ""
) -> None:
    AppointmentStatusHistory.objects.create(
        appointment=appointment,
        from_status=from_status,
        to_status=appointment.status,
        at=at,
        by_id=actor.user_id,
        reason=reason[:200],
    )


def _may_manage_schedule(actor: Actor, department: Department) -> bool:
    return actor.is_staff_member and policy.covers(actor, SCHEDULE_PERMISSION, department.organisation.path)


def _lock_patient(patient_id: int) -> Patient | None:
    """Serialises one patient's bookings (B-5, B-6 checks); one patient's row is never hot."""
    return (
        Patient.objects.select_for_update()
        .filter(pk=patient_id, status=Patient.Status.ACTIVE)
        .only("id", "birth_date", "realname_verified", "status")
        .first()
    )


def _session_with_policy(session_id: int) -> ClinicSession | None:
    return (
        ClinicSession.objects.select_related("department__organisation", "department__booking_policy")
        .filter(pk=session_id)
        .first()
    )


def _visible_appointment_for_update(actor: Actor, appointment_id: int) -> Appointment:
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("session", "department__organisation")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        raise NotFound()
    if actor.kind == "patient":
        if appointment.patient_id not in actor.managed_patient_ids:
            raise NotFound()
    elif not (
        actor.is_staff_member
        and policy.covers(actor, DESK_BOOKING_PERMISSION, appointment.department.organisation.path)
    ):
        raise NotFound()
    return appointment


def _session_has_waiting(session_id: int) -> bool:
    return WaitlistEntry.objects.filter(session_id=session_id, status=WaitlistEntry.Status.WAITING).exists()


def _free_slot(slot_id: int, session_id: int, params: rules.BookingParameters, now: datetime) -> datetime:
    """B-9: back to the pool after the random delay; first to the waitlist if there is one (B-20)."""
    available_from = now + rules.rerelease_delay(params)
    Slot.objects.filter(pk=slot_id).update(
        status=Slot.Status.FREE, available_from=available_from, for_waitlist=_session_has_waiting(session_id)
    )
    return available_from


def _schedule(task_name: str, run_after: datetime) -> None:
    """Enqueue a periodic step at ``run_after`` if the task backend can defer; the
    ``scheduling_tick`` command, run every minute, is the safety net either way."""
    from yilian.scheduling import tasks

    job = getattr(tasks, task_name)
    if not job.get_backend().supports_defer:
        return
    job.using(run_after=run_after).enqueue()


def _skip_locked() -> dict:
    return {"skip_locked": True} if connection.features.has_select_for_update_skip_locked else {}
