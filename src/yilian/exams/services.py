"""Every write of the exam appointment centre: access.md §2 E-1..E-5, PE-1, L-1 (audit).

Booking a plan (``book_plan``) is one transaction, all or nothing: the patient's row is locked
(one patient's bookings are serialised; that row is never hot), every order is checked (E-1), the
whole day is re-checked against the patient's other appointments (E-3, E-4), a previous
appointment of a rebooked order is cancelled and its place freed, and each new place is claimed
like an outpatient number (B-10): PostgreSQL ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP
LOCKED)`` so concurrent bookers take different rows of a segment; SQLite (writers serialised by
``BEGIN IMMEDIATE``) a conditional UPDATE. Partial unique indexes keep E-1 and E-2 true even if a
check were missed.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.exams import errors, rules
from yilian.exams.models import (
    ExamAppointment,
    ExamAppointmentHistory,
    ExamOrder,
    ExamPackage,
    ExamResource,
    ExamSlot,
    ExamType,
    PackageOrder,
)
from yilian.patients import selectors as patient_selectors
from yilian.patients.models import FamilyLink, Patient

logger = logging.getLogger("yilian")

# Until the lead adds exam permissions (see the report): ordering needs a doctor's role (or an
# integrating system's key with patient.update); booking for a patient at the centre's desk needs
# patient.view over the patient (the gate ``patients.selectors.access_patient``); managing the
# calendar (opening segments) needs org.manage over the resource's organisation.
ORDERING_ROLES = frozenset({policy.DOCTOR, policy.VILLAGE_DOCTOR})
SYSTEM_ORDER_PERMISSION = policy.PATIENT_UPDATE
DESK_PERMISSION = policy.PATIENT_VIEW
CALENDAR_MANAGE_PERMISSION = policy.ORG_MANAGE


def parameters() -> rules.ExamParameters:
    """The §2 parameters: ``YILIAN_EXAM_SITE_GAP_MINUTES`` may override the E-3 gap."""
    gap = getattr(settings, "YILIAN_EXAM_SITE_GAP_MINUTES", rules.DEFAULTS.site_gap_minutes)
    return rules.ExamParameters(site_gap_minutes=int(gap))


def _target(appointment: ExamAppointment) -> audit.Target:
    return audit.Target("exams.ExamAppointment", appointment.pk, appointment.patient_id)


def _history(
    appointment: ExamAppointment, from_status: str, actor: Actor, at: datetime, reason: str = ""
) -> None:
    ExamAppointmentHistory.objects.create(
        appointment=appointment,
        from_status=from_status,
        to_status=appointment.status,
        at=at,
        by_id=actor.user_id,
        reason=reason[:200],
    )


def access_patient(actor: Actor, patient_id: int, *, purpose: str = "exams") -> Patient:
    """A patient account reaches the patients it manages; staff and systems go through the patients
    gate (``DESK_PERMISSION`` over the home organisation, audited). Forbidden and missing look alike."""
    if actor.kind == "patient":
        if patient_id not in actor.managed_patient_ids:
            raise NotFound()
        patient = Patient.objects.filter(pk=patient_id, status=Patient.Status.ACTIVE).first()
        if patient is None:
            raise NotFound()
        return patient
    if not actor.is_staff_member:
        raise NotFound()
    return patient_selectors.access_patient(actor, patient_id, purpose=purpose)


def specs_for(exam_types) -> dict[int, rules.ExamSpec]:
    """Rule data of exam types (E-4), with the ``must_precede`` codes in one query."""
    ids = [t.pk for t in exam_types]
    precede: dict[int, set[str]] = defaultdict(set)
    through = ExamType.must_precede.through
    for row in through.objects.filter(from_examtype_id__in=ids).values(
        "from_examtype_id", "to_examtype__code"
    ):
        precede[row["from_examtype_id"]].add(row["to_examtype__code"])
    return {t.pk: t.spec(frozenset(precede[t.pk])) for t in exam_types}


# --- Calendar set-up -------------------------------------------------------------------------------


def _publish(resource: ExamResource, service_date: date, periods: list[tuple[time, time]]) -> int:
    rows = []
    for start, end in periods:
        if end <= start:
            raise InvalidInput(_("时段的结束时间必须晚于开始时间。"), field="periods")
        for seg_start, seg_end in rules.segments(start, end, resource.segment_minutes):
            for place in range(1, resource.capacity_per_segment + 1):
                rows.append(
                    ExamSlot(
                        resource=resource,
                        service_date=service_date,
                        starts_at=rules.local_datetime(service_date, seg_start),
                        ends_at=rules.local_datetime(service_date, seg_end),
                        place=place,
                    )
                )
    ExamSlot.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    return len(rows)


@transaction.atomic
def open_segments(
    *,
    actor: Actor,
    resource: ExamResource,
    service_date: date,
    periods: list[tuple[time, time]],
    now: datetime | None = None,
) -> int:
    """Publish a resource's time segments for a day (E-2): ``capacity_per_segment`` place rows per
    segment of ``segment_minutes`` within each period. Idempotent: existing places are kept."""
    now = now or timezone.now()
    if not (
        actor.is_staff_member and policy.covers(actor, CALENDAR_MANAGE_PERMISSION, resource.organisation.path)
    ):
        raise PermissionDenied()
    if service_date < timezone.localdate(now):
        raise InvalidInput(_("日期不能早于今天。"), field="service_date")
    count = _publish(resource, service_date, periods)
    audit.record(
        actor,
        "exams.segments_open",
        target=audit.Target("exams.ExamResource", resource.pk),
        detail={"date": service_date.isoformat(), "places": count},
    )
    return count


@transaction.atomic
def seed_segments(*, resource: ExamResource, service_date: date, periods: list[tuple[time, time]]) -> int:
    """Reference data for a new installation or the demo (``yilian exams_seed``), audited as system."""
    count = _publish(resource, service_date, periods)
    audit.record(
        None,
        "exams.segments_open",
        target=audit.Target("exams.ExamResource", resource.pk),
        detail={"date": service_date.isoformat(), "places": count, "seed": True},
    )
    return count


def check_may_book_for(actor: Actor, patient: Patient) -> None:
    """A patient account books the patients it manages; staff at the centre need ``DESK_PERMISSION``
    over the patient's home organisation. Forbidden looks like missing."""
    if actor.kind == "patient":
        if patient.pk not in actor.managed_patient_ids:
            raise NotFound()
        return
    if not (actor.is_staff_member and policy.covers(actor, DESK_PERMISSION, patient.home_org.path)):
        raise NotFound()


