"""Background tasks of notifications: take ids, call a service (ARCHITECTURE.md)."""

from __future__ import annotations

from django_tasks import task


@task()
def deliver_sms(sms_id: int) -> str:
    """Deliver one SMS; safe to run twice (the service claims the row first)."""
    from yilian.notifications import services

    return services.deliver_sms(sms_id=sms_id)
