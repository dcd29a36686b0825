"""Booking and cancellation (预约挂号, 退号): access.md B-1..B-10, B-16.

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

import logging
import time as time_module
from datetime import UTC, date, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.community.models import Department
from yilian.patients.models import FamilyLink, Patient
from yilian.scheduling import errors, rules
from yilian.scheduling.models import (
    Appointment,
    BookingPolicy,
    ClinicSession,
    Slot,
    WaitlistEntry,
)
from yilian.scheduling.services.base import (
    DESK_BOOKING_PERMISSION,
    GUARDIAN_AGE,
    IDEMPOTENCY_KEY_MAX,
    Booking,
    _free_slot,
    _history,
    _lock_patient,
    _parameters_of,
    _schedule,
    _session_has_waiting,
    _session_with_policy,
    _target,
    _visible_appointment_for_update,
    parameters_for,
)

logger = logging.getLogger("yilian")


# --- Booking -------------------------------------------------------------------------------------------


def _refers_into(actor: Actor, hospital_path: str) -> bool:
    """B-17: the actor books at a member institution below the hospital (township centre, village
    clinic) — the hospital's own desk is not a referral."""
    return any(
        a.org_path.startswith(hospital_path)
        and a.org_path != hospital_path
        and DESK_BOOKING_PERMISSION in policy.ROLE_PERMISSIONS.get(a.role, ())
        for a in actor.assignments
    )