# --- Orders (ServiceRequest) -------------------------------------------------------------------------


@transaction.atomic
def place_order(
    *,
    actor: Actor,
    patient: Patient,
    exam_type: ExamType,
    paid_or_covered: bool = False,
    placer_number: str = "",
    clinical_note: str = "",
    status: str = rules.ORDER_ACTIVE,
) -> tuple[ExamOrder, bool]:
    """Place an exam order (开检查申请, FHIR ServiceRequest) from a doctor or an integrating system.

    Returns ``(order, created)``: a retried call with the same ``placer_number`` from the same
    organisation returns the first order (``created=False``).
    """
    placer_number = (placer_number or "").strip()
    if len(placer_number) > 40:
        raise InvalidInput(_("申请单号不能超过 40 个字符。"), field="placer_number")
    if status not in (rules.ORDER_DRAFT, rules.ORDER_ACTIVE):
        raise InvalidInput(_("新申请的状态只能是草稿或生效。"), field="status")
    path = patient.home_org.path
    if actor.kind == "system":
        if not policy.covers(actor, SYSTEM_ORDER_PERMISSION, path):
            raise NotFound()
        label = actor.label
        staff_id = None
    else:
        holds = any(a.role in ORDERING_ROLES and path.startswith(a.org_path) for a in actor.assignments)
        if not (actor.is_staff_member and holds):
            raise PermissionDenied(_("只有医生可以开具检查申请。"))
        label = actor.label
        staff_id = actor.staff_id
    if patient.status != Patient.Status.ACTIVE:
        raise NotFound()
    if not exam_type.is_active:
        raise InvalidInput(_("该检查项目已停用。"), field="exam_type")
    organisation_id = actor.primary_org_id
    if organisation_id is None:
        raise PermissionDenied()
    if placer_number:
        existing = ExamOrder.objects.filter(
            organisation_id=organisation_id, placer_number=placer_number
        ).first()
        if existing is not None:
            if existing.patient_id != patient.pk or existing.exam_type_id != exam_type.pk:
                raise InvalidInput(_("该申请单号已用于另一位患者或另一个检查项目。"), field="placer_number")
            return existing, False
    order = ExamOrder(
        patient=patient,
        exam_type=exam_type,
        organisation_id=organisation_id,
        ordered_by_id=staff_id,
        ordered_by_label=label[:120] or "-",
        placer_number=placer_number,
        status=status,
        paid_or_covered=paid_or_covered,
        clinical_note=clinical_note[:200],
    )
    order.full_clean(validate_constraints=False)
    order.save()
    audit.record(
        actor,
        "exams.order_place",
        target=audit.Target("exams.ExamOrder", order.pk, patient.pk),
        detail={"exam": exam_type.code, "paid": paid_or_covered},
    )
    return order, True


