"""Exam centre API (``/api/v1/exams/``): orders (ServiceRequest), the one-stop plan (E-5), exam
appointments, resource calendars, physical-exam packages (PE-1).

Refusals carry exactly the codes and HTTP statuses of access.md §0.1: EXAM_CONFLICT and
ORDER_NOT_ACTIVE 422, SLOT_UNAVAILABLE 409, PACKAGE_NOT_ELIGIBLE 422.
"""

# No ``from __future__ import annotations``: ninja resolves annotations through the ``@requires``
# wrapper, whose globals are not this module's.
import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Router, Status

from yilian.common.access import AUTHENTICATED, PUBLIC, STAFF, requires
from yilian.common.errors import InvalidInput, NotFound
from yilian.exams import rules, schemas, selectors, services
from yilian.exams.models import ExamAppointment, ExamOrder, ExamPackage, ExamType, PackageOrder

router = Router(tags=["exams"])


def _order_out(o: ExamOrder) -> dict:
    return {
        "id": o.pk,
        "patient_id": o.patient_id,
        "exam_code": o.exam_type.code,
        "exam_name": o.exam_type.name,
        "status": o.status,
        "fhir_status": rules.fhir_service_request_status(o.status),
        "paid_or_covered": o.paid_or_covered,
        "placer_number": o.placer_number,
        "ordered_by": o.ordered_by_label,
        "created_at": o.created_at,
    }


def _appointment_out(a: ExamAppointment) -> dict:
    return {
        "id": a.pk,
        "order_id": a.order_id,
        "patient_id": a.patient_id,
        "exam_code": a.order.exam_type.code,
        "exam_name": a.order.exam_type.name,
        "resource_id": a.resource_id,
        "resource_name": a.resource.name,
        "site": a.resource.site,
        "location": a.resource.location,
        "service_date": a.service_date,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "status": a.status,
        "fhir_status": a.fhir_status,
        "cancel_reason": a.cancel_reason,
        "preparation": a.preparation,
    }


def plan_out(proposal: services.Proposal) -> dict:
    days = []
    for d in proposal.plan.days:
        items = []
        for i in d.items:
            order = proposal.orders[i.key]
            resource = proposal.resources[i.candidate.resource_id]
            items.append(
                {
                    "order_id": order.pk,
                    "exam_code": order.exam_type.code,
                    "exam_name": order.exam_type.name,
                    "resource_id": resource.pk,
                    "resource_name": resource.name,
                    "site": resource.site,
                    "starts_at": i.candidate.start,
                    "ends_at": i.candidate.end,
                }
            )
        days.append({"date": d.day, "items": items, "preparation": [str(_(line)) for line in d.preparation]})
    return {
        "patient_id": proposal.patient.pk,
        "visit_days": len(proposal.plan.days),
        "optimal": proposal.plan.optimal,
        "days": days,
        "unplanned_order_ids": list(proposal.plan.unplanned),
        "unpaid_order_ids": [o.pk for o in proposal.unpaid],
    }


def _parse_day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat((value or "")[:10])
    except ValueError as exc:
        raise InvalidInput(_("日期格式应为 YYYY-MM-DD。"), field="date") from exc


# --- Orders ---------------------------------------------------------------------------------------


@router.post("/orders", response={200: schemas.OrderRead, 201: schemas.OrderRead}, summary="开具检查申请")
@requires(STAFF)
def create_order(request, payload: schemas.OrderCreate):
    """From a doctor (session) or an integrating system (X-API-Key). 201 new; 200 for a retried
    ``placer_number``."""
    patient = services.access_patient(request.actor, payload.patient_id, purpose="exam_order")
    exam_type = ExamType.objects.filter(code=payload.exam_code, is_active=True).first()
    if exam_type is None:
        raise InvalidInput(_("检查项目编码不存在或已停用。"), field="exam_code")
    order, created = services.place_order(
        actor=request.actor,
        patient=patient,
        exam_type=exam_type,
        paid_or_covered=payload.paid_or_covered,
        placer_number=payload.placer_number,
        clinical_note=payload.clinical_note,
        status=payload.status,
    )
    return Status(201 if created else 200, _order_out(order))


