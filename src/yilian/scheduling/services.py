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


_PICK_SQL = """
UPDATE {slot} SET status = 'booked', available_from = NULL
WHERE id = (
    SELECT id FROM {slot}
    WHERE session_id = %s AND status = 'free' AND pool = ANY(%s)
      AND (available_from IS NULL OR available_from <= %s)
    ORDER BY seq LIMIT 1 FOR UPDATE{skip}
)
RETURNING id, seq, starts_at, ends_at, pool
"""


def _pick_slot(session: ClinicSession, pools: tuple[str, ...], now: datetime) -> Slot | None:
    """B-10: claim the first free, released number of the session.

    PostgreSQL: one statement locks the first free number that no other booking holds
    (``FOR UPDATE SKIP LOCKED``) and flips it, so concurrent bookings take different rows and no
    row is shared. When every free number is locked by bookings in flight, SKIP LOCKED sees none;
    one of those might still roll back, so before answering "none left" we wait (plain FOR UPDATE)
    on the first number that still looks free. That happens only at the tail of a rush, and keeps
    "k numbers, N callers → exactly min(N, k)".

    SQLite (writers serialised by ``BEGIN IMMEDIATE``): pick, then a conditional UPDATE.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for skip in (" SKIP LOCKED", ""):
                cursor.execute(
                    _PICK_SQL.format(slot=Slot._meta.db_table, skip=skip), [session.pk, list(pools), now]
                )
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
        return None
    base = (
        Slot.objects.filter(session_id=session.pk, status=Slot.Status.FREE, pool__in=pools)
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


@transaction.atomic
def _book(
    *, actor: Actor, patient_id: int, session_id: int, key: str, channel: str, now: datetime | None
) -> Booking:
    now = now or timezone.now()
    # Serialises this patient's bookings (B-5, B-6 checks); one patient's row is never hot.
    patient = (
        Patient.objects.select_for_update()
        .filter(pk=patient_id, status=Patient.Status.ACTIVE)
        .only("id", "birth_date", "realname_verified", "status")
        .first()
    )
    session = (
        ClinicSession.objects.select_related("department__organisation", "department__booking_policy")
        .filter(pk=session_id)
        .first()
    )
    if patient is None or session is None:
        raise NotFound()
    params = _parameters_of(session.department)
    # One read, after the patient lock, answers the idempotency key (a replay that raced its
    # original waited for the lock and sees it here), B-5, B-6, B-12 and B-14.
    q_start, q_end = rules.quota_window(session.service_date)
    today = timezone.localdate(now)
    relevant = Q(patient_id=patient.pk) & (
        Q(status__in=rules.COUNTING_FOR_QUOTA, service_date__gte=q_start, service_date__lt=q_end)
        | Q(status__in=rules.ACTIVE_FOR_DUPLICATE, service_date=session.service_date)
        | Q(status=rules.NO_SHOW, service_date__gte=today - timedelta(days=params.escalation_window_days * 2))
        | Q(
            status=rules.CANCELLED,
            cancel_reason=rules.REASON_PATIENT,
            cancelled_at__gte=now - timedelta(days=params.cancel_abuse_window_days * 2),
        )
    )
    if key:
        relevant |= Q(created_by_id=actor.user_id, idempotency_key=key)
    rows = list(
        Appointment.objects.filter(relevant).values(
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
    )
    existing_id = _match_key(rows, actor, key, patient_id, session_id)
    if existing_id is not None:
        _check_may_book_for(actor, patient, session.department, session.service_date)
        return Booking(Appointment.objects.select_related("slot").get(pk=existing_id), False)
    history = [
        (
            r["status"],
            r["service_date"],
            r["period"],
            r["department_id"],
            r["cancel_reason"],
            r["cancelled_at"],
        )
        for r in rows
        if r["patient_id"] == patient.pk
    ]
    kind = _check_may_book_for(actor, patient, session.department, session.service_date)
    if kind == "patient" and channel == rules.CHANNEL_COUNTER:
        raise InvalidInput(_("患者账号不能使用窗口渠道。"), field="channel")
    if not patient.realname_verified:  # B-1
        raise errors.RealnameRequired()
    if session.status != ClinicSession.Status.OPEN:
        raise errors.SessionStopped()
    if now < session.release_at:  # B-3
        raise errors.NotYetReleased(
            _("该出诊单元将于 %(at)s 放号。")
            % {"at": timezone.localtime(session.release_at).strftime("%Y-%m-%d %H:%M")},
            release_at=timezone.localtime(session.release_at).isoformat(),
        )
    same_day_counter = channel == rules.CHANNEL_COUNTER and timezone.localdate(now) == session.service_date
    closes = session.ends_at if channel == rules.CHANNEL_COUNTER else rules.close_at(session.ends_at, params)
    if now >= closes:  # B-4
        raise errors.BookingClosed()

    if not same_day_counter:  # B-12 (b): same-day registration at the counter is still allowed
        until = rules.suspended_until(
            now,
            [h[1] for h in history if h[0] == rules.NO_SHOW],
            [h[5] for h in history if h[0] == rules.CANCELLED and h[4] == rules.REASON_PATIENT and h[5]],
            params,
        )
        if until is not None:
            shown = timezone.localtime(until).strftime("%Y-%m-%d %H:%M")
            raise errors.BookingSuspended(
                errors.BookingSuspended.default_message % {"until": shown},
                until=timezone.localtime(until).isoformat(),
            )
    if any(  # B-5
        h[0] in rules.ACTIVE_FOR_DUPLICATE
        and h[1] == session.service_date
        and h[2] == session.period
        and h[3] == session.department_id
        for h in history
    ):
        raise errors.DuplicateSessionBooking()
    exceeded = rules.quota_exceeded(  # B-6
        session.service_date,
        [h[1] for h in history if h[0] in rules.COUNTING_FOR_QUOTA and q_start <= h[1] < q_end],
        params,
    )
    if exceeded:
        raise errors.QuotaExceeded(window=exceeded)

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
        Slot.objects.filter(pk=appointment.slot_id).update(
            status=Slot.Status.FREE, available_from=now + rules.rerelease_delay(params)
        )
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
    # Slots first: this UPDATE waits for any booking holding a number's lock, so every booking
    # that can still commit is visible to the appointment query below (READ COMMITTED).
    Slot.objects.filter(session_id=session.pk).update(status=Slot.Status.UNAVAILABLE, available_from=None)
    session.status = ClinicSession.Status.STOPPED
    session.stopped_at = now
    session.stop_reason = reason
    session.save(update_fields=["status", "stopped_at", "stop_reason"])
    to_cancel = list(
        Appointment.objects.select_for_update(of=("self",))
        .filter(session_id=session.pk, status__in=[Appointment.Status.HELD, Appointment.Status.BOOKED])
        .select_related("patient", "slot", "created_by__patient_account")
    )
    for appointment in to_cancel:
        previous = appointment.status
        appointment.status = Appointment.Status.CANCELLED
        appointment.cancel_reason = Appointment.CancelReason.PROVIDER
        appointment.cancelled_at = now
        appointment.save(update_fields=["status", "cancel_reason", "cancelled_at"])
        _history(appointment, previous, actor, now, reason)
        audit.record(actor, "scheduling.cancel_by_stop", target=_target(appointment), reason=reason)
        _notify_stopped(session, appointment, reason)
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