@transaction.atomic
def mark_order_paid(*, actor: Actor, order_id: int) -> ExamOrder:
    """The charging system (or the cashier) reports an order paid (E-1)."""
    order = (
        ExamOrder.objects.select_for_update().select_related("patient__home_org").filter(pk=order_id).first()
    )
    if order is None or not (
        actor.is_staff_member and policy.covers(actor, policy.PATIENT_UPDATE, order.patient.home_org.path)
    ):
        raise NotFound()
    if order.status not in (rules.ORDER_DRAFT, rules.ORDER_ACTIVE):
        raise errors.OrderNotActive()
    order.paid_or_covered = True
    order.save(update_fields=["paid_or_covered", "updated_at"])
    audit.record(
        actor, "exams.order_paid", target=audit.Target("exams.ExamOrder", order.pk, order.patient_id)
    )
    return order


@transaction.atomic
def revoke_order(*, actor: Actor, order_id: int, reason: str = "") -> ExamOrder:
    """Revoke an order (撤销申请, ServiceRequest ``revoked``); its active appointment is cancelled."""
    now = timezone.now()
    order = (
        ExamOrder.objects.select_for_update().select_related("patient__home_org").filter(pk=order_id).first()
    )
    if order is None:
        raise NotFound()
    path = order.patient.home_org.path
    may = (actor.kind == "system" and policy.covers(actor, SYSTEM_ORDER_PERMISSION, path)) or any(
        a.role in ORDERING_ROLES and path.startswith(a.org_path) for a in actor.assignments
    )
    if not may:
        raise NotFound()
    if not rules.can_transition(rules.ORDER_TRANSITIONS, order.status, rules.ORDER_REVOKED):
        raise errors.OrderNotActive(_("该检查申请已完成或已撤销。"))
    for appointment in ExamAppointment.objects.select_for_update().filter(
        order=order, status__in=rules.ACTIVE
    ):
        _cancel(appointment, actor=actor, reason_code=rules.REASON_PROVIDER, reason=reason, now=now)
    order.status = rules.ORDER_REVOKED
    order.save(update_fields=["status", "updated_at"])
    audit.record(
        actor,
        "exams.order_revoke",
        target=audit.Target("exams.ExamOrder", order.pk, order.patient_id),
        reason=reason,
    )
    return order


# --- Planning (E-5) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A proposed plan with the rows it refers to, for pages and the API."""

    patient: Patient
    plan: rules.Plan
    orders: dict[int, ExamOrder]
    resources: dict[int, ExamResource]
    unpaid: list[ExamOrder]


def open_orders(patient: Patient) -> list[ExamOrder]:
    """Active orders of the patient without an active appointment (E-1), oldest first."""
    booked = ExamAppointment.objects.filter(patient=patient, status__in=rules.ACTIVE).values("order_id")
    return list(
        ExamOrder.objects.filter(patient=patient, status=rules.ORDER_ACTIVE)
        .exclude(pk__in=booked)
        .select_related("exam_type")
        .order_by("created_at", "id")
    )


def _fixed_appointments(patient: Patient, exclude_orders: set[int], specs_cache: dict) -> list[rules.Placed]:
    rows = list(
        ExamAppointment.objects.filter(patient=patient, status__in=rules.ACTIVE)
        .exclude(order_id__in=exclude_orders)
        .select_related("order__exam_type", "resource")
    )
    types = [r.order.exam_type for r in rows if r.order.exam_type_id not in specs_cache]
    specs_cache.update(specs_for(types))
    return [
        rules.Placed(
            f"appointment:{r.pk}", specs_cache[r.order.exam_type_id], r.starts_at, _end(r), r.resource.site
        )
        for r in rows
    ]


