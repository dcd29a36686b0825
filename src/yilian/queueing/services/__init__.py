"""Every write of triage and queue calling (签到, 分诊叫号): access.md Q-1..Q-12, B-2, B-11.

Each service locks its queue row (``select_for_update``) before it reads the waiting list, so that
two clicks on 下一个, a sign-in racing a call, or a nurse and a doctor acting at once are applied
one after the other; a queue has one doctor, so the lock never contends in earnest. Each action
writes a ``QueueEvent`` (Q-12) and an audit row (L-1) in the same transaction.

Appointment status (ARRIVED at sign-in, NO_SHOW on a closed sign-in or a void, FULFILLED at the
end) belongs to ``scheduling``; until it offers those verbs (``mark_arrived``, ``mark_no_show``,
``mark_fulfilled``: see ``_appointment_hook``), the queue keeps its own state and the scheduling
call is skipped.
"""

from yilian.queueing.services.base import (
    Ticket,
    may_view_queue,
    parameters,
    predicted_order,
    queue_state,
    recent_consult_minutes,
    ticket_for,
    waiting_entries,
)
from yilian.queueing.services.calls import (
    call_next,
    close_ended_queues,
    finish,
    mark_missed,
    recall,
    send_for_exams,
    transfer,
)
from yilian.queueing.services.setup import (
    assign_room,
    configure_queue,
    create_display,
    create_room,
    hash_display_token,
    open_queue,
)
from yilian.queueing.services.signin import (
    cancel_sign_in,
    check_in,
    re_sign_in,
    return_with_results,
    set_priority,
)
from yilian.scheduling import services as scheduling_services

__all__ = [
    "Ticket",
    "assign_room",
    "call_next",
    "cancel_sign_in",
    "check_in",
    "close_ended_queues",
    "configure_queue",
    "create_display",
    "create_room",
    "finish",
    "hash_display_token",
    "mark_missed",
    "may_view_queue",
    "open_queue",
    "parameters",
    "predicted_order",
    "queue_state",
    "re_sign_in",
    "recall",
    "recent_consult_minutes",
    "return_with_results",
    "scheduling_services",
    "send_for_exams",
    "set_priority",
    "ticket_for",
    "transfer",
    "waiting_entries",
]
