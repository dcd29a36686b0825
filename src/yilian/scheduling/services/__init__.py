"""Every write of outpatient scheduling and booking (access.md §1, B-1..B-20), by topic:

- ``sessions``: schedule set-up and doctor stop (出诊排班, 停诊);
- ``booking``: booking and cancellation (预约挂号, 退号), the concurrency-critical path;
- ``waitlist``: the waitlist (候补) and payment holds;
- ``visits``: check-in, no-shows and fulfilment (签到, 爽约, 就诊完成), called by queueing.

``from yilian.scheduling import services`` keeps offering every public name.
"""

from yilian.scheduling.services.base import (
    DESK_BOOKING_PERMISSION,
    GUARDIAN_AGE,
    IDEMPOTENCY_KEY_MAX,
    MAX_WINDOW_CAPACITY,
    SCHEDULE_PERMISSION,
    SYSTEM,
    VISIT_PERMISSION,
    Booking,
    parameters_for,
)
from yilian.scheduling.services.booking import book_appointment, cancel_appointment
from yilian.scheduling.services.sessions import create_session, stop_session
from yilian.scheduling.services.visits import (
    correct_no_show,
    mark_arrived,
    mark_fulfilled,
    mark_no_show,
    mark_no_shows,
    suspension_of,
)
from yilian.scheduling.services.waitlist import (
    confirm_hold,
    expire_holds,
    join_waitlist,
    leave_waitlist,
    offer_waitlist,
)

__all__ = [
    "DESK_BOOKING_PERMISSION",
    "GUARDIAN_AGE",
    "IDEMPOTENCY_KEY_MAX",
    "MAX_WINDOW_CAPACITY",
    "SCHEDULE_PERMISSION",
    "SYSTEM",
    "VISIT_PERMISSION",
    "Booking",
    "book_appointment",
    "cancel_appointment",
    "confirm_hold",
    "correct_no_show",
    "create_session",
    "expire_holds",
    "join_waitlist",
    "leave_waitlist",
    "mark_arrived",
    "mark_fulfilled",
    "mark_no_show",
    "mark_no_shows",
    "offer_waitlist",
    "parameters_for",
    "stop_session",
    "suspension_of",
]