def _end(appointment) -> datetime:
    """The exam's interval for E-3: its segment, longer if the exam itself is longer."""
    duration = timedelta(minutes=appointment.order.exam_type.duration_minutes)
    return max(appointment.ends_at, appointment.starts_at + duration)


def propose_plan(*, actor: Actor, patient: Patient, now: datetime | None = None) -> Proposal:
    """E-5: the plan with the fewest visit days for all open, paid orders of the patient, within
    the horizon, respecting E-3/E-4 and the patient's existing appointments. Reads only."""
    check_may_book_for(actor, patient)
    now = now or timezone.now()
    params = parameters()
    orders = open_orders(patient)
    unpaid = [o for o in orders if not o.paid_or_covered]
    orders = [o for o in orders if o.paid_or_covered][: params.max_orders]
    specs = specs_for({o.exam_type for o in orders})
    earliest = now + timedelta(minutes=params.lead_minutes)
    last_day = timezone.localdate(now) + timedelta(days=params.horizon_days)
    type_ids = {o.exam_type_id for o in orders}
    resources = {
        r.pk: r
        for r in ExamResource.objects.filter(is_active=True, exam_types__in=type_ids)
        .distinct()
        .prefetch_related("exam_types")
    }
    free = (
        ExamSlot.objects.filter(
            resource_id__in=list(resources),
            status=rules.SLOT_FREE,
            starts_at__gte=earliest,
            service_date__lte=last_day,
        )
        .values("resource_id", "starts_at", "ends_at")
        .annotate(free=Count("id"))
        .order_by("starts_at", "resource_id")
    )
    by_type: dict[int, list[rules.Candidate]] = defaultdict(list)
    can_do = {rid: {t.pk for t in r.exam_types.all()} for rid, r in resources.items()}
    duration = {o.exam_type_id: timedelta(minutes=o.exam_type.duration_minutes) for o in orders}
    for row in free:
        for type_id in can_do[row["resource_id"]] & type_ids:
            end = max(row["ends_at"], row["starts_at"] + duration[type_id])
            by_type[type_id].append(
                rules.Candidate(row["resource_id"], resources[row["resource_id"]].site, row["starts_at"], end)
            )
    requests = [rules.Request(o.pk, specs[o.exam_type_id], tuple(by_type[o.exam_type_id])) for o in orders]
    fixed = _fixed_appointments(patient, set(), dict(specs))
    plan = rules.plan_visits(requests, fixed, params)
    return Proposal(
        patient=patient, plan=plan, orders={o.pk: o for o in orders}, resources=resources, unpaid=unpaid
    )


# --- Booking -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One item of a plan to book: the order, the resource and the segment start."""

    order_id: int
    resource_id: int
    starts_at: datetime


def choices_from(plan: rules.Plan) -> list[Choice]:
    return [Choice(i.key, i.candidate.resource_id, i.candidate.start) for i in plan.items]


_CLAIM_SQL = """
UPDATE {slot} SET status = 'booked'
WHERE id = (
    SELECT id FROM {slot}
    WHERE resource_id = %s AND starts_at = %s AND status = 'free'
    ORDER BY place LIMIT 1 FOR UPDATE{skip}
)
RETURNING id
"""


