"""Reads of triage and queue calling: today's queues, the display boards (Q-10, Q-11) and a
patient's own ticket. Patient data only through gates that answer "forbidden" and "missing" alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from yilian.common import policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.queueing import rules, services
from yilian.queueing.models import Display, Queue, QueueEntry, QueueEvent

SPOKEN = (QueueEvent.Kind.CALLED, QueueEvent.Kind.RECALLED, QueueEvent.Kind.PRECALLED)


def queues_visible_to(actor: Actor, day: date | None = None) -> QuerySet[Queue]:
    """Today's queues of the organisations where the actor may view patients."""
    day = day or timezone.localdate()
    paths = policy.scope_paths(actor, policy.PATIENT_VIEW) if actor.is_staff_member else []
    if not paths:
        return Queue.objects.none()
    from django.db.models import Q

    scope = Q()
    for path in paths:
        scope |= Q(session__department__organisation__path__startswith=path)
    return (
        Queue.objects.filter(scope, session__service_date=day)
        .select_related("session__department__organisation", "session__doctor", "room", "current__patient")
        .order_by("session__department__name", "session__starts_at", "id")
    )


def access_queue(actor: Actor, queue_id: int) -> Queue:
    queue = (
        Queue.objects.select_related("session__department__organisation", "session__doctor", "room")
        .filter(pk=queue_id)
        .first()
    )
    if queue is None or not services.may_view_queue(actor, queue):
        raise NotFound()
    return queue


def access_entry_for_staff(actor: Actor, entry_id: int) -> QueueEntry:
    entry = QueueEntry.objects.select_related("queue__session__department__organisation", "patient").filter(
        pk=entry_id
    )
    found = entry.first()
    if found is None or not services.may_view_queue(actor, found.queue):
        raise NotFound()
    return found


def access_own_ticket(actor: Actor, entry_id: int) -> QueueEntry:
    """A patient account sees only the tickets of the patients it manages; others get NOT_FOUND."""
    entry = (
        QueueEntry.objects.select_related(
            "queue__session__department", "queue__session__doctor", "queue__room"
        )
        .select_related("patient")
        .filter(pk=entry_id)
        .first()
    )
    if entry is None or actor.kind != "patient" or entry.patient_id not in actor.managed_patient_ids:
        raise NotFound()
    return entry


def tickets_of_patient_account(actor: Actor, day: date | None = None) -> list[QueueEntry]:
    day = day or timezone.localdate()
    return list(
        QueueEntry.objects.filter(patient_id__in=actor.managed_patient_ids, visit_date=day)
        .exclude(state__in=[rules.VOIDED, rules.LEFT])
        .select_related("queue__session__department", "queue__room", "patient")
        .order_by("signed_in_at")
    )


# --- display boards ---------------------------------------------------------------------------------


def _row(entry: QueueEntry) -> dict[str, Any]:
    """A screen row: number, masked name (Q-10), priority tag, lane."""
    return {
        "id": entry.pk,
        "seq": entry.seq,
        "name": rules.mask_name(entry.patient.name),
        "tag": entry.priority_tag,
        "lane": entry.lane,
    }


def board(queue: Queue, *, next_count: int | None = None) -> dict[str, Any]:
    """The display JSON of one queue (Q-10): the patient with the doctor, the next patients in
    predicted order, the 过号 column, and the last call (event id + Q-11 voice text)."""
    params = services.parameters(queue)
    next_count = params.room_screen_next if next_count is None else next_count
    order = services.predicted_order(queue)
    current = None
    if queue.current_id:
        entry = QueueEntry.objects.select_related("patient").filter(pk=queue.current_id).first()
        if entry is not None and entry.state in rules.WITH_DOCTOR:
            current = _row(entry)
    missed = (
        QueueEntry.objects.filter(queue=queue, state=rules.MISSED).select_related("patient").order_by("seq")
    )
    last = (
        QueueEvent.objects.filter(queue=queue, kind__in=SPOKEN)
        .select_related("entry__patient")
        .order_by("-id")
        .first()
    )
    room = queue.room.name if queue.room else queue.session.department.name
    session = queue.session
    return {
        "queue_id": queue.pk,
        "room": queue.room.name if queue.room else "",
        "department": session.department.name,
        "doctor": session.doctor.name if session.doctor else "",
        "current": current,
        "next": [_row(e) for e in order[:next_count]],
        "waiting_count": len(order),
        "missed": [_row(e) for e in missed],
        "last_call": (
            {
                "event_id": last.pk,
                "queue_id": queue.pk,
                # A pre-call is spoken as the pre-call only; the screen shows it masked.
                "text": "" if last.kind == QueueEvent.Kind.PRECALLED else last.text,
                "screen_text": (
                    rules.precall_text(last.entry.seq, rules.mask_name(last.entry.patient.name))
                    if last.kind == QueueEvent.Kind.PRECALLED
                    else rules.call_text(last.entry.seq, rules.mask_name(last.entry.patient.name), room)
                ),
                "precall": (
                    last.text
                    if last.kind == QueueEvent.Kind.PRECALLED
                    else last.detail.get("precall", "")
                    if last.kind == QueueEvent.Kind.CALLED
                    else ""
                ),
                "repeat": params.call_repeat,
                "at": last.at.isoformat(),
            }
            if last
            else None
        ),
    }


