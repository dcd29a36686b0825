"""The doctor's buttons (下一个, 复呼, 过号, 检查, 结束, 转诊) and the session close: Q-6..Q-9, Q-11, Q-12."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.queueing import errors, rules
from yilian.queueing.models import Queue, QueueEntry, QueueEvent
from yilian.queueing.services.base import (
    Ticket,
    _appointment_hook,
    _check_doctor,
    _event,
    _lock_queue,
    _room_label,
    _target,
    may_view_queue,
    parameters,
    queue_state,
    ticket_for,
    waiting_entries,
)
from yilian.scheduling import rules as scheduling_rules
from yilian.scheduling.models import ClinicSession

# --- doctor actions ------------------------------------------------------------------------


def _finish_current(queue: Queue, actor: Actor, at: datetime) -> None:
    current = queue.current
    if current is None:
        return
    current = QueueEntry.objects.get(pk=current.pk)
    if current.state in rules.WITH_DOCTOR:
        current.state = rules.DONE
        current.finished_at = at
        current.save(update_fields=["state", "finished_at"])
        _event(queue, current, QueueEvent.Kind.FINISHED, actor, at)
        audit.record(actor, "queue.finish", target=_target(current))
        _appointment_hook("mark_fulfilled", actor, current.appointment_id, at)
    queue.current = None


def _current(queue: Queue) -> QueueEntry:
    if queue.current_id is None:
        raise errors.NoCurrentPatient()
    entry = QueueEntry.objects.select_related("patient").get(pk=queue.current_id)
    if entry.state not in rules.WITH_DOCTOR:
        raise errors.NoCurrentPatient()
    return entry


@transaction.atomic
def call_next(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry | None:
    """下一个 (Q-7): finish the patient with the doctor (if any), then call the head of the Q-7
    order. Returns ``None`` when nobody is waiting. The call event carries the Q-11 voice text
    and the pre-call text for the new head of the predicted order."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    _finish_current(queue, actor, at)
    waiting = waiting_entries(queue)
    params = parameters(queue)
    state = queue_state(queue)
    chosen_rule = rules.select_next([e.as_rule_entry() for e in waiting], state, params)
    if chosen_rule is None:
        queue.save(update_fields=["current"])
        return None
    entry = next(e for e in waiting if e.pk == chosen_rule.id)
    new_state = rules.after_call(state, chosen_rule)
    queue.calls = new_state.calls
    queue.last_return_call = new_state.last_return_call
    queue.last_priority_call = new_state.last_priority_call
    queue.current = entry
    queue.save(update_fields=["calls", "last_return_call", "last_priority_call", "current"])
    entry.state = rules.CALLED
    entry.called_at = at
    entry.save(update_fields=["state", "called_at"])
    rest = [e for e in waiting if e.pk != entry.pk]
    head = rules.call_order([e.as_rule_entry() for e in rest], new_state, params)[:1]
    precall = ""
    if head:
        nxt = next(e for e in rest if e.pk == head[0].id)
        precall = rules.precall_text(nxt.seq, nxt.patient.name, privacy=params.voice_privacy)
    text = rules.call_text(entry.seq, entry.patient.name, _room_label(queue), privacy=params.voice_privacy)
    _event(
        queue,
        entry,
        QueueEvent.Kind.CALLED,
        actor,
        at,
        ordinal=queue.calls,
        lane=entry.lane,
        text=text,
        detail={"precall": precall},
    )
    audit.record(
        actor, "queue.call", target=_target(entry), detail={"ordinal": queue.calls, "lane": entry.lane}
    )
    return entry


