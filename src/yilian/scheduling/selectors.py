"""Reads of scheduling: public availability (号源余量) and appointments through access gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

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


# --- Pages: the patient's phone and the schedule office ---------------------------------------------

BOOKING_DAYS_SHOWN = 7  # the patient sees the next 7 days (BOOKING_WINDOW_DAYS, B-3)


def bookable_departments(*, today: date, query: str = "") -> list[dict]:
    """Clinical departments with open sessions in the next ``BOOKING_DAYS_SHOWN`` days (找科室),
    with their session count; ``query`` matches the department or a doctor's name."""
    from yilian.community.models import Department

    query = (query or "").strip()[:30]
    end = today + timedelta(days=BOOKING_DAYS_SHOWN)
    sessions = ClinicSession.objects.filter(
        service_date__gte=today, service_date__lt=end, status=ClinicSession.Status.OPEN
    )
    if query:
        sessions = sessions.filter(Q(department__name__icontains=query) | Q(doctor__name__icontains=query))
    counts = dict(sessions.values_list("department_id").annotate(n=Count("id")).order_by())
    departments = (
        Department.objects.filter(pk__in=list(counts), is_active=True)
        .select_related("organisation")
        .order_by("organisation__name", "code")
    )
    return [{"department": d, "sessions": counts[d.pk]} for d in departments]


def doctors_matching(*, today: date, query: str) -> list[dict]:
    """Doctors with open sessions in the next days whose name matches (找医生)."""
    query = (query or "").strip()[:30]
    if not query:
        return []
    end = today + timedelta(days=BOOKING_DAYS_SHOWN)
    rows = (
        ClinicSession.objects.filter(
            service_date__gte=today,
            service_date__lt=end,
            status=ClinicSession.Status.OPEN,
            doctor__name__icontains=query,
        )
        .select_related("doctor", "department")
        .order_by("doctor__name", "service_date")
    )
    seen: dict[int, dict] = {}
    for s in rows:
        entry = seen.setdefault(s.doctor_id, {"doctor": s.doctor, "department": s.department, "next": s})
        entry.setdefault("fee_class", s.get_fee_class_display())
    return list(seen.values())[:30]


def session_availability(*, session: ClinicSession, now: datetime | None = None) -> SessionAvailability:
    """One session's bookable numbers per time segment (B-19), as ``available_sessions`` counts them."""
    for entry in available_sessions(
        department_id=session.department_id, service_date=session.service_date, now=now
    ):
        if entry.session.pk == session.pk:
            return entry
    raise NotFound()


def appointments_of_account(actor: Actor, *, today: date) -> tuple[list[Appointment], list[Appointment]]:
    """The patient account's appointments: (upcoming from today, the last 30 days' past ones)."""
    qs = appointments_visible_to(actor).filter(service_date__gte=today - timedelta(days=30))
    upcoming, past = [], []
    for a in qs.order_by("service_date", "slot__starts_at", "id"):
        (upcoming if a.service_date >= today else past).append(a)
    return upcoming, list(reversed(past))


def open_waitlist_of_account(actor: Actor):
    from yilian.scheduling.models import WaitlistEntry

    if actor.kind != "patient":
        return WaitlistEntry.objects.none()
    return (
        WaitlistEntry.objects.filter(
            patient_id__in=actor.managed_patient_ids,
            status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED],
        )
        .select_related("session__department", "session__doctor", "patient", "appointment")
        .order_by("session__service_date", "created_at")
    )


def schedule_departments(actor: Actor) -> QuerySet:
    """Clinical departments whose schedule the actor may see (org.view over their organisation)."""
    from yilian.community.models import Department

    paths = policy.scope_paths(actor, policy.ORG_VIEW)
    if not paths:
        return Department.objects.none()
    scope = Q()
    for path in paths:
        scope |= Q(organisation__path__startswith=path)
    return (
        Department.objects.filter(scope, kind=Department.Kind.CLINICAL, is_active=True)
        .select_related("organisation")
        .order_by("organisation__path", "code")
    )


def week_sessions(*, department_id: int, monday: date) -> list[ClinicSession]:
    """A department's sessions of one week with ``booked`` (held or booked numbers, and visits) and
    ``free`` (numbers still free in any pool) counted on the numbers (号源)."""
    taken = [rules.SLOT_HELD, rules.SLOT_BOOKED]
    return list(
        ClinicSession.objects.filter(
            department_id=department_id, service_date__gte=monday, service_date__lt=monday + timedelta(days=7)
        )
        .select_related("doctor")
        .annotate(
            booked=Count("slots", filter=Q(slots__status__in=taken)),
            free=Count("slots", filter=Q(slots__status=rules.SLOT_FREE)),
        )
        .order_by("service_date", "starts_at", "doctor__name")
    )


def session_windows(session: ClinicSession) -> list[dict]:
    """Per time segment of a session: capacity, taken, free, and reserved (referral / on-site) numbers."""
    rows = (
        Slot.objects.filter(session=session)
        .values("starts_at", "ends_at")
        .annotate(
            capacity=Count("id"),
            taken=Count("id", filter=Q(status__in=[rules.SLOT_HELD, rules.SLOT_BOOKED])),
            free=Count("id", filter=Q(status=rules.SLOT_FREE)),
            reserved=Count("id", filter=~Q(pool=rules.PUBLIC)),
        )
        .order_by("starts_at")
    )
    return list(rows)


def active_bookings(session: ClinicSession) -> QuerySet[Appointment]:
    """The bookings a stop (停诊) would cancel and notify (B-15)."""
    return (
        Appointment.objects.filter(session=session, status__in=[rules.HELD, rules.BOOKED])
        .select_related("patient", "slot")
        .order_by("slot__seq")
    )
