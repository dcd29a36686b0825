"""Background steps of scheduling: take ids (or nothing), call a service (ARCHITECTURE.md)."""

from __future__ import annotations

from django_tasks import task


@task()
def offer_waitlist_task() -> int:
    """B-20: offer freed numbers to the waitlist (enqueued for the end of a re-release delay)."""
    from yilian.scheduling import services

    return services.offer_waitlist()


@task()
def expire_holds_task() -> int:
    """B-8: cancel unpaid holds (enqueued for the end of a hold)."""
    from yilian.scheduling import services

    return services.expire_holds()


@task()
def mark_no_shows_task() -> int:
    """B-11: sessions that ended without a sign-in."""
    from yilian.scheduling import services

    return len(services.mark_no_shows(actor=services.SYSTEM))
