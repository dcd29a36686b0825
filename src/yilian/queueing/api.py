"""Queueing API (``/api/v1/queueing/``): sign-in, priority, the doctor's call buttons, return with
results, transfer, the display board JSON and a patient's ticket (access.md §3).

Refusals carry exactly the codes and HTTP statuses of access.md §0.1 (``queueing.errors``):
TOO_EARLY, SIGNIN_CLOSED, EVIDENCE_REQUIRED, TICKET_VOIDED, RETURN_WINDOW_EXPIRED (422) and
IDENTITY_MISMATCH (403). Staff endpoints declare ``STAFF``; the services then decide per role (the
session's doctor for the call buttons, a triage nurse for priority), so a patient setting priority
gets 403 at the door.
"""

# No ``from __future__ import annotations``: ninja resolves annotations through the ``@requires``
# wrapper, whose globals are not this module's.
from functools import wraps

from ninja import Router, Status

from yilian.common.access import STAFF, requires
from yilian.common.errors import NotAuthenticated
from yilian.queueing import rules, schemas, selectors, services
from yilian.queueing.models import Queue, QueueEntry

router = Router(tags=["queueing"])

# Sign-in and tickets are open to patient accounts (their own appointments) and to desk staff; the
# service decides. The declared permission is the honest weaker one, as in scheduling.api.
SIGNED_IN = "authenticated"


