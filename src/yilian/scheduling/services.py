"""Every write of outpatient scheduling and booking: access.md B-1..B-16 (B-20 not yet built).

The booking transaction (B-10) never serialises a session on one row: each numbered slot is a row,
a booking picks the first free one with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL) so that
concurrent bookings take different rows, flips it with a conditional UPDATE and inserts the
appointment. Partial unique indexes make a double booking of a slot (B-10), a second booking in
the same session and department (B-5) and a replayed idempotency key impossible even if a check
were missed. The per-patient checks (B-5, B-6, B-12, B-14) are serialised on the patient's row,
which is not hot. On SQLite writers are serialised by ``BEGIN IMMEDIATE`` (settings), so the same
code is correct there.
"""

from __future__ import annotations

import dataclasses
import logging
import time as time_module
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.community.models import Department, Staff
from yilian.patients.models import FamilyLink, Patient
from yilian.scheduling import errors, rules
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

# Until the lead adds a booking permission, desk staff book on a patient's behalf with the
# permission that lets them register patients at the desk (patient.create).
DESK_BOOKING_PERMISSION = policy.PATIENT_CREATE
# Creating and stopping sessions: the medical-affairs office; until a ``schedule.manage`` permission
# exists, organisation managers (plus the session's own doctor for a stop).
SCHEDULE_PERMISSION = policy.ORG_MANAGE
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


# --- Schedule set-up ---------------------------------------------------------------------------------


def _may_manage_schedule(actor: Actor, department: Department) -> bool:
    return actor.is_staff_member and policy.covers(actor, SCHEDULE_PERMISSION, department.organisation.path)


@transaction.atomic
def create_session(
    *,
    actor: Actor,
    department: Department,
    doctor: Staff | None,
    service_date: date,
    period: str,
    windows: list[tuple[time, time, int]],
    special: bool = False,
    now: datetime | None = None,
) -> ClinicSession:
    """Create a session (出诊单元) and one ``Slot`` per number (号源), B-17 pools spread evenly.

    ``windows`` are the time segments (分时段, B-19) as (start, end, capacity), in order and not
    overlapping; numbers are given in segment order.
    """
    now = now or timezone.now()
    if not _may_manage_schedule(actor, department):
        raise PermissionDenied()
    if period not in rules.PERIODS:
        raise InvalidInput(_("时段必须是上午、下午或夜间。"), field="period")
    if service_date < timezone.localdate(now):
        raise InvalidInput(_("出诊日期不能早于今天。"), field="service_date")
    if not windows:
        raise InvalidInput(_("至少需要一个分时段。"), field="windows")
    previous_end: time | None = None
    for start, end, capacity in windows:
        if end <= start:
            raise InvalidInput(_("分时段的结束时间必须晚于开始时间。"), field="windows")
        if previous_end is not None and start < previous_end:
            raise InvalidInput(_("分时段必须按时间先后排列且不能重叠。"), field="windows")
        if not 1 <= capacity <= MAX_WINDOW_CAPACITY:
            raise InvalidInput(_("每个分时段的号源数必须在 1 到 500 之间。"), field="windows")
        previous_end = end
    if doctor is not None and (doctor.organisation_id != department.organisation_id or not doctor.is_active):
        raise InvalidInput(_("出诊医生必须是本机构在职人员。"), field="doctor")

    params = parameters_for(department.pk)
    fee_class = rules.fee_class_for_title(doctor.title if doctor else None, special=special)
    capacity = sum(w[2] for w in windows)
    session = ClinicSession(
        department=department,
        doctor=doctor,
        service_date=service_date,
        period=period,
        starts_at=rules.local_datetime(service_date, windows[0][0]),
        ends_at=rules.local_datetime(service_date, windows[-1][1]),
        fee_class=fee_class,
        capacity=capacity,
        release_at=rules.release_at(service_date, params),
        created_by_id=actor.user_id,
    )
    session.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            session.save()
    except IntegrityError as exc:
        raise Conflict(_("该医生（或该科室普通门诊）在这一天的这个时段已有出诊安排。")) from exc

    referral, onsite = rules.reserved_counts(capacity, fee_class, params)
    pools = rules.spread_pools(capacity, referral, onsite)
    slots: list[Slot] = []
    seq = 0
    for start, end, count in windows:
        for _n in range(count):
            slots.append(
                Slot(
                    session=session,
                    seq=seq + 1,
                    starts_at=rules.local_datetime(service_date, start),
                    ends_at=rules.local_datetime(service_date, end),
                    pool=pools[seq],
                )
            )
            seq += 1
    Slot.objects.bulk_create(slots, batch_size=500)
    audit.record(
        actor,
        "scheduling.session_create",
        target=audit.Target("scheduling.ClinicSession", session.pk),
        detail={"capacity": capacity, "referral": referral, "onsite": onsite, "fee_class": fee_class},
    )
    return session


