"""Scheduling API (``/api/v1/scheduling/``): availability, booking, cancellation, doctor stop.

Refusals carry exactly the codes and HTTP statuses of access.md §0.1 (``scheduling.errors``).
"""

# No ``from __future__ import annotations``: ninja resolves annotations through the ``@requires``
# wrapper, whose globals are not this module's.
import datetime

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from ninja import Header, Router, Status

from yilian.common import policy
from yilian.common.access import AUTHENTICATED, PUBLIC, STAFF, requires
from yilian.common.errors import InvalidInput
from yilian.common.middleware import client_ip
from yilian.community.models import Department, Staff
from yilian.scheduling import rules, schemas, selectors, services
from yilian.scheduling.models import Appointment
from yilian.scheduling.services import limits

router = Router(tags=["scheduling"])

# Booking and cancelling are open to patient accounts (for the patients they manage) and to desk
# staff (with the desk permission); the service decides. The declared permission is therefore the
# honest, weaker one: any signed-in caller.
signed_in = requires(AUTHENTICATED)


def _session_out(entry: selectors.SessionAvailability) -> dict:
    s = entry.session
    return {
        "id": s.pk,
        "department_id": s.department_id,
        "department_name": s.department.name,
        "doctor_id": s.doctor_id,
        "doctor_name": s.doctor.name if s.doctor else "",
        "service_date": s.service_date,
        "period": s.period,
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "fee_class": s.fee_class,
        "status": s.status,
        "fhir_active": s.fhir_active,
        "release_at": s.release_at,
        "released": entry.released,
        "closed": entry.closed,
        "free": entry.free if entry.released else 0,
        "windows": [
            {"starts_at": w.starts_at, "ends_at": w.ends_at, "free": w.free if entry.released else 0}
            for w in entry.windows
        ],
    }


def _appointment_out(a: Appointment) -> dict:
    slot = a.slot
    return {
        "id": a.pk,
        "patient_id": a.patient_id,
        "session_id": a.session_id,
        "department_id": a.department_id,
        "service_date": a.service_date,
        "period": a.period,
        "seq": slot.seq,
        "segment_start": slot.starts_at,
        "segment_end": slot.ends_at,
        "arrive_by": rules.arrive_by(slot.starts_at),
        "status": a.status,
        "fhir_status": a.fhir_status,
        "cancel_reason": a.cancel_reason,
        "channel": a.channel,
        "referral_ref": a.referral_ref,
        "booked_at": a.booked_at,
        "cancelled_at": a.cancelled_at,
    }


@router.get("/sessions", auth=None, response=list[schemas.SessionRead], summary="查询科室某日出诊与余号")
@requires(PUBLIC)
def list_sessions(request, department: int, date: str):
    """Public availability (号源余量) by time segment; reserved numbers are never shown (B-17).
    Rate-limited per account and address (B-18): 429 ``RATE_LIMITED`` with ``retry_after``."""
    limits.check_rate(actor=request.actor, ip=client_ip(request), kind=limits.AVAILABILITY)
    try:
        day = datetime.date.fromisoformat(date[:10])
    except ValueError as exc:
        raise InvalidInput(_("日期格式应为 YYYY-MM-DD。"), field="date") from exc
    return [_session_out(e) for e in selectors.available_sessions(department_id=department, service_date=day)]


@router.post("/sessions", response={201: schemas.SessionRead}, summary="新建出诊单元（生成号源）")
@requires(STAFF)
def create_session(request, payload: schemas.SessionCreate):
    """Staff with the schedule permission create a session and its numbered slots (the service checks)."""
    department = get_object_or_404(Department, pk=payload.department_id)
    doctor = get_object_or_404(Staff, pk=payload.doctor_id) if payload.doctor_id else None
    session = services.create_session(
        actor=request.actor,
        department=department,
        doctor=doctor,
        service_date=payload.service_date,
        period=payload.period,
        windows=[(w.start, w.end, w.capacity) for w in payload.windows],
        special=payload.special,
    )
    entry = next(
        e
        for e in selectors.available_sessions(department_id=department.pk, service_date=session.service_date)
        if e.session.pk == session.pk
    )
    return Status(201, _session_out(entry))


