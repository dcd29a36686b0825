"""Opening exam resources' time segments (E-2): one place row per capacity unit."""

from __future__ import annotations

from datetime import date, datetime, time

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, PermissionDenied
from yilian.common.policy import Actor
from yilian.exams import rules
from yilian.exams.models import (
    ExamResource,
    ExamSlot,
)
from yilian.exams.services.base import (
    CALENDAR_MANAGE_PERMISSION,
)

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