@transaction.atomic
def recall(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """复呼 (Q-6): play the call for the current patient again."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    params = parameters(queue)
    text = rules.call_text(entry.seq, entry.patient.name, _room_label(queue), privacy=params.voice_privacy)
    _event(queue, entry, QueueEvent.Kind.RECALLED, actor, at, text=text)
    audit.record(actor, "queue.recall", target=_target(entry))
    return entry


@transaction.atomic
def mark_missed(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """过号 (Q-6, Q-8): the called patient is absent. Misses 1–3 move the ticket to the missed list
    until re-sign-in; miss 4 voids it and the appointment becomes NO_SHOW (``oth-missed-call``)."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    if entry.state != rules.CALLED:
        raise errors.TicketStateConflict(_("患者已在就诊中，不能过号。"))
    entry.misses += 1
    outcome = rules.miss_outcome(entry.misses, parameters(queue))
    entry.state = rules.VOIDED if outcome == rules.MISS_VOID else rules.MISSED
    entry.save(update_fields=["misses", "state"])
    queue.current = None
    queue.save(update_fields=["current"])
    _event(queue, entry, QueueEvent.Kind.MISSED, actor, at, detail={"misses": entry.misses})
    audit.record(actor, "queue.miss", target=_target(entry), detail={"misses": entry.misses, "rule": "Q-8"})
    if outcome == rules.MISS_VOID:
        _event(queue, entry, QueueEvent.Kind.VOIDED, actor, at, detail={"rule": "Q-8"})
        audit.record(actor, "queue.void", target=_target(entry), detail={"rule": "Q-8"})
        _appointment_hook(
            "mark_no_show", actor, entry.appointment_id, at, reason=scheduling_rules.REASON_MISSED_CALL
        )
    return entry


@transaction.atomic
def send_for_exams(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """置为检查 (Q-12): the current patient goes for exams; on return they join the RETURN lane."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    entry.state = rules.SENT_FOR_EXAMS
    entry.finished_at = at
    entry.save(update_fields=["state", "finished_at"])
    queue.current = None
    queue.save(update_fields=["current"])
    _event(queue, entry, QueueEvent.Kind.SENT_FOR_EXAMS, actor, at)
    audit.record(actor, "queue.send_for_exams", target=_target(entry))
    return entry


@transaction.atomic
def finish(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """结束就诊 (Q-12)."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    _finish_current(queue, actor, at)
    queue.save(update_fields=["current"])
    entry.refresh_from_db()
    return entry


@transaction.atomic
def transfer(*, actor: Actor, entry_id: int, to_queue_id: int, at: datetime | None = None) -> Ticket:
    """转诊 / 指定医生 (Q-12): move a waiting ticket to another doctor of the same department on the
    same day, keeping its position key (segment, late flag, booked, number, lane, priority)."""
    at = at or timezone.now()
    if not actor.is_staff_member:
        raise PermissionDenied()
    source_id = QueueEntry.objects.filter(pk=entry_id).values_list("queue_id", flat=True).first()
    if source_id is None or not Queue.objects.filter(pk=to_queue_id).exists():
        raise NotFound()
    # Lock both queues in id order so that two opposite transfers cannot deadlock.
    locked = {qid: _lock_queue(qid) for qid in sorted({source_id, to_queue_id})}
    source, target = locked[source_id], locked[to_queue_id]
    if not (may_view_queue(actor, source) and may_view_queue(actor, target)):
        raise NotFound()
    _check_doctor(actor, source)
    entry = QueueEntry.objects.select_related("patient").filter(pk=entry_id, queue=source).first()
    if entry is None or entry.state != rules.WAITING:
        raise errors.TicketStateConflict(_("只有候诊中的患者可以转诊。"))
    if source.pk == target.pk:
        raise InvalidInput(_("请选择另一位医生的队列。"), field="to_queue_id")
    if (
        target.session.department_id != source.session.department_id
        or target.session.service_date != source.session.service_date
        or target.session.status != ClinicSession.Status.OPEN
    ):
        raise InvalidInput(_("只能转给同一科室当天出诊的医生。"), field="to_queue_id")
    entry.queue = target
    if entry.lane in (rules.RETURN, rules.RECALL):  # gaps are counted in the new queue's calls
        entry.calls_at_sign_in = target.calls
        entry.wait_for = []
    entry.save(update_fields=["queue", "calls_at_sign_in", "wait_for"])
    _event(source, entry, QueueEvent.Kind.TRANSFERRED, actor, at, detail={"to_queue": target.pk})
    _event(target, entry, QueueEvent.Kind.TRANSFERRED, actor, at, detail={"from_queue": source.pk})
    audit.record(actor, "queue.transfer", target=_target(entry), detail={"from": source.pk, "to": target.pk})
    return ticket_for(entry)


# --- Q-9 session close ------------------------------------------------------------------------------


@transaction.atomic
def close_ended_queues(*, actor: Actor, now: datetime | None = None) -> list[int]:
    """Q-9: a patient still on the missed list when the session has ended left without returning:
    the ticket becomes LEFT and the appointment NO_SHOW (MISSED_COUNTS_AS_NOSHOW = true), counted
    for B-12 by scheduling. Returns the tickets closed. Safe to run repeatedly (a periodic job)."""
    now = now or timezone.now()
    closed: list[int] = []
    for queue_id in (
        Queue.objects.filter(session__ends_at__lte=now, entries__state=rules.MISSED)
        .values_list("id", flat=True)
        .distinct()
        .order_by("id")
    ):
        queue = _lock_queue(queue_id)
        for entry in QueueEntry.objects.filter(queue=queue, state=rules.MISSED).order_by("id"):
            entry.state = rules.LEFT
            entry.save(update_fields=["state"])
            _event(queue, entry, QueueEvent.Kind.VOIDED, actor, now, detail={"rule": "Q-9"})
            audit.record(actor, "queue.left_without_return", target=_target(entry), detail={"rule": "Q-9"})
            _appointment_hook(
                "mark_no_show", actor, entry.appointment_id, now, reason=scheduling_rules.REASON_MISSED_CALL
            )
            closed.append(entry.pk)
    return closed