def signed_in(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.actor.is_authenticated:
            raise NotAuthenticated()
        return view(request, *args, **kwargs)

    guarded.yilian_permission = SIGNED_IN  # type: ignore[attr-defined]
    return guarded


def ticket_out(ticket: services.Ticket) -> dict:
    entry = ticket.entry
    queue = entry.queue
    session = queue.session
    return {
        "id": entry.pk,
        "queue_id": queue.pk,
        "seq": entry.seq,
        "lane": entry.lane,
        "state": entry.state,
        "late": entry.late,
        "priority_tag": entry.priority_tag,
        "misses": entry.misses,
        "signed_in_at": entry.signed_in_at,
        "visit_date": entry.visit_date,
        "department": session.department.name,
        "doctor": session.doctor.name if session.doctor else "",
        "room": queue.room.name if queue.room else "",
        "ahead": ticket.ahead,
        "wait_minutes": ticket.wait_minutes,
        "created": ticket.created,
    }


def row_out(entry: QueueEntry) -> dict:
    return {
        "id": entry.pk,
        "seq": entry.seq,
        "name": entry.patient.name,
        "lane": entry.lane,
        "late": entry.late,
        "priority_tag": entry.priority_tag,
        "misses": entry.misses,
    }


def queue_out(queue: Queue) -> dict:
    """The doctor's view of a queue: full names (staff only), waiting list in Q-7 predicted order."""
    queue = selectors.access_queue_fresh(queue.pk)
    session = queue.session
    current = None
    if queue.current_id:
        entry = QueueEntry.objects.select_related("patient").get(pk=queue.current_id)
        if entry.state in rules.WITH_DOCTOR:
            current = row_out(entry)
    others = QueueEntry.objects.filter(queue=queue).select_related("patient").order_by("seq")
    return {
        "id": queue.pk,
        "session_id": session.pk,
        "service_date": session.service_date,
        "period": session.period,
        "department": session.department.name,
        "doctor": session.doctor.name if session.doctor else "",
        "room": queue.room.name if queue.room else "",
        "priority_mode": queue.priority_mode,
        "voice_privacy": queue.voice_privacy,
        "calls": queue.calls,
        "current": current,
        "waiting": [row_out(e) for e in services.predicted_order(queue)],
        "missed": [row_out(e) for e in others if e.state == rules.MISSED],
        "away": [row_out(e) for e in others if e.state == rules.SENT_FOR_EXAMS],
    }


@router.get("/queues", response=list[schemas.QueueSummaryRead])
@requires(STAFF)
def list_queues(request):
    """Today's queues in the caller's organisations (triage desk)."""
    return [
        {
            "id": row.queue.pk,
            "session_id": row.queue.session_id,
            "period": row.queue.session.period,
            "department": row.queue.session.department.name,
            "doctor": row.queue.session.doctor.name if row.queue.session.doctor else "",
            "room": row.queue.room.name if row.queue.room else "",
            "waiting": row.waiting,
        }
        for row in selectors.desk_rows(request.actor)
    ]


@router.get("/queues/{queue_id}", response=schemas.QueueRead)
@requires(STAFF)
def get_queue(request, queue_id: int):
    return queue_out(selectors.access_queue(request.actor, queue_id))


@router.get("/queues/{queue_id}/board", response=schemas.BoardRead)
@requires(STAFF)
def get_board(request, queue_id: int):
    """The display JSON of one queue (Q-10): masked names, priority tags, 过号 column, last call."""
    return selectors.board(selectors.access_queue(request.actor, queue_id))


@router.post("/check-in", response={200: schemas.TicketRead, 201: schemas.TicketRead})
@signed_in
def check_in(request, payload: schemas.CheckInCreate):
    """签到 (Q-1, B-2). 201 with a new ticket, 200 when already signed in."""
    ticket = services.check_in(
        actor=request.actor, token=payload.token, appointment_id=payload.appointment_id
    )
    return Status(201 if ticket.created else 200, ticket_out(ticket))


@router.post("/tickets/{entry_id}/priority", response=schemas.TicketRead)
@requires(STAFF)
def set_priority(request, entry_id: int, payload: schemas.PriorityCreate):
    """优先 (Q-3): triage nurses only; EVIDENCE_REQUIRED without a certificate (except age)."""
    entry = services.set_priority(
        actor=request.actor, entry_id=entry_id, evidence=payload.evidence, certificate=payload.certificate
    )
    return ticket_out(services.ticket_for(entry))


def _call_response(queue_id: int, called: QueueEntry | None) -> dict:
    queue = Queue.objects.get(pk=queue_id)
    return {"called": row_out(called) if called else None, "queue": queue_out(queue)}


@router.post("/queues/{queue_id}/call-next", response=schemas.CallRead)
@requires(STAFF)
def call_next(request, queue_id: int):
    """下一个 (Q-7): finishes the current patient and calls the next; ``called`` null when empty."""
    return _call_response(queue_id, services.call_next(actor=request.actor, queue_id=queue_id))


@router.post("/queues/{queue_id}/recall", response=schemas.CallRead)
@requires(STAFF)
def recall(request, queue_id: int):
    """复呼 (Q-6)."""
    return _call_response(queue_id, services.recall(actor=request.actor, queue_id=queue_id))


@router.post("/queues/{queue_id}/missed", response=schemas.CallRead)
@requires(STAFF)
def mark_missed(request, queue_id: int):
    """过号 (Q-6, Q-8): the 4th miss voids the ticket."""
    return _call_response(queue_id, services.mark_missed(actor=request.actor, queue_id=queue_id))


@router.post("/queues/{queue_id}/send-for-exams", response=schemas.CallRead)
@requires(STAFF)
def send_for_exams(request, queue_id: int):
    """置为检查 (Q-12)."""
    return _call_response(queue_id, services.send_for_exams(actor=request.actor, queue_id=queue_id))


@router.post("/queues/{queue_id}/finish", response=schemas.CallRead)
@requires(STAFF)
def finish(request, queue_id: int):
    """结束就诊 (Q-12)."""
    return _call_response(queue_id, services.finish(actor=request.actor, queue_id=queue_id))


@router.post("/tickets/{entry_id}/re-sign-in", response=schemas.TicketRead)
@requires(STAFF)
def re_sign_in(request, entry_id: int):
    """过号重新签到 (Q-6, Q-8): TICKET_VOIDED after the 4th miss."""
    return ticket_out(services.re_sign_in(actor=request.actor, entry_id=entry_id))


@router.post("/tickets/{entry_id}/return", response=schemas.TicketRead)
@requires(STAFF)
def return_with_results(request, entry_id: int):
    """回诊 (Q-5): RETURN_WINDOW_EXPIRED after RETURN_FREE_DAYS."""
    return ticket_out(services.return_with_results(actor=request.actor, entry_id=entry_id))


@router.post("/tickets/{entry_id}/transfer", response=schemas.TicketRead)
@requires(STAFF)
def transfer(request, entry_id: int, payload: schemas.TransferCreate):
    """转诊 (Q-12): to another doctor of the same department, keeping the position key."""
    return ticket_out(
        services.transfer(actor=request.actor, entry_id=entry_id, to_queue_id=payload.to_queue_id)
    )


@router.get("/tickets/{entry_id}", response=schemas.TicketRead)
@signed_in
def get_ticket(request, entry_id: int):
    """A ticket with the number of patients ahead and the estimated wait. A patient account sees
    only its own patients' tickets; staff those of their organisations."""
    if request.actor.kind == "patient":
        entry = selectors.access_own_ticket(request.actor, entry_id)
    else:
        entry = selectors.access_entry_for_staff(request.actor, entry_id)
    return ticket_out(services.ticket_for(entry))
