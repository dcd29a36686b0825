"""Every write of the exam appointment centre (access.md §2 E-1..E-5, PE-1, L-1), by topic:

* ``base``: who may act for a patient, rule data of exam types, cancellation (shared);
* ``calendar``: opening resources' time segments (E-2);
* ``orders``: exam orders (ServiceRequest);
* ``booking``: the one-stop plan (E-5) and booking it atomically (E-1..E-4);
* ``packages``: physical-exam packages (PE-1).

Callers use this package (``from yilian.exams import services``); the names below are its API.
"""

from yilian.exams.services.base import (
    CALENDAR_MANAGE_PERMISSION,
    DESK_PERMISSION,
    ORDER_PERMISSION,
    access_patient,
    check_may_book_for,
    parameters,
    specs_for,
)
from yilian.exams.services.booking import (
    Choice,
    Proposal,
    book_plan,
    cancel_exam_appointment,
    choices_from,
    open_orders,
    propose_plan,
    reschedule,
)
from yilian.exams.services.calendar import open_segments, seed_segments
from yilian.exams.services.orders import mark_order_paid, place_order, revoke_order
from yilian.exams.services.packages import cancel_package_order, order_package, package_problems

__all__ = [
    "CALENDAR_MANAGE_PERMISSION",
    "DESK_PERMISSION",
    "ORDER_PERMISSION",
    "Choice",
    "Proposal",
    "access_patient",
    "book_plan",
    "cancel_exam_appointment",
    "cancel_package_order",
    "check_may_book_for",
    "choices_from",
    "mark_order_paid",
    "open_orders",
    "open_segments",
    "order_package",
    "package_problems",
    "parameters",
    "place_order",
    "propose_plan",
    "reschedule",
    "revoke_order",
    "seed_segments",
    "specs_for",
]