def _check_may_book_for(
    actor: Actor, patient: Patient, department: Department, service_date: date, channel: str = ""
) -> str:
    """B-16: a patient account books only patients it manages (under 14: only as guardian); desk
    staff need the desk permission over the department's organisation. B-17: the referral channel
    is for member institutions of the community only. Returns the channel kind."""
    if channel == rules.CHANNEL_REFERRAL:
        if actor.kind != "staff" or not _refers_into(actor, department.organisation.path):
            raise errors.ReferralRequired(
                _("转诊预留号只能由医共体成员单位（乡镇卫生院、村卫生室）凭转诊单预约。")
            )
        return "referral"
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
    segment_start: datetime | None = None,
    referral_ref: str = "",
) -> Booking:
    """Book the next free number of a session for a patient (预约挂号), B-1..B-17.

    Idempotent per booking account and key: a replay (also one racing the original) returns the
    original appointment with ``created=False``: the key is looked up after the patient's row lock,
    so a racing replay waits for its original and finds it. The transaction is ``_book``; an
    ``IntegrityError`` from a unique index is turned into the answer it means. With
    ``segment_start`` the number is taken from that time segment (分时段, B-19) only.
    """
    key = (idempotency_key or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput(_("幂等键不能超过 64 个字符。"), field="idempotency_key")
    if channel not in rules.CHANNELS:
        raise InvalidInput(_("预约渠道无效。"), field="channel")
    referral_ref = (referral_ref or "").strip()
    if len(referral_ref) > rules.REFERRAL_REF_MAX:
        raise InvalidInput(_("转诊单号不能超过 40 个字符。"), field="referral_ref")
    if channel == rules.CHANNEL_REFERRAL and not referral_ref:
        raise errors.ReferralRequired(_("医共体转诊预约必须填写转诊单号。"), field="referral_ref")
    if channel != rules.CHANNEL_REFERRAL and referral_ref:
        raise InvalidInput(_("只有医共体转诊渠道才填写转诊单号。"), field="referral_ref")
    if actor.user_id is None:
        raise PermissionDenied()
    if _sold_out_for_patient(actor, patient_id, session_id, key, now or timezone.now()):
        raise errors.SlotUnavailable()
    try:
        return _book(
            actor=actor,
            patient_id=patient_id,
            session_id=session_id,
            key=key,
            channel=channel,
            now=now,
            segment_start=segment_start,
            referral_ref=referral_ref,
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


_SOLD_OUT_SQL = """
SELECT s.status, s.release_at, s.ends_at, p.close_minutes_before_end,
       NOT EXISTS (SELECT 1 FROM {slot} f WHERE f.session_id = s.id AND f.status = 'free' AND NOT f.for_waitlist),
       EXISTS (SELECT 1 FROM {appointment} a WHERE a.created_by_id = %s AND a.idempotency_key = %s AND a.idempotency_key <> '')
FROM {session} s LEFT JOIN {policy} p ON p.department_id = s.department_id
WHERE s.id = %s
"""


def _sold_out_for_patient(actor: Actor, patient_id: int, session_id: int, key: str, now: datetime) -> bool:
    """The rush's fast refusal (B-10): most requests at 07:00 arrive after the last number went.

    One read, before any lock: a patient account booking for a patient it manages, in an open,
    released session that has not closed (B-3, B-4, B-15), where no number is free in any pool and
    this is not the replay of an earlier booking (its key is unknown), is told "no numbers left"
    without taking the patient lock or reading the patient's history. Anything else — a number
    that still looks free (even one held by a booking in flight), a stopped or unreleased session,
    a replay, a desk booking — takes the full path, so the answer is the same one ``_book`` would
    give for a sold-out session, only cheaper.
    """
    if actor.kind != "patient" or patient_id not in actor.managed_patient_ids:
        return False
    sql = _SOLD_OUT_SQL.format(
        slot=Slot._meta.db_table,
        appointment=Appointment._meta.db_table,
        session=ClinicSession._meta.db_table,
        policy=BookingPolicy._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [actor.user_id, key, session_id])
        row = cursor.fetchone()
    if row is None:
        return False
    status, release_at, ends_at, close_minutes, sold_out, replay = row
    if not sold_out or replay or status != ClinicSession.Status.OPEN:
        return False
    if close_minutes is None:
        close_minutes = rules.DEFAULTS.close_minutes_before_end
    # SQLite hands back naive datetimes in UTC (USE_TZ); PostgreSQL aware ones.
    release_at, ends_at = (
        v if timezone.is_aware(v) else timezone.make_aware(v, UTC) for v in (release_at, ends_at)
    )
    return release_at <= now < ends_at - timedelta(minutes=close_minutes)


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


def _pick_slot(
    session: ClinicSession, pools: tuple[str, ...], now: datetime, segment_start: datetime | None = None
) -> Slot | None:
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
        free = _FREE_WHERE + (" AND starts_at = %s" if segment_start is not None else "")
        claim = _CLAIM_SQL.format(slot=table, free=free)
        any_free = _ANY_FREE_SQL.format(slot=table, free=free)
        params = [session.pk, list(pools), now]
        if segment_start is not None:
            params.append(segment_start)
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
        .filter(**({"starts_at": segment_start} if segment_start is not None else {}))
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
    """Stopped (B-15), release (B-3; referrals from REFERRAL_LEAD_DAYS earlier, B-17) and close
    (B-4; the counter books until the session ends)."""
    if session.status != ClinicSession.Status.OPEN:
        raise errors.SessionStopped()
    opens = (
        rules.referral_opens_at(session.service_date, params)
        if channel == rules.CHANNEL_REFERRAL
        else session.release_at
    )
    if now < opens:
        raise errors.NotYetReleased(
            _("该出诊单元将于 %(at)s 放号。") % {"at": timezone.localtime(opens).strftime("%Y-%m-%d %H:%M")},
            release_at=timezone.localtime(opens).isoformat(),
        )
    closes = session.ends_at if channel == rules.CHANNEL_COUNTER else rules.close_at(session.ends_at, params)
    if now >= closes:
        raise errors.BookingClosed()


@transaction.atomic
def _book(
    *,
    actor: Actor,
    patient_id: int,
    session_id: int,
    key: str,
    channel: str,
    now: datetime | None,
    segment_start: datetime | None = None,
    referral_ref: str = "",
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
        _check_may_book_for(actor, patient, session.department, session.service_date, channel)
        return Booking(Appointment.objects.select_related("slot").get(pk=existing_id), False)
    kind = _check_may_book_for(actor, patient, session.department, session.service_date, channel)
    if kind == "patient" and channel == rules.CHANNEL_COUNTER:
        raise InvalidInput(_("患者账号不能使用窗口渠道。"), field="channel")
    if not patient.realname_verified:  # B-1
        raise errors.RealnameRequired()
    _check_session_open_for(session, params, now, channel)
    # B-12 (b): same-day registration at the counter is still allowed during a suspension.
    same_day_counter = channel == rules.CHANNEL_COUNTER and timezone.localdate(now) == session.service_date
    _check_patient_rules(rows, patient.pk, session, params, now, check_suspension=not same_day_counter)

    if channel == rules.CHANNEL_COUNTER:
        pools = rules.counter_pools(now, session.starts_at, params)
    elif channel == rules.CHANNEL_REFERRAL:
        pools = rules.referral_pools(now, session.service_date, params)
    else:
        pools = rules.public_pools(now, session.starts_at, params)
    if (
        segment_start is not None
        and not Slot.objects.filter(session=session, starts_at=segment_start).exists()
    ):
        raise InvalidInput(_("所选分时段不属于该出诊单元，请重新选择。"), field="segment_start")
    if channel == rules.CHANNEL_REFERRAL:  # B-17: the reserve first, then (after release) public
        slot = None
        for pool in pools:
            slot = _pick_slot(session, (pool,), now, segment_start)
            if slot is not None:
                break
    else:
        slot = _pick_slot(session, pools, now, segment_start)
    if slot is None:  # B-10
        if segment_start is not None:
            raise errors.SlotUnavailable(_("该分时段的号源已约满，请选择其他时段，或加入候补。"))
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
        referral_ref=referral_ref,
        created_by_id=actor.user_id,
        booked_at=now,
    )
    _history(appointment, "", actor, now)
    audit.record(
        actor,
        "scheduling.book",
        target=_target(appointment),
        detail={"session": session.pk, "seq": slot.seq, "channel": channel, "referral": referral_ref},
    )
    return Booking(appointment, True)


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
