"""A realistic outpatient week for the demo county (出诊排班 + 预约), called at the end of ``yilian demo``.

For every clinical department of the county hospital (the emergency department excepted: it takes
walk-ins round the clock), from today for 7 days: weekday morning (08:00–12:00) and afternoon
(14:00–17:00) sessions, Saturday mornings only; one expert (主任/副主任医师) and one general doctor
per weekday session where the department has them, taken in turn from the demo staff; 30-minute
time segments (B-19) with capacities by fee class (普通号 5, 专家号 3 per segment); the community
referral reserve held back as the booking service does it (B-17, ``rules.reserved_counts`` /
``spread_pools``); release times per B-3. Released sessions get bookings by demo patients (adults,
real-name verified, booked from their family account), at most one per patient, with their status
history; today's sessions that have already ended are shown as visited (a few as no-shows).

Rows are written in bulk (``bulk_create``), of the same shape as ``scheduling.services.create_session``
and ``book_appointment`` write them, and one audit row records the run. Everything is drawn from
``random.Random(seed)``, so one seed gives the same week (relative to the day it is built).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from yilian.common import audit
from yilian.community.models import Department, Organisation, Staff
from yilian.patients.models import FamilyLink, Patient
from yilian.scheduling import rules
from yilian.scheduling.models import Appointment, AppointmentStatusHistory, ClinicSession, Slot

DAYS = 7
SEGMENT = timedelta(minutes=30)
PERIOD_HOURS = {rules.AM: (time(8, 0), time(12, 0)), rules.PM: (time(14, 0), time(17, 0))}
PER_SEGMENT = {rules.GENERAL: 5, rules.EXPERT: 3, rules.SPECIAL: 2}
SKIPPED_DEPARTMENTS = {"急诊科"}
PHYSICIANS = (
    Staff.Title.CHIEF_PHYSICIAN,
    Staff.Title.ASSOC_CHIEF_PHYSICIAN,
    Staff.Title.ATTENDING_PHYSICIAN,
    Staff.Title.RESIDENT_PHYSICIAN,
)
BOOKED_SHARE = (0.25, 0.75)  # of a released session's bookable numbers
MAX_BOOKERS = 20000


@dataclass
class WeekResult:
    sessions: int = 0
    slots: int = 0
    appointments: int = 0


def _doctors_by_department(hospital: Organisation) -> dict[int, tuple[list[Staff], list[Staff]]]:
    """(experts, others) per department, in a stable order."""
    out: dict[int, tuple[list[Staff], list[Staff]]] = {}
    staff = Staff.objects.filter(
        organisation=hospital, department__isnull=False, is_active=True, title__in=PHYSICIANS
    ).order_by("department_id", "id")
    for s in staff:
        experts, others = out.setdefault(s.department_id, ([], []))
        (experts if rules.fee_class_for_title(s.title) == rules.EXPERT else others).append(s)
    return out


def _plan(day: date, period: str, experts: list[Staff], others: list[Staff], turn: int) -> list[Staff]:
    """Who sits this session: weekdays an expert and a general doctor (in turn), Saturday morning one
    general doctor, Sunday nobody."""
    weekday = day.weekday()
    if weekday == 6 or (weekday == 5 and period != rules.AM):
        return []
    chosen: list[Staff] = []
    if weekday < 5 and experts:
        chosen.append(experts[turn % len(experts)])
    if others:
        chosen.append(others[turn % len(others)])
    elif weekday == 5 and experts:
        chosen.append(experts[turn % len(experts)])
    return chosen


def _bookers(rng: random.Random, today: date) -> list[tuple[int, int]]:
    """(patient id, booking user id) of adult, real-name-verified demo patients with an account;
    the demo sign-in's own family first, so the demo patient sees bookings on the phone."""
    adult_before = today.replace(year=today.year - 18)
    rows = list(
        FamilyLink.objects.filter(
            patient__realname_verified=True,
            patient__status=Patient.Status.ACTIVE,
            patient__birth_date__lte=adult_before,
        )
        .order_by("id")
        .values_list("patient_id", "account__user_id")[:MAX_BOOKERS]
    )
    first, rest = rows[:2], rows[2:]
    rng.shuffle(rest)
    return first + rest


