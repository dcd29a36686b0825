"""Audit API (``/api/v1/audit/``): the auditor's search, with the page's filters. Read-only.

Each call is itself audited (``audit.view``), as on the page. No ``from __future__ import
annotations`` here: ninja reads the parameter annotations at import.
"""

from datetime import date, datetime

from ninja import Query, Router, Schema
from pydantic import Field

from yilian.common import audit, policy
from yilian.common.access import requires
from yilian.common.views import AuditFilters, search_events

router = Router(tags=["audit"])


class AuditEventFilter(Schema):
    actor: str = Field("", max_length=150)
    patient_id: int | None = Field(None, ge=1, le=2**63 - 1)
    action: str = Field("", max_length=64)
    outcome: str = Field("", pattern=r"^(|ok|refused)$")
    date_from: date | None = None
    date_to: date | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000_000)


class AuditEventRead(Schema):
    id: int
    at: datetime
    actor_id: int | None
    actor_username: str
    actor_label: str
    actor_org_id: int | None
    api_key_id: int | None
    ip: str
    action: str
    object_type: str
    object_id: str
    patient_id: int | None
    reason: str
    outcome: str
    detail: dict


class AuditEventPage(Schema):
    count: int
    items: list[AuditEventRead]


@router.get("/events", response=AuditEventPage)
@requires(policy.AUDIT_VIEW)
def list_events(request, query: Query[AuditEventFilter]):
    filters = AuditFilters(
        actor=query.actor.strip(),
        patient_id=query.patient_id,
        action=query.action.strip(),
        outcome=query.outcome,
        date_from=query.date_from,
        date_to=query.date_to,
    )
    events = search_events(filters)
    items = [
        {**_fields(event), "actor_username": event.actor.username if event.actor_id else ""}
        for event in events[query.offset : query.offset + query.limit]
    ]
    count = events.count()
    audit.record(
        request.actor,
        "audit.view",
        target=audit.Target("audit_log", ""),
        detail={"filters": filters.as_detail(), "offset": query.offset, "channel": "api"},
    )
    return {"count": count, "items": items}


def _fields(event) -> dict:
    names = [name for name in AuditEventRead.model_fields if name != "actor_username"]
    return {name: getattr(event, name) for name in names}
