"""Reads of the exam centre. Patient data only through scoped querysets and gates that answer
"forbidden" and "missing" alike (ARCHITECTURE.md)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count, Q, QuerySet

from yilian.common import masking, policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.exams import rules
from yilian.exams.models import ExamAppointment, ExamOrder, ExamPackage, ExamResource, ExamSlot, PackageOrder
from yilian.exams.services import DESK_PERMISSION


def _patient_scope(actor: Actor, prefix: str = "patient__") -> Q | None:
    """A filter on the patient of a row: the managed patients of an account, or the subtrees where
    staff hold ``DESK_PERMISSION``; ``None`` when the actor sees nobody."""
    if actor.kind == "patient":
        return Q(**{f"{prefix}id__in": sorted(actor.managed_patient_ids)})
    if not actor.is_staff_member:
        return None
    paths = policy.scope_paths(actor, DESK_PERMISSION)
    if not paths:
        return None
    q = Q()
    for path in paths:
        q |= Q(**{f"{prefix}home_org__path__startswith": path})
    return q


def appointments_visible_to(actor: Actor) -> QuerySet[ExamAppointment]:
    scope = _patient_scope(actor)
    if scope is None:
        return ExamAppointment.objects.none()
    return ExamAppointment.objects.filter(scope).select_related("order__exam_type", "resource", "patient")


def orders_visible_to(actor: Actor) -> QuerySet[ExamOrder]:
    scope = _patient_scope(actor)
    if scope is None:
        return ExamOrder.objects.none()
    return ExamOrder.objects.filter(scope).select_related("exam_type", "patient")


def package_orders_visible_to(actor: Actor) -> QuerySet[PackageOrder]:
    scope = _patient_scope(actor)
    if scope is None:
        return PackageOrder.objects.none()
    return PackageOrder.objects.filter(scope).select_related("package", "patient")


def access_appointment(actor: Actor, appointment_id: int) -> ExamAppointment:
    found = appointments_visible_to(actor).filter(pk=appointment_id).first()
    if found is None:
        raise NotFound()
    return found


def active_packages() -> QuerySet[ExamPackage]:
    return ExamPackage.objects.filter(is_active=True).prefetch_related("items")


def resources_for(actor: Actor) -> QuerySet[ExamResource]:
    """The devices of the organisations the staff member can see (reference data, no patient data)."""
    if not actor.is_staff_member:
        return ExamResource.objects.none()
    paths = policy.scope_paths(actor, policy.ORG_VIEW)
    q = Q()
    for path in paths:
        q |= Q(organisation__path__startswith=path)
    if not paths:
        return ExamResource.objects.none()
    return ExamResource.objects.filter(q, is_active=True).select_related("organisation")


def resource_for(actor: Actor, resource_id: int) -> ExamResource:
    found = resources_for(actor).filter(pk=resource_id).first()
    if found is None:
        raise NotFound()
    return found


@dataclass
class Segment:
    starts_at: datetime
    ends_at: datetime
    capacity: int = 0
    booked: int = 0
    blocked: int = 0
    patients: list[dict] = field(default_factory=list)

    @property
    def free(self) -> int:
        return self.capacity - self.booked - self.blocked

    @property
    def occupancy(self) -> str:
        """A colour band for the calendar: free / busy (≥ half) / full."""
        if self.capacity == 0 or self.free <= 0:
            return "full"
        return "busy" if self.booked * 2 >= self.capacity else "free"


def calendar(resources: list[ExamResource], day: date) -> dict[int, list[Segment]]:
    """Segments of each resource on ``day`` with capacity, booked places and masked patient names
    (E-2). Two queries whatever the number of resources."""
    ids = [r.pk for r in resources]
    out: dict[int, dict[datetime, Segment]] = defaultdict(dict)
    for row in (
        ExamSlot.objects.filter(resource_id__in=ids, service_date=day)
        .values("resource_id", "starts_at", "ends_at", "status")
        .annotate(n=Count("id"))
        .order_by("starts_at")
    ):
        seg = out[row["resource_id"]].setdefault(row["starts_at"], Segment(row["starts_at"], row["ends_at"]))
        seg.capacity += row["n"]
        if row["status"] == rules.SLOT_BOOKED:
            seg.booked += row["n"]
        elif row["status"] == rules.SLOT_BLOCKED:
            seg.blocked += row["n"]
    for a in (
        ExamAppointment.objects.filter(resource_id__in=ids, service_date=day, status__in=rules.ACTIVE)
        .select_related("patient", "order__exam_type")
        .order_by("starts_at", "id")
    ):
        seg = out[a.resource_id].get(a.starts_at)
        if seg is not None:
            seg.patients.append(
                {
                    "appointment_id": a.pk,
                    "name": masking.mask_name(a.patient.name),
                    "exam": a.order.exam_type.name,
                }
            )
    return {rid: sorted(segs.values(), key=lambda s: s.starts_at) for rid, segs in out.items()}


@dataclass(frozen=True)
class WaitingPatient:
    patient_id: int
    name: str
    open_orders: int


def patients_with_open_orders(actor: Actor, limit: int = 30) -> list[WaitingPatient]:
    """Patients in the actor's scope with active orders not yet booked (the centre's work list)."""
    scope = _patient_scope(actor)
    if scope is None:
        return []
    booked = ExamAppointment.objects.filter(status__in=rules.ACTIVE).values("order_id")
    rows = (
        ExamOrder.objects.filter(scope, status=rules.ORDER_ACTIVE)
        .exclude(pk__in=booked)
        .values("patient_id", "patient__name")
        .annotate(n=Count("id"))
        .order_by("patient__name", "patient_id")[:limit]
    )
    return [WaitingPatient(r["patient_id"], masking.mask_name(r["patient__name"]), r["n"]) for r in rows]