def build_week(*, seed: int = 2026, now: datetime | None = None) -> WeekResult:
    """Create the demo week (see the module docstring); a county without a hospital gets nothing."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    rng = random.Random(seed ^ 0x5EED)
    result = WeekResult()
    hospital = Organisation.objects.filter(kind=Organisation.Kind.COUNTY_HOSPITAL).order_by("id").first()
    if hospital is None:
        return result
    departments = list(
        Department.objects.filter(organisation=hospital, kind=Department.Kind.CLINICAL, is_active=True)
        .exclude(name__in=SKIPPED_DEPARTMENTS)
        .order_by("code")
    )
    doctors = _doctors_by_department(hospital)
    params = rules.DEFAULTS

    with transaction.atomic():
        sessions: list[ClinicSession] = []
        for department in departments:
            experts, others = doctors.get(department.pk, ([], []))
            for offset in range(DAYS):
                day = today + timedelta(days=offset)
                for p_index, period in enumerate((rules.AM, rules.PM)):
                    start, end = PERIOD_HOURS[period]
                    for doctor in _plan(day, period, experts, others, offset * 2 + p_index):
                        fee_class = rules.fee_class_for_title(doctor.title)
                        segments = rules.segments(
                            rules.local_datetime(day, start), rules.local_datetime(day, end), 30
                        )
                        sessions.append(
                            ClinicSession(
                                department=department,
                                doctor=doctor,
                                service_date=day,
                                period=period,
                                starts_at=segments[0][0],
                                ends_at=segments[-1][1],
                                fee_class=fee_class,
                                capacity=len(segments) * PER_SEGMENT[fee_class],
                                release_at=rules.release_at(day, params),
                            )
                        )
        ClinicSession.objects.bulk_create(sessions, batch_size=500)
        if sessions and sessions[0].pk is None:  # a backend that does not return keys
            by_key = {
                (s.doctor_id, s.service_date, s.period): s.pk
                for s in ClinicSession.objects.filter(service_date__gte=today)
            }
            for s in sessions:
                s.pk = s.id = by_key[(s.doctor_id, s.service_date, s.period)]

        slots: list[Slot] = []
        for s in sessions:
            per = PER_SEGMENT[s.fee_class]
            referral, onsite = rules.reserved_counts(s.capacity, s.fee_class, params)
            pools = rules.spread_pools(s.capacity, referral, onsite)
            for i, (a, b) in enumerate(rules.segments(s.starts_at, s.ends_at, 30)):
                for k in range(per):
                    seq = i * per + k
                    slots.append(Slot(session_id=s.pk, seq=seq + 1, starts_at=a, ends_at=b, pool=pools[seq]))

        bookers = _bookers(rng, today)
        used = 0
        appointments: list[Appointment] = []
        by_session: dict[int, list[Slot]] = {}
        for slot in slots:
            by_session.setdefault(slot.session_id, []).append(slot)
        for s in sessions:
            if now < s.release_at or used >= len(bookers):
                continue
            pools = set(rules.public_pools(now, s.starts_at, params))
            bookable = [x for x in by_session[s.pk] if x.pool in pools]
            ended = s.ends_at <= now
            share = rng.uniform(*BOOKED_SHARE)
            if s.doctor is not None and rules.fee_class_for_title(s.doctor.title) == rules.EXPERT:
                share = min(1.0, share + 0.25)  # experts fill first
            for slot in bookable[: int(len(bookable) * share)]:
                if used >= len(bookers) or (ended and used < 2):
                    break  # the demo family gets open bookings (to show cancel on the phone)
                patient_id, user_id = bookers[used]
                used += 1
                status = rules.BOOKED
                if ended:
                    status = rules.NO_SHOW if rng.random() < 0.06 else rules.FULFILLED
                slot.status = rules.SLOT_BOOKED
                appointments.append(
                    Appointment(
                        patient_id=patient_id,
                        session_id=s.pk,
                        slot=slot,
                        service_date=s.service_date,
                        period=s.period,
                        department_id=s.department_id,
                        status=status,
                        channel=rng.choice(
                            [rules.CHANNEL_APP, rules.CHANNEL_APP, rules.CHANNEL_WECHAT, rules.CHANNEL_PHONE]
                        ),
                        created_by_id=user_id,
                        booked_at=max(s.release_at, now - timedelta(days=6))
                        + timedelta(minutes=rng.randint(0, 600)),
                    )
                )
        Slot.objects.bulk_create(slots, batch_size=2000)
        if slots and slots[0].pk is None:
            ids = {
                (sid, seq): pk
                for pk, sid, seq in Slot.objects.filter(session__service_date__gte=today).values_list(
                    "id", "session_id", "seq"
                )
            }
            for slot in slots:
                slot.pk = slot.id = ids[(slot.session_id, slot.seq)]
        for a in appointments:
            a.slot_id = a.slot.pk
            a.booked_at = min(a.booked_at, now)
        Appointment.objects.bulk_create(appointments, batch_size=2000)
        if appointments and appointments[0].pk is None:
            ids = dict(Appointment.objects.filter(service_date__gte=today).values_list("slot_id", "id"))
            for a in appointments:
                a.pk = a.id = ids[a.slot_id]
        history: list[AppointmentStatusHistory] = []
        for a in appointments:
            history.append(
                AppointmentStatusHistory(
                    appointment_id=a.pk,
                    from_status="",
                    to_status=rules.BOOKED,
                    at=a.booked_at,
                    by_id=a.created_by_id,
                )
            )
            if a.status == rules.FULFILLED:
                history.append(
                    AppointmentStatusHistory(
                        appointment_id=a.pk,
                        from_status=rules.BOOKED,
                        to_status=rules.ARRIVED,
                        at=a.slot.starts_at,
                    )
                )
                history.append(
                    AppointmentStatusHistory(
                        appointment_id=a.pk,
                        from_status=rules.ARRIVED,
                        to_status=rules.FULFILLED,
                        at=a.slot.ends_at,
                    )
                )
            elif a.status == rules.NO_SHOW:
                history.append(
                    AppointmentStatusHistory(
                        appointment_id=a.pk,
                        from_status=rules.BOOKED,
                        to_status=rules.NO_SHOW,
                        at=a.slot.ends_at,
                        reason="B-11",
                    )
                )
        AppointmentStatusHistory.objects.bulk_create(history, batch_size=2000)
        result.sessions, result.slots, result.appointments = len(sessions), len(slots), len(appointments)
        audit.record(
            None,
            "demo.schedule_week",
            detail={
                "seed": seed,
                "sessions": result.sessions,
                "slots": result.slots,
                "appointments": result.appointments,
            },
        )
    return result
