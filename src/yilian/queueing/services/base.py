"""Shared pieces of the queue services: who may do what, the Q-7 state of a queue, row locks,
events and the hand-over to scheduling (see the package docstring)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.queueing import errors, rules
from yilian.queueing.models import Queue, QueueEntry, QueueEvent
from yilian.scheduling import services as scheduling_services
from yilian.scheduling.models import ClinicSession

CERTIFICATE_MAX = 60
RECENT_CONSULTATIONS = 10


@dataclass(frozen=True)
class Ticket:
    """A ticket with its place: ``ahead`` patients predicted before it, ``wait_minutes`` estimate."""

    entry: QueueEntry
    ahead: int
    wait_minutes: int
    created: bool = True


# --- who may do what -----------------------------------------------------------------------------------


def _org_path(queue: Queue) -> str:
    return queue.session.department.organisation.path


def _check_desk(actor: Actor, queue: Queue) -> None:
    """Sign-in at a desk or kiosk: staff who may scan cards in the department's organisation."""
    if not (actor.is_staff_member and policy.covers(actor, policy.CARD_SCAN, _org_path(queue))):
        raise PermissionDenied()


def _check_nurse(actor: Actor, queue: Queue) -> None:
    """Q-3 / Q-12 nurse actions (优先, 召回, 回诊签到): a nurse of the organisation."""
    if not (actor.is_staff_member and policy.covers(actor, policy.QUEUE_TRIAGE, _org_path(queue))):
        raise PermissionDenied(_("只有分诊护士可以执行此操作。"))


def _check_doctor(actor: Actor, queue: Queue) -> None:
    """Q-12 doctor actions: the session's own doctor (any doctor of the department for a general
    clinic), or a nurse of the organisation standing in at the triage desk."""
    path = _org_path(queue)
    session = queue.session
    if not actor.is_staff_member:
        raise PermissionDenied()
    if actor.staff_id is not None and actor.staff_id == session.doctor_id:
        return
    if policy.covers(actor, policy.QUEUE_TRIAGE, path):
        return
    if session.doctor_id is None and policy.covers(actor, policy.QUEUE_CALL, path):
        return
    raise PermissionDenied(_("只有本诊室的出诊医生或分诊护士可以叫号。"))


def may_view_queue(actor: Actor, queue: Queue) -> bool:
    return actor.is_staff_member and policy.covers(actor, policy.PATIENT_VIEW, _org_path(queue))


# --- the queue and its Q-7 state ----------------------------------------------------------------------


def parameters(queue: Queue) -> rules.QueueParameters:
    return dataclasses.replace(
        rules.DEFAULTS, priority_mode=queue.priority_mode, voice_privacy=queue.voice_privacy
    )


def queue_state(queue: Queue) -> rules.QueueState:
    normal = QueueEvent.objects.filter(
        queue=queue, kind=QueueEvent.Kind.CALLED, lane=rules.NORMAL
    ).values_list("ordinal", flat=True)
    return rules.QueueState(
        calls=queue.calls,
        normal_calls=tuple(sorted(o for o in normal if o)),
        last_return_call=queue.last_return_call,
        last_priority_call=queue.last_priority_call,
    )


def waiting_entries(queue: Queue) -> list[QueueEntry]:
    return list(QueueEntry.objects.filter(queue=queue, state=rules.WAITING).select_related("patient"))


def predicted_order(queue: Queue, waiting: list[QueueEntry] | None = None) -> list[QueueEntry]:
    """Q-7 dry run over the waiting tickets: the order the screens show."""
    waiting = waiting if waiting is not None else waiting_entries(queue)
    by_id = {e.pk: e for e in waiting}
    order = rules.call_order([e.as_rule_entry() for e in waiting], queue_state(queue), parameters(queue))
    return [by_id[e.id] for e in order]