@router.get("/orders", response=list[schemas.OrderRead], summary="检查申请列表")
@requires(AUTHENTICATED)
def list_orders(request, patient_id: int | None = None):
    qs = selectors.orders_visible_to(request.actor).order_by("-created_at", "-id")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    return [_order_out(o) for o in qs[:100]]


@router.post("/orders/{order_id}/paid", response=schemas.OrderRead, summary="登记已缴费/住院记账")
@requires(STAFF)
def mark_paid(request, order_id: int):
    order = services.mark_order_paid(actor=request.actor, order_id=order_id)
    return _order_out(order)


@router.post("/orders/{order_id}/revoke", response=schemas.OrderRead, summary="撤销检查申请")
@requires(STAFF)
def revoke(request, order_id: int, payload: schemas.CancelIn):
    order = services.revoke_order(actor=request.actor, order_id=order_id, reason=payload.reason)
    return _order_out(order)


# --- The one-stop plan (E-5) ------------------------------------------------------------------------


@router.get("/patients/{patient_id}/plan", response=schemas.PlanRead, summary="一站式检查预约方案（推荐）")
@requires(AUTHENTICATED)
def get_plan(request, patient_id: int):
    """The proposal with the fewest visit days for every open, paid order (reads only)."""
    patient = services.access_patient(request.actor, patient_id, purpose="exam_plan")
    return plan_out(services.propose_plan(actor=request.actor, patient=patient))


@router.post(
    "/patients/{patient_id}/plan", response={201: list[schemas.AppointmentRead]}, summary="按方案预约"
)
@requires(AUTHENTICATED)
def book_plan(request, patient_id: int, payload: schemas.PlanBook):
    """Book every item at once or nothing: 422 EXAM_CONFLICT / ORDER_NOT_ACTIVE, 409 SLOT_UNAVAILABLE."""
    patient = services.access_patient(request.actor, patient_id, purpose="exam_book")
    for i, item in enumerate(payload.items):
        if timezone.is_naive(item.starts_at):
            raise InvalidInput(
                _("时间须带时区，例如 2026-12-01T08:00:00+08:00。"), field=f"items[{i}].starts_at"
            )
    booked = services.book_plan(
        actor=request.actor,
        patient=patient,
        plan=[services.Choice(i.order_id, i.resource_id, i.starts_at) for i in payload.items],
    )
    return Status(201, [_appointment_out(a) for a in booked])


# --- Appointments ----------------------------------------------------------------------------------


@router.get("/appointments", response=list[schemas.AppointmentRead], summary="检查预约列表")
@requires(AUTHENTICATED)
def list_appointments(request, patient_id: int | None = None, active: bool = False):
    qs = selectors.appointments_visible_to(request.actor).order_by("starts_at", "id")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if active:
        qs = qs.filter(status__in=rules.ACTIVE)
    return [_appointment_out(a) for a in qs[:200]]


@router.post(
    "/appointments/{appointment_id}/cancel", response=schemas.AppointmentRead, summary="取消检查预约"
)
@requires(AUTHENTICATED)
def cancel(request, appointment_id: int, payload: schemas.CancelIn):
    selectors.access_appointment(request.actor, appointment_id)
    services.cancel_exam_appointment(
        actor=request.actor, appointment_id=appointment_id, reason=payload.reason
    )
    return _appointment_out(selectors.access_appointment(request.actor, appointment_id))


@router.post(
    "/appointments/{appointment_id}/reschedule", response={201: schemas.AppointmentRead}, summary="改约检查"
)
@requires(AUTHENTICATED)
def reschedule(request, appointment_id: int, payload: schemas.RescheduleIn):
    selectors.access_appointment(request.actor, appointment_id)
    if timezone.is_naive(payload.starts_at):
        raise InvalidInput(_("时间须带时区，例如 2026-12-01T08:00:00+08:00。"), field="starts_at")
    moved = services.reschedule(
        actor=request.actor,
        appointment_id=appointment_id,
        resource_id=payload.resource_id,
        starts_at=payload.starts_at,
    )
    return Status(201, _appointment_out(selectors.access_appointment(request.actor, moved.pk)))