def _claim(resource_id: int, starts_at: datetime) -> int | None:
    """E-2 / B-10: claim a free place of the segment. PostgreSQL: ``SKIP LOCKED`` so concurrent
    bookers take different places; if every free place is locked by bookings in flight, wait on one
    (one of them may roll back) before answering "full". SQLite: conditional UPDATE."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for skip in (" SKIP LOCKED", ""):
                cursor.execute(
                    _CLAIM_SQL.format(slot=ExamSlot._meta.db_table, skip=skip), [resource_id, starts_at]
                )
                row = cursor.fetchone()
                if row is not None:
                    return row[0]
        return None
    for _attempt in range(3):
        slot_id = (
            ExamSlot.objects.filter(resource_id=resource_id, starts_at=starts_at, status=rules.SLOT_FREE)
            .order_by("place")
            .values_list("id", flat=True)
            .first()
        )
        if slot_id is None:
            return None
        if ExamSlot.objects.filter(pk=slot_id, status=rules.SLOT_FREE).update(status=rules.SLOT_BOOKED):
            return slot_id
    return None


def _cancel(
    appointment: ExamAppointment, *, actor: Actor, reason_code: str, reason: str, now: datetime
) -> None:
    before = appointment.status
    if not rules.can_transition(rules.APPOINTMENT_TRANSITIONS, before, rules.CANCELLED):
        raise errors.InvalidTransition()
    appointment.status = rules.CANCELLED
    appointment.cancel_reason = reason_code
    appointment.cancelled_at = now
    appointment.save(update_fields=["status", "cancel_reason", "cancelled_at"])
    ExamSlot.objects.filter(pk=appointment.slot_id, status=rules.SLOT_BOOKED).update(status=rules.SLOT_FREE)
    _history(appointment, before, actor, now, reason)
    audit.record(
        actor,
        "exams.appointment_cancel",
        target=_target(appointment),
        reason=reason,
        detail={"code": reason_code},
    )


def _conflict(found: list[rules.Violation]) -> errors.ExamConflict:
    messages = [gettext(v.message) if isinstance(v.message, str) else str(v.message) for v in found]
    return errors.ExamConflict(
        gettext("检查时间安排冲突：%(list)s") % {"list": "；".join(messages)},
        violations=[
            {"rule": v.rule, "code": v.code, "message": m} for v, m in zip(found, messages, strict=True)
        ],
    )


def book_plan(
    *, actor: Actor, patient: Patient, plan: list[Choice], now: datetime | None = None
) -> list[ExamAppointment]:
    """Book every item of a plan at once, or nothing (E-1..E-4). See the module docstring.

    A resubmitted plan (double click) whose items are already booked at the same segments returns
    those appointments unchanged. An item for an order that already has an appointment elsewhere
    rebooks it: the old appointment is cancelled (reason ``oth-rescheduled``) in the same
    transaction (E-1).
    """
    if not plan:
        raise InvalidInput(_("预约方案为空：没有需要预约的检查。"), field="items")
    if len(plan) > rules.DEFAULTS.max_orders:
        raise InvalidInput(_("一次最多预约 10 项检查。"), field="items")
    if len({c.order_id for c in plan}) != len(plan):
        raise InvalidInput(_("同一检查申请在方案中出现了多次。"), field="items")
    check_may_book_for(actor, patient)
    try:
        return _book_plan(actor=actor, patient=patient, plan=plan, now=now or timezone.now())
    except IntegrityError as exc:  # a unique index caught what a check let through: never a 500
        logger.warning("Exam booking for patient %s hit a unique index", patient.pk)
        raise errors.SlotUnavailable() from exc
    except OperationalError as exc:
        # PostgreSQL broke a lock cycle (40P01) or a serialisation conflict (40001): nothing was
        # written; the caller may simply ask again.
        if getattr(exc.__cause__, "sqlstate", None) in {"40P01", "40001"}:
            logger.warning("Exam booking for patient %s lost a lock race; refused as full", patient.pk)
            raise errors.SlotUnavailable() from exc
        raise


@transaction.atomic
def _book_plan(*, actor: Actor, patient: Patient, plan: list[Choice], now: datetime) -> list[ExamAppointment]:
    params = parameters()
    locked = Patient.objects.select_for_update().filter(pk=patient.pk, status=Patient.Status.ACTIVE).first()
    if locked is None:
        raise NotFound()
    orders = {
        o.pk: o
        for o in ExamOrder.objects.select_for_update()
        .filter(pk__in=[c.order_id for c in plan])
        .select_related("exam_type")
    }
    resources = {r.pk: r for r in ExamResource.objects.filter(pk__in=[c.resource_id for c in plan])}
    for i, c in enumerate(plan):
        order = orders.get(c.order_id)
        if order is None or order.patient_id != patient.pk:
            raise NotFound(_("检查申请不存在。"), field=f"items[{i}].order_id")
        if order.status != rules.ORDER_ACTIVE or not order.paid_or_covered:  # E-1
            raise errors.OrderNotActive(
                gettext("%(exam)s：该检查申请未生效或尚未缴费，暂不能预约。")
                % {"exam": order.exam_type.name},
                order_id=order.pk,
            )
        resource = resources.get(c.resource_id)
        if resource is None or not resource.is_active:
            raise NotFound(_("检查设备不存在。"), field=f"items[{i}].resource_id")
        if c.starts_at <= now:
            raise InvalidInput(_("不能预约已经开始或过去的时段。"), field=f"items[{i}].starts_at")
        if not resource.exam_types.filter(pk=order.exam_type_id).exists():
            raise InvalidInput(
                gettext("%(resource)s不能做%(exam)s。")
                % {"resource": resource.name, "exam": order.exam_type.name},
                field=f"items[{i}].resource_id",
            )

    current = {
        a.order_id: a
        for a in ExamAppointment.objects.select_for_update()
        .filter(order_id__in=list(orders), status__in=rules.ACTIVE)
        .select_related("order__exam_type", "resource")
    }
    unchanged = [
        c
        for c in plan
        if c.order_id in current
        and (current[c.order_id].resource_id, current[c.order_id].starts_at) == (c.resource_id, c.starts_at)
    ]
    if len(unchanged) == len(plan):
        return [current[c.order_id] for c in plan]

    # The segment of each choice (it must exist), then E-3 / E-4 over the whole plan and the
    # patient's other appointments.
    segments = {}
    for i, c in enumerate(plan):
        seg = (
            ExamSlot.objects.filter(resource_id=c.resource_id, starts_at=c.starts_at)
            .values("service_date", "ends_at")
            .first()
        )
        if seg is None:
            raise InvalidInput(_("该设备在所选时间没有检查时段。"), field=f"items[{i}].starts_at")
        segments[c.order_id] = seg
    specs = specs_for({o.exam_type for o in orders.values()})
    fixed = _fixed_appointments(patient, set(orders), dict(specs))
    placed = []
    for c in plan:
        order = orders[c.order_id]
        duration = timedelta(minutes=order.exam_type.duration_minutes)
        end = max(segments[c.order_id]["ends_at"], c.starts_at + duration)
        placed.append(
            rules.Placed(order.pk, specs[order.exam_type_id], c.starts_at, end, resources[c.resource_id].site)
        )
    found = rules.violations(fixed + placed, params)
    if found:
        raise _conflict(found)

    # First free every place this plan gives up (E-1: the previous appointments of rebooked
    # orders), then claim the new ones, so an item may move into a place another item leaves.
    moving = [c for c in plan if c not in unchanged]
    for c in moving:
        previous = current.get(c.order_id)
        if previous is not None:
            _cancel(previous, actor=actor, reason_code=rules.REASON_RESCHEDULED, reason="rebooked", now=now)
    booked: list[ExamAppointment] = [current[c.order_id] for c in unchanged]
    # Claim in one global order (resource, time), so two plans racing for the same places never
    # wait on each other in a cycle.
    for c in sorted(moving, key=lambda c: (c.resource_id, c.starts_at)):
        order = orders[c.order_id]
        rebooked = c.order_id in current
        slot_id = _claim(c.resource_id, c.starts_at)
        if slot_id is None:
            raise errors.SlotUnavailable(
                gettext("%(resource)s %(at)s 的时段已约满，请重新获取推荐方案。")
                % {
                    "resource": resources[c.resource_id].name,
                    "at": timezone.localtime(c.starts_at).strftime("%m-%d %H:%M"),
                }
            )
        appointment = ExamAppointment.objects.create(
            order=order,
            patient=patient,
            resource_id=c.resource_id,
            slot_id=slot_id,
            service_date=segments[c.order_id]["service_date"],
            starts_at=c.starts_at,
            ends_at=segments[c.order_id]["ends_at"],
            status=rules.BOOKED,
            booked_by_id=actor.user_id,
            booked_at=now,
        )
        _history(appointment, "", actor, now, "rebooked" if rebooked else "")
        audit.record(
            actor,
            "exams.appointment_book",
            target=_target(appointment),
            detail={"order": order.pk, "resource": c.resource_id, "rebooked": rebooked},
        )
        booked.append(appointment)
    booked.sort(key=lambda a: a.starts_at)

    # Preparation instructions per visit day (E-4), stored on each appointment and sent.
    by_day: dict[date, list[ExamAppointment]] = defaultdict(list)
    for a in ExamAppointment.objects.filter(
        patient=patient, status__in=rules.ACTIVE, service_date__in={b.service_date for b in booked}
    ).select_related("order__exam_type", "resource"):
        by_day[a.service_date].append(a)
    all_specs = specs_for({a.order.exam_type for day in by_day.values() for a in day})
    for items in by_day.values():
        items.sort(key=lambda a: a.starts_at)
        text = "\n".join(
            gettext(line)
            for line in rules.preparation_for_day([all_specs[a.order.exam_type_id] for a in items])
        )
        ExamAppointment.objects.filter(pk__in=[a.pk for a in items]).update(preparation=text)
    for b in booked:
        b.refresh_from_db()
    _notify_booked(patient, booked, actor)
    return booked


def _recipient(patient: Patient, actor: Actor):
    """The account to tell: the booking patient account, else the patient's own (self) account."""
    from yilian.accounts.models import User

    if actor.kind == "patient" and actor.user_id:
        return User.objects.filter(pk=actor.user_id).first(), None
    link = (
        FamilyLink.objects.filter(patient=patient, relationship=FamilyLink.Relationship.SELF)
        .select_related("account__user")
        .first()
    )
    if link is None:
        return None, None
    return link.account.user, link.account.phone


