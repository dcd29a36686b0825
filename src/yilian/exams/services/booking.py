"""The one-stop plan and booking it (access.md §2 E-1..E-5, L-1 audit).

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
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from yilian.common import audit
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.exams import errors, rules
from yilian.exams.models import (
    ExamAppointment,
    ExamOrder,
    ExamResource,
    ExamSlot,
)
from yilian.exams.services.base import (
    _cancel,
    _history,
    _recipient,
    _target,
    access_patient,
    check_may_book_for,
    parameters,
    specs_for,
)
from yilian.patients.models import Patient

logger = logging.getLogger("yilian")

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