def display_by_token(token: str) -> Display:
    if not token or len(token) > 64:
        raise NotFound()
    display = (
        Display.objects.select_related("room__department", "organisation")
        .filter(token_hash=services.hash_display_token(token), is_active=True)
        .first()
    )
    if display is None:
        raise NotFound()
    return display


SCREEN_GRACE_MINUTES = 30  # an ended session stays on the screen this long [DECISION]


def display_queues(display: Display, day: date | None = None) -> list[Queue]:
    """The queues a screen shows: today's queues of its room or zone whose session has not ended
    more than SCREEN_GRACE_MINUTES ago (the morning's queues leave the afternoon screen)."""
    from datetime import timedelta

    day = day or timezone.localdate()
    since = timezone.now() - timedelta(minutes=SCREEN_GRACE_MINUTES)
    base = Queue.objects.filter(session__service_date=day, session__ends_at__gt=since).select_related(
        "session__department", "session__doctor", "room"
    )
    if display.kind == Display.Kind.ROOM:
        base = base.filter(room=display.room)
    else:
        base = base.filter(room__zone=display.zone, room__department__organisation=display.organisation)
    return list(base.order_by("room__name", "session__starts_at", "id"))


def display_version(queues: list[Queue]) -> str:
    """A cheap ETag for conditional polling: the last event of the screen's queues."""
    last = QueueEvent.objects.filter(queue__in=queues).aggregate(m=Max("id"))["m"] or 0
    return f'"q{last}-{len(queues)}-{",".join(str(q.pk) for q in queues)}"'


def display_board(display: Display, day: date | None = None) -> dict[str, Any]:
    """The room screen (current + next ROOM_SCREEN_NEXT) or the zone screen (per doctor: current
    + next ZONE_SCREEN_WAITING + 过号), Q-10."""
    queues = display_queues(display, day)
    count = (
        rules.DEFAULTS.room_screen_next
        if display.kind == Display.Kind.ROOM
        else rules.DEFAULTS.zone_screen_waiting
    )
    boards = [board(q, next_count=count) for q in queues]
    calls = [b["last_call"] for b in boards if b["last_call"]]
    latest = max(calls, key=lambda c: c["event_id"]) if calls else None
    return {
        "display": display.name,
        "kind": display.kind,
        "queues": boards,
        "last_call": latest,
        "calls": sorted(calls, key=lambda c: c["event_id"]),
        "version": display_version(queues),
    }


@dataclass(frozen=True)
class DeskRow:
    queue: Queue
    waiting: int
    missed: list[QueueEntry]


def desk_rows(actor: Actor) -> list[DeskRow]:
    rows = []
    for queue in queues_visible_to(actor):
        waiting = QueueEntry.objects.filter(queue=queue, state=rules.WAITING).count()
        missed = list(
            QueueEntry.objects.filter(queue=queue, state=rules.MISSED)
            .select_related("patient")
            .order_by("seq")
        )
        rows.append(DeskRow(queue, waiting, missed))
    return rows


def access_queue_fresh(queue_id: int) -> Queue:
    """Re-read a queue the caller was already allowed to act on (after a service changed it)."""
    return Queue.objects.select_related("session__department", "session__doctor", "room").get(pk=queue_id)


def appointments_to_sign_in(actor: Actor, day: date | None = None) -> list:
    """Today's booked appointments of the account's patients that have no live ticket yet (the
    phone sign-in list)."""
    from yilian.scheduling import rules as scheduling_rules
    from yilian.scheduling import selectors as scheduling_selectors

    day = day or timezone.localdate()
    live = QueueEntry.objects.exclude(state__in=[rules.VOIDED, rules.LEFT]).filter(
        appointment_id__isnull=False
    )
    return list(
        scheduling_selectors.appointments_visible_to(actor)
        .filter(service_date=day, status=scheduling_rules.BOOKED, session__status="open")
        .exclude(pk__in=live.values("appointment_id"))
        .order_by("slot__starts_at", "id")
    )