def _notify_booked(patient: Patient, booked: list[ExamAppointment], actor: Actor) -> None:
    """Tell the patient the times and the preparation (E-4): inbox of the account, SMS."""
    from yilian.notifications import services as notification_services

    recipient, account_phone = _recipient(patient, actor)
    lines = []
    for a in sorted(booked, key=lambda a: a.starts_at):
        lines.append(
            gettext("%(when)s %(exam)s（%(where)s）")
            % {
                "when": timezone.localtime(a.starts_at).strftime("%m月%d日 %H:%M"),
                "exam": a.order.exam_type.name,
                "where": f"{a.resource.site}{a.resource.location}",
            }
        )
    preparation = []
    for a in booked:
        for line in a.preparation.splitlines():
            if line not in preparation:
                preparation.append(line)
    body = gettext("%(name)s，您的检查已预约：%(list)s。检查前准备：%(prep)s") % {
        "name": patient.name,
        "list": "；".join(lines),
        "prep": " ".join(preparation),
    }
    notification_services.notify(
        recipient=recipient,
        template_code="exam_booked",
        context={"title": gettext("检查预约成功"), "body": body, "patient_name": patient.name},
        phone=(account_phone or patient.phone or None),
        link="/exams/my/",
    )


def reschedule(
    *, actor: Actor, appointment_id: int, resource_id: int, starts_at: datetime, now: datetime | None = None
) -> ExamAppointment:
    """Move an appointment to another segment: cancel + book atomically (E-1, §8 $reschedule)."""
    appointment = ExamAppointment.objects.filter(pk=appointment_id).first()
    if appointment is None:
        raise NotFound()
    patient = access_patient(actor, appointment.patient_id, purpose="exam_reschedule")
    if appointment.status != rules.BOOKED or appointment.starts_at <= (now or timezone.now()):
        raise errors.InvalidTransition(_("只能改约尚未开始的已预约检查。"))
    return book_plan(
        actor=actor, patient=patient, plan=[Choice(appointment.order_id, resource_id, starts_at)], now=now
    )[0]