@router.post(
    "/appointments",
    response={200: schemas.AppointmentRead, 201: schemas.AppointmentRead},
    summary="预约挂号（幂等）",
)
@signed_in
def book(
    request,
    payload: schemas.AppointmentCreate,
    idempotency_key: str = Header(default="", alias="Idempotency-Key", max_length=64),
):
    """Book the next free number (in ``segment_start``, if given). 201 for a new booking, 200 for a replay of the same
    ``Idempotency-Key`` (header or body). Refusals: access.md §0.1; 429 ``RATE_LIMITED`` (B-18)."""
    limits.check_rate(actor=request.actor, ip=client_ip(request), kind=limits.BOOK)
    result = services.book_appointment(
        actor=request.actor,
        patient_id=payload.patient_id,
        session_id=payload.session_id,
        idempotency_key=idempotency_key or payload.idempotency_key,
        channel=payload.channel,
        segment_start=_aware(payload.segment_start),
        referral_ref=payload.referral_ref,
    )
    return Status(201 if result.created else 200, _appointment_out(result.appointment))


def _aware(value):
    """A segment start without a UTC offset is hospital wall-clock time."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=rules.HOSPITAL_TZ)


@router.get("/appointments", response=list[schemas.AppointmentRead], summary="我的预约 / 窗口可见的预约")
@signed_in
def list_appointments(request, patient_id: int | None = None):
    qs = selectors.appointments_visible_to(request.actor).order_by("-service_date", "-id")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    return [_appointment_out(a) for a in qs[:100]]


@router.post(
    "/appointments/{appointment_id}/cancel", response=schemas.AppointmentRead, summary="取消预约（退号）"
)
@signed_in
def cancel(request, appointment_id: int, payload: schemas.CancelIn):
    appointment = services.cancel_appointment(
        actor=request.actor, appointment_id=appointment_id, reason=payload.reason
    )
    return _appointment_out(selectors.access_appointment(request.actor, appointment.pk))


@router.post(
    "/appointments/{appointment_id}/correct-no-show",
    response=schemas.AppointmentRead,
    summary="更正爽约记录（爽约 → 录入错误）",
)
@requires(policy.SCHEDULE_MANAGE)
def correct_no_show(request, appointment_id: int, payload: schemas.NoShowCorrectionIn):
    """B-13: a schedule manager corrects a wrongly recorded no-show, with a reason (audited); the
    no-show leaves the counts and any suspension is re-evaluated at the next booking."""
    appointment = services.correct_no_show(
        actor=request.actor, appointment_id=appointment_id, reason=payload.reason
    )
    return _appointment_out(appointment)


@router.post("/sessions/{session_id}/stop", response=schemas.SessionRead, summary="停诊")
@requires(STAFF)
def stop(request, session_id: int, payload: schemas.StopIn):
    """B-15: the session's own doctor or the schedule managers; every booking is cancelled and notified."""
    session = services.stop_session(actor=request.actor, session_id=session_id, reason=payload.reason)
    entry = next(
        e
        for e in selectors.available_sessions(
            department_id=session.department_id, service_date=session.service_date
        )
        if e.session.pk == session.pk
    )
    return _session_out(entry)


def _entry_out(entry) -> dict:
    return {
        "id": entry.pk,
        "session_id": entry.session_id,
        "patient_id": entry.patient_id,
        "status": entry.status,
        "position": selectors.waitlist_position(entry),
        "created_at": entry.created_at,
        "offered_appointment_id": entry.appointment_id,
    }


@router.post("/sessions/{session_id}/waitlist", response={201: schemas.WaitlistRead}, summary="加入候补")
@signed_in
def join_waitlist(request, session_id: int, payload: schemas.WaitlistCreate):
    """B-20: join a full session's waitlist; 409 ``SLOTS_AVAILABLE`` while numbers are free."""
    entry = services.join_waitlist(actor=request.actor, patient_id=payload.patient_id, session_id=session_id)
    return Status(201, _entry_out(entry))


@router.post("/waitlist/{entry_id}/leave", response=schemas.WaitlistRead, summary="取消候补")
@signed_in
def leave_waitlist(request, entry_id: int):
    return _entry_out(services.leave_waitlist(actor=request.actor, entry_id=entry_id))


@router.post(
    "/appointments/{appointment_id}/confirm", response=schemas.AppointmentRead, summary="确认锁号（支付完成）"
)
@signed_in
def confirm(request, appointment_id: int):
    """B-8: a HELD appointment (e.g. a waitlist offer) becomes BOOKED; 422 ``HOLD_EXPIRED`` when late."""
    appointment = services.confirm_hold(actor=request.actor, appointment_id=appointment_id)
    return _appointment_out(selectors.access_appointment(request.actor, appointment.pk))
