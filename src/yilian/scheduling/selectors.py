"""Reads of scheduling: public availability (号源余量) and appointments through access gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from yilian.common import policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.scheduling import rules
from yilian.scheduling.models import Appointment, ClinicSession, Slot
from yilian.scheduling.services import DESK_BOOKING_PERMISSION, parameters_for


@dataclass
class WindowAvailability:
    starts_at: datetime
    ends_at: datetime
    free: int


@dataclass
class SessionAvailability:
    session: ClinicSession
    released: bool
    closed: bool
    free: int = 0
    windows: list[WindowAvailability] = field(default_factory=list)


def available_sessions(
    *, department_id: int, service_date: date, now: datetime | None = None
) -> list[SessionAvailability]:
    """Sessions of a department on a date with their bookable public numbers per time segment
    (B-19), counted in one aggregate query. Reserved referral and on-site numbers are not shown
    (B-17), nor numbers in their re-release delay (B-9)."""
    now = now or timezone.now()
    params = parameters_for(department_id)
    sessions = list(
        ClinicSession.objects.filter(department_id=department_id, service_date=service_date)
        .select_related("doctor", "department")
        .order_by("starts_at", "doctor__name", "id")
    )
    if not sessions:
        return []
    by_id = {
        s.pk: SessionAvailability(
            session=s,
            released=now >= s.release_at,
            closed=now >= rules.close_at(s.ends_at, params) or s.status != ClinicSession.Status.OPEN,
        )
        for s in sessions
    }
    returned = [s.pk for s in sessions if now >= rules.referral_returns_at(s.starts_at, params)]
    counts = (
        Slot.objects.filter(session_id__in=list(by_id), status=Slot.Status.FREE, for_waitlist=False)
        .filter(Q(pool=Slot.Pool.PUBLIC) | Q(pool=Slot.Pool.REFERRAL, session_id__in=returned))
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .values("session_id", "starts_at", "ends_at")
        .annotate(free=Count("id"))
        .order_by("session_id", "starts_at")
    )
    for row in counts:
        entry = by_id[row["session_id"]]
        if entry.session.status != ClinicSession.Status.OPEN:
            continue
        entry.windows.append(WindowAvailability(row["starts_at"], row["ends_at"], row["free"]))
        entry.free += row["free"]
    return list(by_id.values())


def appointments_visible_to(actor: Actor) -> QuerySet[Appointment]:
    """A patient account sees its managed patients' appointments; desk staff those of their
    organisations' departments; everyone else nothing."""
    qs = Appointment.objects.select_related("session__doctor", "department", "slot", "patient")
    if actor.kind == "patient":
        return qs.filter(patient_id__in=actor.managed_patient_ids)
    if actor.is_staff_member:
        paths = policy.scope_paths(actor, DESK_BOOKING_PERMISSION)
        if not paths:
            return qs.none()
        scope = Q()
        for path in paths:
            scope |= Q(department__organisation__path__startswith=path)
        return qs.filter(scope)
    return qs.none()


def access_appointment(actor: Actor, appointment_id: int) -> Appointment:
    """The gate: forbidden and missing look alike."""
    appointment = appointments_visible_to(actor).filter(pk=appointment_id).first()
    if appointment is None:
        raise NotFound()
    return appointment


def waitlist_position(entry) -> int:
    """1-based place among the session's waiting entries (0 once the entry no longer waits)."""
    from yilian.scheduling.models import WaitlistEntry

    if entry.status != WaitlistEntry.Status.WAITING:
        return 0
    return (
        WaitlistEntry.objects.filter(session_id=entry.session_id, status=WaitlistEntry.Status.WAITING)
        .filter(Q(created_at__lt=entry.created_at) | Q(created_at=entry.created_at, id__lte=entry.id))
        .count()
    )