@transaction.atomic
def cancel_exam_appointment(
    *, actor: Actor, appointment_id: int, reason: str = "", now: datetime | None = None
) -> ExamAppointment:
    """Cancel an exam appointment; its place returns to the pool at once and the order is open again."""
    now = now or timezone.now()
    appointment = ExamAppointment.objects.select_for_update().filter(pk=appointment_id).first()
    if appointment is None:
        raise NotFound()
    access_patient(actor, appointment.patient_id, purpose="exam_cancel")
    if appointment.starts_at <= now:
        raise errors.InvalidTransition(_("检查时段已开始或已过，不能取消。"))
    if (
        actor.kind == "patient" and appointment.status != rules.BOOKED
    ):  # §8: arrived → cancelled is the hospital's
        raise errors.InvalidTransition(_("已签到的检查请到检查科室登记台办理取消。"))
    code = rules.REASON_PATIENT if actor.kind == "patient" else rules.REASON_PROVIDER
    _cancel(appointment, actor=actor, reason_code=code, reason=reason[:200], now=now)
    return appointment


# --- Physical-exam packages (PE-1) --------------------------------------------------------------------


def package_problems(package: ExamPackage, patient: Patient, day: date) -> list[str]:
    """PE-1: the reasons the patient cannot take the package (plain Chinese), empty if eligible."""
    items = [rules.PackageItemSpec(i.name, i.sex, i.min_age, i.max_age) for i in package.items.all()]
    texts = {
        "sex": _("%(item)s 不适用于该性别"),
        "too_young": _("%(item)s 不适用于该年龄（年龄过小）"),
        "too_old": _("%(item)s 不适用于该年龄（年龄过大）"),
    }
    return [
        str(texts[code]) % {"item": name}
        for name, code in rules.ineligible_items(items, sex=patient.sex, birth=patient.birth_date, day=day)
    ]