# --- Booking -------------------------------------------------------------------------------------------


def _check_may_book_for(actor: Actor, patient: Patient, department: Department, service_date: date) -> str:
    """B-16: a patient account books only patients it manages (under 14: only as guardian); desk
    staff need the desk permission over the department's organisation. Returns the channel kind."""
    if actor.kind == "patient":
        if patient.pk not in actor.managed_patient_ids:
            raise NotFound()
        age = rules.age_on(patient.birth_date, service_date)
        if age < GUARDIAN_AGE:
            link = FamilyLink.objects.filter(
                account_id=actor.patient_account_id, patient_id=patient.pk
            ).first()
            if link is None or not (link.is_guardian or link.relationship == FamilyLink.Relationship.SELF):
                raise errors.GuardianRequired()
        return "patient"
    if actor.is_staff_member and policy.covers(actor, DESK_BOOKING_PERMISSION, department.organisation.path):
        return "staff"
    raise PermissionDenied()


def _match_key(rows: list, actor: Actor, key: str, patient_id: int, session_id: int) -> int | None:
    """The id of the account's appointment with this idempotency key among ``rows`` (dicts with
    ``id``, ``created_by_id``, ``idempotency_key``, ``patient_id``, ``session_id``), if any."""
    if not key:
        return None
    for row in rows:
        if row["created_by_id"] == actor.user_id and row["idempotency_key"] == key:
            if row["patient_id"] != patient_id or row["session_id"] != session_id:
                raise errors.IdempotencyKeyReused()
            return row["id"]
    return None


def _existing_for_key(actor: Actor, key: str, patient_id: int, session_id: int) -> Appointment | None:
    if not key or actor.user_id is None:
        return None
    found = Appointment.objects.filter(created_by_id=actor.user_id, idempotency_key=key).first()
    if found is not None and (found.patient_id != patient_id or found.session_id != session_id):
        raise errors.IdempotencyKeyReused()
    return found


