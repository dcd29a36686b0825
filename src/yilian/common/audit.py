"""Writing the audit log. Services call ``record`` inside their own transaction.

The request's address is carried by a context variable set by ``AuditContextMiddleware`` so that
services never need a request; tasks and commands simply have none.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from yilian.common.models import AuditEvent
from yilian.common.policy import Actor

_request_ip: contextvars.ContextVar[str] = contextvars.ContextVar("yilian_request_ip", default="")


def set_request_ip(ip: str | None) -> contextvars.Token:
    return _request_ip.set(ip or "")


def reset_request_ip(token: contextvars.Token) -> None:
    _request_ip.reset(token)


@dataclass(frozen=True)
class Target:
    object_type: str
    object_id: Any
    patient_id: int | None = None


def record(
    actor: Actor | None,
    action: str,
    *,
    target: Target | None = None,
    reason: str = "",
    outcome: str = AuditEvent.Outcome.OK,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        at=timezone.now(),
        actor_id=actor.user_id if actor else None,
        actor_label=(actor.label if actor else "system")[:120],
        actor_org_id=actor.primary_org_id if actor else None,
        api_key_id=actor.api_key_id if actor else None,
        ip=_request_ip.get(),
        action=action,
        object_type=target.object_type if target else "",
        object_id=str(target.object_id) if target and target.object_id is not None else "",
        patient_id=target.patient_id if target else None,
        reason=reason[:500],
        outcome=outcome,
        detail=detail or {},
    )


def refused(actor: Actor | None, action: str, *, target: Target | None = None, code: str = "") -> None:
    """access.md L-1: every refusal writes an audit entry."""
    record(actor, action, target=target, outcome=AuditEvent.Outcome.REFUSED, detail={"code": code})


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from yilian.common.middleware import client_ip

        token = set_request_ip(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            reset_request_ip(token)