def order_package(
    *, actor: Actor, patient: Patient, package: ExamPackage, service_date: date, now: datetime | None = None
) -> PackageOrder:
    """Book a physical-exam package on a day (PE-1): eligibility of every item (sex, age), then one
    numbered place of the daily capacity. Places are claimed by inserting the lowest free numbers in
    random order under a unique index, so concurrent bookers rarely meet on one row and never
    exceed the capacity."""
    check_may_book_for(actor, patient)
    now = now or timezone.now()
    today = timezone.localdate(now)
    if service_date <= today:
        raise InvalidInput(_("体检日期须从明天起选择。"), field="date")
    if service_date > today + timedelta(days=30):
        raise InvalidInput(_("体检最多可提前 30 天预约。"), field="date")
    if not package.is_active:
        raise NotFound()
    problems = package_problems(package, patient, service_date)
    if problems:
        raise errors.PackageNotEligible(
            gettext("该套餐含有不适用的项目：%(list)s。") % {"list": "；".join(problems)}, items=problems
        )
    for _attempt in range(5):
        try:
            return _claim_package_place(
                actor=actor, patient=patient, package=package, service_date=service_date, now=now
            )
        except IntegrityError:
            if PackageOrder.objects.filter(
                patient=patient, service_date=service_date, status=rules.PACKAGE_BOOKED
            ).exists():
                raise InvalidInput(_("该就诊人当天已有体检预约。"), field="date") from None
            continue
    raise errors.SlotUnavailable(_("该套餐当天名额正在被抢约，请稍后重试。"))


@transaction.atomic
def _claim_package_place(
    *, actor: Actor, patient: Patient, package: ExamPackage, service_date: date, now: datetime
) -> PackageOrder:
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    if PackageOrder.objects.filter(
        patient=patient, service_date=service_date, status=rules.PACKAGE_BOOKED
    ).exists():
        raise InvalidInput(_("该就诊人当天已有体检预约。"), field="date")
    taken = set(
        PackageOrder.objects.filter(
            package=package, service_date=service_date, status=rules.PACKAGE_BOOKED
        ).values_list("place", flat=True)
    )
    free = [p for p in range(1, package.daily_capacity + 1) if p not in taken]
    if not free:
        raise errors.SlotUnavailable(_("该套餐当天名额已约满，请选择其他日期。"))
    place = random.choice(free[:8])
    order = PackageOrder.objects.create(
        package=package,
        patient=patient,
        service_date=service_date,
        place=place,
        booked_by_id=actor.user_id,
        booked_at=now,
    )
    audit.record(
        actor,
        "exams.package_order",
        target=audit.Target("exams.PackageOrder", order.pk, patient.pk),
        detail={"package": package.code, "date": service_date.isoformat()},
    )
    from yilian.notifications import services as notification_services

    recipient, account_phone = _recipient(patient, actor)
    fasting = package.items.filter(requires_fasting=True).exists()
    body = gettext("%(name)s，您已预约%(date)s的%(package)s。%(prep)s") % {
        "name": patient.name,
        "date": service_date.strftime("%m月%d日"),
        "package": package.name,
        "prep": (gettext(rules.NOTE_FASTING) + " " if fasting else "") + package.preparation,
    }
    notification_services.notify(
        recipient=recipient,
        template_code="exam_package_booked",
        context={"title": gettext("体检预约成功"), "body": body},
        phone=(account_phone or patient.phone or None),
        link="/exams/my/",
    )
    return order


@transaction.atomic
def cancel_package_order(*, actor: Actor, package_order_id: int, now: datetime | None = None) -> PackageOrder:
    now = now or timezone.now()
    order = PackageOrder.objects.select_for_update().filter(pk=package_order_id).first()
    if order is None:
        raise NotFound()
    access_patient(actor, order.patient_id, purpose="exam_package_cancel")
    if order.status != rules.PACKAGE_BOOKED or order.service_date <= timezone.localdate(now):
        raise errors.InvalidTransition(_("只能在体检日前一天及更早取消已预约的体检。"))
    order.status = rules.PACKAGE_CANCELLED
    order.cancelled_at = now
    order.save(update_fields=["status", "cancelled_at"])
    audit.record(
        actor, "exams.package_cancel", target=audit.Target("exams.PackageOrder", order.pk, order.patient_id)
    )
    return order
