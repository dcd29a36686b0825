"""Waitlist (候补), access.md B-20, and payment holds, B-8."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from yilian.common import audit
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.scheduling import errors, rules
from yilian.scheduling.models import (
    Appointment,
    AppointmentStatusHistory,
    ClinicSession,
    Slot,
    WaitlistEntry,
)
from yilian.scheduling.services.base import (
    _free_slot,
    _history,
    _lock_patient,
    _parameters_of,
    _schedule,
    _session_with_policy,
    _skip_locked,
    _target,
    _visible_appointment_for_update,
    parameters_for,
)
from yilian.scheduling.services.booking import (
    _check_may_book_for,
    _check_patient_rules,
    _check_session_open_for,
    _patient_history,
)

logger = logging.getLogger("yilian")


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