def book_appointment(
    *,
    actor: Actor,
    patient_id: int,
    session_id: int,
    idempotency_key: str = "",
    channel: str = rules.CHANNEL_APP,
    now: datetime | None = None,
) -> Booking:
    """Book the next free number of a session for a patient (预约挂号), B-1..B-16.

    Idempotent per booking account and key: a replay (also one racing the original) returns the
    original appointment with ``created=False``: the key is looked up after the patient's row lock,
    so a racing replay waits for its original and finds it. The transaction is ``_book``; an
    ``IntegrityError`` from a unique index is turned into the answer it means.
    """
    key = (idempotency_key or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput(_("幂等键不能超过 64 个字符。"), field="idempotency_key")
    if channel not in rules.CHANNELS:
        raise InvalidInput(_("预约渠道无效。"), field="channel")
    if actor.user_id is None:
        raise PermissionDenied()
    try:
        return _book(
            actor=actor, patient_id=patient_id, session_id=session_id, key=key, channel=channel, now=now
        )
    except IntegrityError as exc:
        existing = _existing_for_key(actor, key, patient_id, session_id)
        if existing is not None:
            return Booking(existing, False)
        session = ClinicSession.objects.filter(pk=session_id).first()
        if (
            session is not None
            and Appointment.objects.filter(
                patient_id=patient_id,
                service_date=session.service_date,
                period=session.period,
                department_id=session.department_id,
                status__in=rules.ACTIVE_FOR_DUPLICATE,
            ).exists()
        ):
            raise errors.DuplicateSessionBooking() from exc
        logger.exception("Unexpected integrity error while booking session %s", session_id)
        raise Conflict() from exc


_FREE_WHERE = """session_id = %s AND status = 'free' AND pool = ANY(%s) AND NOT for_waitlist
    AND (available_from IS NULL OR available_from <= %s)"""
_CLAIM_SQL = """
UPDATE {slot} SET status = 'booked', available_from = NULL
WHERE id = (SELECT id FROM {slot} WHERE {free} ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, seq, starts_at, ends_at, pool
"""
_ANY_FREE_SQL = "SELECT EXISTS (SELECT 1 FROM {slot} WHERE {free})"
# How long a booking waits, at most, for bookings in flight that hold the last free-looking numbers.
IN_FLIGHT_WAIT_SECONDS = 2.0


def _pick_slot(session: ClinicSession, pools: tuple[str, ...], now: datetime) -> Slot | None:
    """B-10: claim the first free, released number of the session.

    PostgreSQL: one statement locks the first free number that no other booking holds
    (``FOR UPDATE SKIP LOCKED``) and flips it, so concurrent bookings take different rows and no
    row is shared. When every free number is locked by bookings in flight, SKIP LOCKED sees none,
    but one of those bookings might still roll back; so, while a plain read still shows a free
    number, we retry briefly (each statement sees the latest commits) instead of answering "none
    left". Waiting with a blocking ``FOR UPDATE`` instead keeps locks on rows that fail the
    re-check, which deadlocks the tail of a rush. This keeps "k numbers, N callers → exactly
    min(N, k)".

    SQLite (writers serialised by ``BEGIN IMMEDIATE``): pick, then a conditional UPDATE.
    """
    if connection.vendor == "postgresql":
        table = Slot._meta.db_table
        claim = _CLAIM_SQL.format(slot=table, free=_FREE_WHERE)
        any_free = _ANY_FREE_SQL.format(slot=table, free=_FREE_WHERE)
        params = [session.pk, list(pools), now]
        deadline = time_module.monotonic() + IN_FLIGHT_WAIT_SECONDS
        pause = 0.002
        with connection.cursor() as cursor:
            while True:
                cursor.execute(claim, params)
                row = cursor.fetchone()
                if row is not None:
                    return Slot(
                        id=row[0],
                        session_id=session.pk,
                        seq=row[1],
                        starts_at=row[2],
                        ends_at=row[3],
                        pool=row[4],
                        status=Slot.Status.BOOKED,
                    )
                cursor.execute(any_free, params)
                if not cursor.fetchone()[0] or time_module.monotonic() > deadline:
                    return None
                time_module.sleep(pause)
                pause = min(pause * 2, 0.05)
    base = (
        Slot.objects.filter(
            session_id=session.pk, status=Slot.Status.FREE, pool__in=pools, for_waitlist=False
        )
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .order_by("seq")
        .only("id", "seq", "starts_at", "ends_at", "pool")
    )
    for _attempt in range(3):
        slot = base.first()
        if slot is None:
            return None
        claimed = Slot.objects.filter(pk=slot.pk, status=Slot.Status.FREE).update(
            status=Slot.Status.BOOKED, available_from=None
        )
        if claimed:
            slot.status = Slot.Status.BOOKED
            return slot
    return None


_HISTORY_FIELDS = (
    "id",
    "status",
    "service_date",
    "period",
    "department_id",
    "cancel_reason",
    "cancelled_at",
    "created_by_id",
    "idempotency_key",
    "patient_id",
    "session_id",
)


def _patient_history(
    patient_id: int,
    session: ClinicSession,
    params: rules.BookingParameters,
    now: datetime,
    *,
    user_id: int | None = None,
    key: str = "",
) -> list[dict]:
    """One read answering B-5, B-6, B-12 and B-14 for a booking of ``session`` (and, with a key,
    the idempotency look-up): the patient's appointments that any of those rules looks at."""
    q_start, q_end = rules.quota_window(session.service_date)
    today = timezone.localdate(now)
    relevant = Q(patient_id=patient_id) & (
        Q(status__in=rules.COUNTING_FOR_QUOTA, service_date__gte=q_start, service_date__lt=q_end)
        | Q(status__in=rules.ACTIVE_FOR_DUPLICATE, service_date=session.service_date)
        | Q(status=rules.NO_SHOW, service_date__gte=today - timedelta(days=params.escalation_window_days * 2))
        | Q(
            status=rules.CANCELLED,
            cancel_reason=rules.REASON_PATIENT,
            cancelled_at__gte=now - timedelta(days=params.cancel_abuse_window_days * 2),
        )
    )
    if key and user_id is not None:
        relevant |= Q(created_by_id=user_id, idempotency_key=key)
    return list(Appointment.objects.filter(relevant).values(*_HISTORY_FIELDS))


def _check_patient_rules(
    rows: list[dict],
    patient_id: int,
    session: ClinicSession,
    params: rules.BookingParameters,
    now: datetime,
    *,
    check_suspension: bool = True,
) -> None:
    """B-12/B-14 (suspension), B-5 (one per session and department), B-6 (quotas), from the rows
    of ``_patient_history``."""
    own = [r for r in rows if r["patient_id"] == patient_id]
    if check_suspension:
        until = rules.suspended_until(
            now,
            [r["service_date"] for r in own if r["status"] == rules.NO_SHOW],
            [
                r["cancelled_at"]
                for r in own
                if r["status"] == rules.CANCELLED
                and r["cancel_reason"] == rules.REASON_PATIENT
                and r["cancelled_at"]
            ],
            params,
        )
        if until is not None:
            shown = timezone.localtime(until).strftime("%Y-%m-%d %H:%M")
            raise errors.BookingSuspended(
                errors.BookingSuspended.default_message % {"until": shown},
                until=timezone.localtime(until).isoformat(),
            )
    if any(
        r["status"] in rules.ACTIVE_FOR_DUPLICATE
        and r["service_date"] == session.service_date
        and r["period"] == session.period
        and r["department_id"] == session.department_id
        for r in own
    ):
        raise errors.DuplicateSessionBooking()
    q_start, q_end = rules.quota_window(session.service_date)
    exceeded = rules.quota_exceeded(
        session.service_date,
        [
            r["service_date"]
            for r in own
            if r["status"] in rules.COUNTING_FOR_QUOTA and q_start <= r["service_date"] < q_end
        ],
        params,
    )
    if exceeded:
        raise errors.QuotaExceeded(window=exceeded)


def _check_session_open_for(
    session: ClinicSession, params: rules.BookingParameters, now: datetime, channel: str
) -> None:
    """Stopped (B-15), release (B-3) and close (B-4; the counter books until the session ends)."""
    if session.status != ClinicSession.Status.OPEN:
        raise errors.SessionStopped()
    if now < session.release_at:
        raise errors.NotYetReleased(
            _("该出诊单元将于 %(at)s 放号。")
            % {"at": timezone.localtime(session.release_at).strftime("%Y-%m-%d %H:%M")},
            release_at=timezone.localtime(session.release_at).isoformat(),
        )
    closes = session.ends_at if channel == rules.CHANNEL_COUNTER else rules.close_at(session.ends_at, params)
    if now >= closes:
        raise errors.BookingClosed()


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


@transaction.atomic
def _book(
    *, actor: Actor, patient_id: int, session_id: int, key: str, channel: str, now: datetime | None
) -> Booking:
    now = now or timezone.now()
    patient = _lock_patient(patient_id)
    session = _session_with_policy(session_id)
    if patient is None or session is None:
        raise NotFound()
    params = _parameters_of(session.department)
    # After the patient lock: a replay that raced its original waited for the lock and sees it here.
    rows = _patient_history(patient.pk, session, params, now, user_id=actor.user_id, key=key)
    existing_id = _match_key(rows, actor, key, patient_id, session_id)
    if existing_id is not None:
        _check_may_book_for(actor, patient, session.department, session.service_date)
        return Booking(Appointment.objects.select_related("slot").get(pk=existing_id), False)
    kind = _check_may_book_for(actor, patient, session.department, session.service_date)
    if kind == "patient" and channel == rules.CHANNEL_COUNTER:
        raise InvalidInput(_("患者账号不能使用窗口渠道。"), field="channel")
    if not patient.realname_verified:  # B-1
        raise errors.RealnameRequired()
    _check_session_open_for(session, params, now, channel)
    # B-12 (b): same-day registration at the counter is still allowed during a suspension.
    same_day_counter = channel == rules.CHANNEL_COUNTER and timezone.localdate(now) == session.service_date
    _check_patient_rules(rows, patient.pk, session, params, now, check_suspension=not same_day_counter)

    pools = (
        rules.counter_pools(now, session.starts_at, params)
        if channel == rules.CHANNEL_COUNTER
        else rules.public_pools(now, session.starts_at, params)
    )
    slot = _pick_slot(session, pools, now)
    if slot is None:  # B-10
        raise errors.SlotUnavailable()
    appointment = Appointment.objects.create(
        patient_id=patient.pk,
        session=session,
        slot=slot,
        service_date=session.service_date,
        period=session.period,
        department_id=session.department_id,
        status=Appointment.Status.BOOKED,
        channel=channel,
        idempotency_key=key,
        created_by_id=actor.user_id,
        booked_at=now,
    )
    _history(appointment, "", actor, now)
    audit.record(
        actor,
        "scheduling.book",
        target=_target(appointment),
        detail={"session": session.pk, "seq": slot.seq, "channel": channel},
    )
    return Booking(appointment, True)


# --- Cancellation, doctor stop, no-shows --------------------------------------------------------------


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


@transaction.atomic
def cancel_appointment(
    *, actor: Actor, appointment_id: int, reason: str = "", now: datetime | None = None
) -> Appointment:
    """A patient's cancellation (退号), by the patient's account or at the desk on their request.

    B-7: only until CANCEL_DEADLINE. The number returns to the pool after the random re-release
    delay (B-9). It counts as a patient cancellation for B-14 and never as a no-show (B-13).
    """
    now = now or timezone.now()
    appointment = _visible_appointment_for_update(actor, appointment_id)
    if appointment.status == Appointment.Status.CANCELLED:
        return appointment  # a repeated cancel is a no-op, not an error
    if appointment.status not in (Appointment.Status.HELD, Appointment.Status.BOOKED):
        raise errors.InvalidTransition()
    params = parameters_for(appointment.department_id)
    if now > rules.cancel_deadline(appointment.service_date, params):
        raise errors.CancelDeadlinePassed(
            deadline=timezone.localtime(rules.cancel_deadline(appointment.service_date, params)).isoformat()
        )
    previous = appointment.status
    appointment.status = Appointment.Status.CANCELLED
    appointment.cancel_reason = Appointment.CancelReason.PATIENT
    appointment.cancelled_at = now
    appointment.save(update_fields=["status", "cancel_reason", "cancelled_at"])
    _history(appointment, previous, actor, now, reason)
    if appointment.session.status == ClinicSession.Status.OPEN:
        available_from = _free_slot(appointment.slot_id, appointment.session_id, params, now)
        if _session_has_waiting(appointment.session_id):
            transaction.on_commit(lambda: _schedule("offer_waitlist_task", available_from))
    WaitlistEntry.objects.filter(appointment=appointment).update(status=WaitlistEntry.Status.CANCELLED)
    audit.record(actor, "scheduling.cancel", target=_target(appointment), reason=reason)
    return appointment


@transaction.atomic
def stop_session(*, actor: Actor, session_id: int, reason: str, now: datetime | None = None) -> ClinicSession:
    """Doctor stop (停诊), B-15: every HELD or BOOKED appointment is cancelled with reason ``prov``
    (no penalty: it is neither a patient cancellation nor a no-show), every patient is notified,
    and every number becomes busy-unavailable. Allowed after the cancellation deadline."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise InvalidInput(_("请填写停诊原因（不超过200字）。"), field="reason")
    session = (
        ClinicSession.objects.select_for_update(of=("self",))
        .select_related("department__organisation", "doctor")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise NotFound()
    own_doctor = actor.staff_id is not None and actor.staff_id == session.doctor_id
    if not (own_doctor or _may_manage_schedule(actor, session.department)):
        raise PermissionDenied()
    if session.status == ClinicSession.Status.STOPPED:
        return session
    if session.ends_at <= now:
        raise InvalidInput(_("该出诊单元已结束，不能停诊。"), field="session")
    active = Appointment.objects.select_for_update(of=("self",)).filter(
        session_id=session.pk, status__in=[Appointment.Status.HELD, Appointment.Status.BOOKED]
    )
    # Lock order as in cancel / confirm (appointment, then number): lock today's bookings first.
    list(active.values_list("id", flat=True))
    # Then the numbers: this UPDATE waits for any booking holding a number's lock, so every booking
    # that can still commit is visible to the appointment query below (READ COMMITTED).
    Slot.objects.filter(session_id=session.pk).update(status=Slot.Status.UNAVAILABLE, available_from=None)
    session.status = ClinicSession.Status.STOPPED
    session.stopped_at = now
    session.stop_reason = reason
    session.save(update_fields=["status", "stopped_at", "stop_reason"])
    to_cancel = list(active.select_related("patient", "slot", "created_by__patient_account"))
    for appointment in to_cancel:
        previous = appointment.status
        appointment.status = Appointment.Status.CANCELLED
        appointment.cancel_reason = Appointment.CancelReason.PROVIDER
        appointment.cancelled_at = now
        appointment.save(update_fields=["status", "cancel_reason", "cancelled_at"])
        _history(appointment, previous, actor, now, reason)
        audit.record(actor, "scheduling.cancel_by_stop", target=_target(appointment), reason=reason)
        _notify_stopped(session, appointment, reason)
    WaitlistEntry.objects.filter(
        session=session, status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]
    ).update(status=WaitlistEntry.Status.CANCELLED)
    audit.record(
        actor,
        "scheduling.session_stop",
        target=audit.Target("scheduling.ClinicSession", session.pk),
        reason=reason,
        detail={"cancelled": len(to_cancel)},
    )
    return session


def _notify_stopped(session: ClinicSession, appointment: Appointment, reason: str) -> None:
    """B-15: tell the patient (the booking account's inbox, and an SMS to the account's phone, or
    the patient's own phone for a desk booking). Sent only if the stop commits."""
    from yilian.notifications import services as notification_services

    account = getattr(appointment.created_by, "patient_account", None)
    phone = (account.phone if account is not None else "") or appointment.patient.phone
    context = {
        "patient_name": appointment.patient.name,
        "org_name": session.department.organisation.name,
        "department_name": session.department.name,
        "doctor_name": session.doctor.name if session.doctor else "",
        "session_date": session.service_date.strftime("%Y年%m月%d日")
        .replace("年0", "年")
        .replace("月0", "月"),
        "session_label": session.get_period_display(),
        "booking_no": f"{session.pk}-{appointment.slot.seq}" if appointment.slot_id else str(appointment.pk),
        "reason": reason,
    }
    notification_services.notify(
        recipient=appointment.created_by if account is not None else None,
        template_code="booking_cancelled_by_hospital",
        context=context,
        phone=phone or None,
        urgent=True,
    )


@transaction.atomic
def mark_no_shows(*, actor: Actor, now: datetime | None = None) -> list[int]:
    """B-11: every BOOKED appointment of a session that ended (SIGNIN_CLOSE = session end) without a
    sign-in becomes NO_SHOW. Returns the patients whose booking this suspends (B-12); the
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
        until = suspension_of(patient_id=patient_id, now=now)
        if until is not None:
            suspended.append(patient_id)
            audit.record(
                actor,
                "scheduling.booking_suspended",
                target=audit.Target("patients.Patient", patient_id, patient_id),
                detail={"until": until.isoformat()},
            )
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


# --- Waitlist (候补), B-20, and payment holds, B-8 ----------------------------------------------------


@transaction.atomic
def join_waitlist(
    *, actor: Actor, patient_id: int, session_id: int, now: datetime | None = None
) -> WaitlistEntry:
    """Join a full session's waitlist (候补). The patient must be bookable now (B-1, B-3, B-4, B-5,
    B-6, B-12, B-14, B-16); joining a session that still has numbers is refused (book instead).
    Joining twice returns the open entry."""
    now = now or timezone.now()
    patient = _lock_patient(patient_id)
    session = _session_with_policy(session_id)
    if patient is None or session is None:
        raise NotFound()
    _check_may_book_for(actor, patient, session.department, session.service_date)
    open_entry = WaitlistEntry.objects.filter(
        session=session,
        patient=patient,
        status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED],
    ).first()
    if open_entry is not None:
        return open_entry
    if not patient.realname_verified:
        raise errors.RealnameRequired()
    params = _parameters_of(session.department)
    _check_session_open_for(session, params, now, rules.CHANNEL_APP)
    _check_patient_rules(_patient_history(patient.pk, session, params, now), patient.pk, session, params, now)
    bookable = (
        Slot.objects.filter(
            session=session,
            status=Slot.Status.FREE,
            for_waitlist=False,
            pool__in=rules.public_pools(now, session.starts_at, params),
        )
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .exists()
    )
    if bookable:
        raise errors.SlotsStillAvailable()
    entry = WaitlistEntry.objects.create(
        session=session, patient=patient, created_by_id=actor.user_id, created_at=now
    )
    audit.record(
        actor,
        "scheduling.waitlist_join",
        target=audit.Target("scheduling.WaitlistEntry", entry.pk, patient.pk),
        detail={"session": session.pk},
    )
    return entry


@transaction.atomic
def leave_waitlist(*, actor: Actor, entry_id: int, now: datetime | None = None) -> WaitlistEntry:
    entry = WaitlistEntry.objects.select_for_update().filter(pk=entry_id).first()
    if entry is None or (actor.kind == "patient" and entry.patient_id not in actor.managed_patient_ids):
        raise NotFound()
    if actor.kind != "patient" and entry.created_by_id != actor.user_id:
        raise NotFound()
    if entry.status == WaitlistEntry.Status.WAITING:
        entry.status = WaitlistEntry.Status.CANCELLED
        entry.save(update_fields=["status"])
        audit.record(
            actor,
            "scheduling.waitlist_leave",
            target=audit.Target("scheduling.WaitlistEntry", entry.pk, entry.patient_id),
        )
    return entry


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


def offer_waitlist(*, now: datetime | None = None) -> int:
    """B-20: give each freed number (its re-release delay over) to the first waiting patient who
    still passes B-5, B-6 and B-12 — as a HELD appointment to be paid within PAYMENT_HOLD_MIN
    (B-8). A number nobody on the waitlist can take joins the public pool. Returns the offers made."""
    now = now or timezone.now()
    offered = 0
    slot_ids = list(
        Slot.objects.filter(
            status=Slot.Status.FREE, for_waitlist=True, session__status=ClinicSession.Status.OPEN
        )
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .order_by("available_from", "id")
        .values_list("id", flat=True)[:500]
    )
    for slot_id in slot_ids:
        offered += _offer_one(slot_id, now)
    return offered


@transaction.atomic
def _offer_one(slot_id: int, now: datetime) -> int:
    lock = Slot.objects.select_for_update(**_skip_locked()).filter(
        pk=slot_id, status=Slot.Status.FREE, for_waitlist=True
    )
    slot = lock.first()
    if slot is None:
        return 0
    session = _session_with_policy(slot.session_id)
    params = _parameters_of(session.department)
    if now >= rules.close_at(session.ends_at, params):
        Slot.objects.filter(pk=slot.pk).update(for_waitlist=False)
        return 0
    for entry in WaitlistEntry.objects.filter(session=session, status=WaitlistEntry.Status.WAITING).order_by(
        "created_at", "id"
    ):
        patient = _lock_patient(entry.patient_id)
        if patient is None or not patient.realname_verified:
            continue
        try:
            _check_patient_rules(
                _patient_history(patient.pk, session, params, now), patient.pk, session, params, now
            )
        except (errors.BookingSuspended, errors.DuplicateSessionBooking, errors.QuotaExceeded):
            continue
        appointment = Appointment.objects.create(
            patient_id=patient.pk,
            session=session,
            slot=slot,
            service_date=session.service_date,
            period=session.period,
            department_id=session.department_id,
            status=Appointment.Status.HELD,
            channel=rules.CHANNEL_APP,
            created_by_id=entry.created_by_id,
            booked_at=now,
            hold_expires_at=now + timedelta(minutes=params.payment_hold_minutes),
        )
        Slot.objects.filter(pk=slot.pk).update(
            status=Slot.Status.HELD, for_waitlist=False, available_from=None
        )
        entry.status = WaitlistEntry.Status.OFFERED
        entry.offered_at = now
        entry.appointment = appointment
        entry.save(update_fields=["status", "offered_at", "appointment"])
        AppointmentStatusHistory.objects.create(
            appointment=appointment,
            from_status="",
            to_status=rules.HELD,
            at=now,
            reason="B-20 waitlist offer",
        )
        audit.record(
            None, "scheduling.waitlist_offer", target=_target(appointment), detail={"entry": entry.pk}
        )
        _notify_offer(session, appointment, entry)
        transaction.on_commit(lambda at=appointment.hold_expires_at: _schedule("expire_holds_task", at))
        return 1
    Slot.objects.filter(pk=slot.pk).update(for_waitlist=False)  # nobody can take it: public pool
    return 0


def _skip_locked() -> dict:
    return {"skip_locked": True} if connection.features.has_select_for_update_skip_locked else {}


def _notify_offer(session: ClinicSession, appointment: Appointment, entry: WaitlistEntry) -> None:
    from yilian.notifications import services as notification_services

    account = getattr(entry.created_by, "patient_account", None)
    minutes = int((appointment.hold_expires_at - appointment.booked_at).total_seconds() // 60)
    notification_services.notify(
        recipient=entry.created_by,
        template_code="waitlist_offer",
        context={
            "title": "候补成功，请尽快支付",
            "body": (
                f"您候补的{session.department.name}{timezone.localtime(session.starts_at):%m月%d日}"
                f"{session.get_period_display()}号源已为您锁定，请在{minutes}分钟内完成支付，逾期自动取消。"
            ),
        },
        phone=(account.phone if account is not None else "") or None,
        urgent=True,
    )


@transaction.atomic
def confirm_hold(*, actor: Actor, appointment_id: int, now: datetime | None = None) -> Appointment:
    """B-8: a HELD appointment becomes BOOKED on payment (the payment module will call this)."""
    now = now or timezone.now()
    appointment = _visible_appointment_for_update(actor, appointment_id)
    if appointment.status == Appointment.Status.BOOKED:
        return appointment
    if appointment.status != Appointment.Status.HELD:
        raise errors.InvalidTransition()
    if appointment.hold_expires_at is not None and now >= appointment.hold_expires_at:
        raise errors.HoldExpired()
    appointment.status = Appointment.Status.BOOKED
    appointment.save(update_fields=["status"])
    Slot.objects.filter(pk=appointment.slot_id).update(status=Slot.Status.BOOKED)
    WaitlistEntry.objects.filter(appointment=appointment).update(status=WaitlistEntry.Status.BOOKED)
    _history(appointment, rules.HELD, actor, now, "paid")
    audit.record(actor, "scheduling.hold_confirm", target=_target(appointment))
    return appointment


def expire_holds(*, now: datetime | None = None) -> int:
    """B-8: unpaid holds past PAYMENT_HOLD_MIN become CANCELLED (``oth-hold-expired``; neither a
    no-show nor a patient cancellation, B-13); the number goes back after the re-release delay,
    to the waitlist first. Returns the holds expired."""
    now = now or timezone.now()
    ids = list(
        Appointment.objects.filter(status=Appointment.Status.HELD, hold_expires_at__lte=now).values_list(
            "id", flat=True
        )[:1000]
    )
    return sum(_expire_one(appointment_id, now) for appointment_id in ids)


@transaction.atomic
def _expire_one(appointment_id: int, now: datetime) -> int:
    appointment = (
        Appointment.objects.select_for_update(**_skip_locked())
        .filter(pk=appointment_id, status=Appointment.Status.HELD, hold_expires_at__lte=now)
        .first()
    )
    if appointment is None:
        return 0
    appointment.status = Appointment.Status.CANCELLED
    appointment.cancel_reason = Appointment.CancelReason.HOLD_EXPIRED
    appointment.cancelled_at = now
    appointment.save(update_fields=["status", "cancel_reason", "cancelled_at"])
    AppointmentStatusHistory.objects.create(
        appointment=appointment,
        from_status=rules.HELD,
        to_status=rules.CANCELLED,
        at=now,
        reason="B-8 hold expired",
    )
    WaitlistEntry.objects.filter(appointment=appointment).update(status=WaitlistEntry.Status.EXPIRED)
    audit.record(None, "scheduling.hold_expired", target=_target(appointment))
    if ClinicSession.objects.filter(pk=appointment.session_id, status=ClinicSession.Status.OPEN).exists():
        available_from = _free_slot(
            appointment.slot_id, appointment.session_id, parameters_for(appointment.department_id), now
        )
        transaction.on_commit(lambda: _schedule("offer_waitlist_task", available_from))
    return 1