def recent_consult_minutes(queue: Queue) -> list[float]:
    rows = (
        QueueEntry.objects.filter(
            queue__session__department_id=queue.session.department_id,
            queue__session__service_date=queue.session.service_date,
            called_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("called_at", "finished_at")[:RECENT_CONSULTATIONS]
    )
    return [(end - start).total_seconds() / 60 for start, end in rows if end > start]


def ticket_for(entry: QueueEntry) -> Ticket:
    """The ticket's place: patients predicted ahead of it (plus the one with the doctor)."""
    queue = entry.queue
    if entry.state != rules.WAITING:
        return Ticket(entry, 0, 0)
    order = predicted_order(queue)
    ahead = next((i for i, e in enumerate(order) if e.pk == entry.pk), len(order))
    with_doctor = 1 if queue.current_id and queue.current_id != entry.pk else 0
    wait = rules.estimated_wait_minutes(ahead + with_doctor, recent_consult_minutes(queue), parameters(queue))
    return Ticket(entry, ahead, wait)


def _lock_queue(queue_id: int) -> Queue:
    queue = (
        Queue.objects.select_for_update(of=("self",))
        .select_related("session__department__organisation", "session__doctor", "room")
        .filter(pk=queue_id)
        .first()
    )
    if queue is None:
        raise NotFound()
    return queue


def _lock_entry(entry_id: int) -> tuple[Queue, QueueEntry]:
    """Lock the entry's queue first (always queue before entry), then read the entry."""
    queue_id = QueueEntry.objects.filter(pk=entry_id).values_list("queue_id", flat=True).first()
    if queue_id is None:
        raise NotFound()
    queue = _lock_queue(queue_id)
    entry = QueueEntry.objects.select_related("patient").filter(pk=entry_id, queue=queue).first()
    if entry is None:  # moved by a transfer in between
        raise errors.TicketStateConflict()
    entry.queue = queue
    return queue, entry


def _queue_for_session(session: ClinicSession) -> Queue:
    """The queue of a session, created on first use; locked."""
    queue = Queue.objects.filter(session=session).only("id").first()
    if queue is None:
        try:
            with transaction.atomic():
                queue = Queue.objects.create(session=session)
        except IntegrityError:
            queue = Queue.objects.get(session=session)
    return _lock_queue(queue.pk)


def _event(
    queue: Queue, entry: QueueEntry | None, kind: str, actor: Actor, at: datetime, **fields
) -> QueueEvent:
    return QueueEvent.objects.create(
        queue=queue, entry=entry, kind=kind, at=at, by_id=actor.user_id, **fields
    )


def head_before_change(queue: Queue) -> int | None:
    """The first ticket of the predicted order, read before a change that may move someone ahead
    (only while a patient is with the doctor: before the clinic starts nobody is pre-called)."""
    if not queue.current_id:
        return None
    order = predicted_order(queue)
    return order[0].pk if order else None


def precall_new_head(queue: Queue, before: int | None, actor: Actor, at: datetime) -> None:
    """Q-11 pre-call: when a change (a priority arrival, a return with results, a re-sign-in after a
    missed call) makes another patient first in the predicted order while someone is with the
    doctor, the screens announce ``请{seq}号{name}准备`` to that patient at once, rather than only
    at the next call (a call announces its own pre-call, ``call_next``)."""
    if before is None:
        return
    current = QueueEntry.objects.filter(pk=queue.current_id).values_list("state", flat=True).first()
    if current not in rules.WITH_DOCTOR:
        return
    order = predicted_order(queue)
    if not order or order[0].pk == before:
        return
    head = order[0]
    text = rules.precall_text(head.seq, head.patient.name, privacy=parameters(queue).voice_privacy)
    _event(queue, head, QueueEvent.Kind.PRECALLED, actor, at, text=text)


def _target(entry: QueueEntry) -> audit.Target:
    return audit.Target("queueing.QueueEntry", entry.pk, entry.patient_id)


def _room_label(queue: Queue) -> str:
    return queue.room.name if queue.room else queue.session.department.name


# --- the scheduling side (ARRIVED / NO_SHOW / FULFILLED) --------------------------------------------


def _appointment_hook(verb: str, actor: Actor, appointment_id: int | None, at: datetime, **kwargs) -> None:
    """Call ``scheduling.services.<verb>(actor=, appointment_id=, now=, **kwargs)`` when scheduling
    offers it (``mark_arrived``, ``mark_no_show(reason=)``, ``mark_fulfilled``); the queue's own
    ticket state is authoritative for the queue either way."""
    hook = getattr(scheduling_services, verb, None)
    if appointment_id is None or hook is None:
        return
    hook(actor=actor, appointment_id=appointment_id, now=at, **kwargs)
