"""Notifications API: the caller's own inbox. Another user's message is ``NOT_FOUND`` (404).

Staff use ``/inbox`` (permission ``inbox.read``); patient accounts use ``/mine`` (the H5 app).
No ``from __future__ import annotations`` here: ninja reads the parameter annotations at import.
"""

from ninja import Query, Router

from yilian.common import policy
from yilian.common.access import PATIENT, requires
from yilian.notifications import selectors, services
from yilian.notifications.schemas import InboxFilter, InboxMessageRead, InboxPage, MarkedRead

router = Router(tags=["notifications"])


def _page(actor, filters: InboxFilter) -> dict:
    messages = selectors.inbox_of(actor, unread_only=filters.unread)
    return {
        "count": messages.count(),
        "unread": selectors.unread_count(actor),
        "items": list(messages[filters.offset : filters.offset + filters.limit]),
    }


@router.get("/inbox", response=InboxPage)
@requires(policy.INBOX)
def staff_inbox(request, filters: Query[InboxFilter]):
    return _page(request.actor, filters)


@router.post("/inbox/{message_id}/read", response=InboxMessageRead)
@requires(policy.INBOX)
def staff_mark_read(request, message_id: int):
    return services.mark_read(actor=request.actor, message_id=message_id)


@router.post("/inbox/read-all", response=MarkedRead)
@requires(policy.INBOX)
def staff_mark_all_read(request):
    return {"marked": services.mark_all_read(actor=request.actor)}


@router.get("/mine", response=InboxPage)
@requires(PATIENT)
def patient_inbox(request, filters: Query[InboxFilter]):
    return _page(request.actor, filters)


@router.post("/mine/{message_id}/read", response=InboxMessageRead)
@requires(PATIENT)
def patient_mark_read(request, message_id: int):
    return services.mark_read(actor=request.actor, message_id=message_id)


@router.post("/mine/read-all", response=MarkedRead)
@requires(PATIENT)
def patient_mark_all_read(request):
    return {"marked": services.mark_all_read(actor=request.actor)}