# --- Resources and their calendar --------------------------------------------------------------------


@router.get("/resources", response=list[schemas.ResourceRead], summary="检查设备")
@requires(STAFF)
def list_resources(request):
    out = []
    for r in selectors.resources_for(request.actor).prefetch_related("exam_types"):
        out.append(
            {
                "id": r.pk,
                "code": r.code,
                "name": r.name,
                "modality": r.modality,
                "site": r.site,
                "location": r.location,
                "segment_minutes": r.segment_minutes,
                "capacity_per_segment": r.capacity_per_segment,
                "exam_codes": sorted(t.code for t in r.exam_types.all()),
            }
        )
    return out


@router.get("/resources/{resource_id}/calendar", response=schemas.CalendarRead, summary="设备某日时段占用")
@requires(STAFF)
def resource_calendar(request, resource_id: int, date: str = ""):
    resource = selectors.resource_for(request.actor, resource_id)
    day = _parse_day(date) if date else timezone.localdate()
    segments = selectors.calendar([resource], day).get(resource.pk, [])
    return {
        "resource_id": resource.pk,
        "resource_name": resource.name,
        "modality": resource.modality,
        "site": resource.site,
        "date": day,
        "segments": [
            {
                "starts_at": s.starts_at,
                "ends_at": s.ends_at,
                "capacity": s.capacity,
                "booked": s.booked,
                "free": s.free,
                "occupancy": s.occupancy,
                "patients": s.patients,
            }
            for s in segments
        ],
    }


# --- Physical-exam packages (PE-1) ----------------------------------------------------------------------


def _package_out(p: ExamPackage) -> dict:
    return {
        "id": p.pk,
        "code": p.code,
        "name": p.name,
        "description": p.description,
        "price": str(p.price),
        "daily_capacity": p.daily_capacity,
        "items": [
            {
                "name": i.name,
                "sex": i.sex,
                "min_age": i.min_age,
                "max_age": i.max_age,
                "requires_fasting": i.requires_fasting,
            }
            for i in p.items.all()
        ],
    }


def _package_order_out(o: PackageOrder) -> dict:
    return {
        "id": o.pk,
        "package_id": o.package_id,
        "package_name": o.package.name,
        "patient_id": o.patient_id,
        "service_date": o.service_date,
        "status": o.status,
    }


@router.get("/packages", auth=None, response=list[schemas.PackageRead], summary="体检套餐")
@requires(PUBLIC)
def list_packages(request):
    """The catalogue of packages, public like a hospital's price list."""
    return [_package_out(p) for p in selectors.active_packages()]


@router.post(
    "/packages/{package_id}/orders", response={201: schemas.PackageOrderRead}, summary="预约体检套餐"
)
@requires(AUTHENTICATED)
def order_package(request, package_id: int, payload: schemas.PackageOrderCreate):
    """422 PACKAGE_NOT_ELIGIBLE (an item does not apply to the patient), 409 SLOT_UNAVAILABLE (day full)."""
    patient = services.access_patient(request.actor, payload.patient_id, purpose="exam_package")
    package = selectors.active_packages().filter(pk=package_id).first()
    if package is None:
        raise NotFound()
    order = services.order_package(
        actor=request.actor, patient=patient, package=package, service_date=payload.date
    )
    return Status(201, _package_order_out(order))


@router.get("/package-orders", response=list[schemas.PackageOrderRead], summary="体检预约列表")
@requires(AUTHENTICATED)
def list_package_orders(request, patient_id: int | None = None):
    qs = selectors.package_orders_visible_to(request.actor)
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    return [_package_order_out(o) for o in qs[:100]]


@router.post("/package-orders/{order_id}/cancel", response=schemas.PackageOrderRead, summary="取消体检预约")
@requires(AUTHENTICATED)
def cancel_package_order(request, order_id: int):
    order = services.cancel_package_order(actor=request.actor, package_order_id=order_id)
    return _package_order_out(PackageOrder.objects.select_related("package").get(pk=order.pk))
