"""Exam orders (检查申请, FHIR ServiceRequest): placed by doctors or integrating systems (E-1)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.exams import errors, rules
from yilian.exams.models import (
    ExamAppointment,
    ExamOrder,
    ExamType,
)
from yilian.exams.services.base import (
    ORDER_PERMISSION,
    _cancel,
)
from yilian.patients.models import Patient

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
    if not (actor.is_staff_member and policy.covers(actor, ORDER_PERMISSION, path)):
        if actor.kind == "system":
            raise NotFound()
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
    if not (actor.is_staff_member and policy.covers(actor, ORDER_PERMISSION, path)):
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
