"""Schedule set-up (出诊排班) and doctor stop (停诊): access.md B-15, B-17, B-19."""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit
from yilian.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.community.models import Department, Staff
from yilian.scheduling import rules
from yilian.scheduling.models import (
    Appointment,
    ClinicSession,
    Slot,
    WaitlistEntry,
)
from yilian.scheduling.services.base import (
    MAX_WINDOW_CAPACITY,
    _history,
    _may_manage_schedule,
    _target,
    parameters_for,
)

logger = logging.getLogger("yilian")


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
