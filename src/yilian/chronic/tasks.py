"""Background steps of chronic-disease management: take ids (or nothing), call a service."""

from __future__ import annotations

from django_tasks import task


@task()
def send_due_reminders_task() -> int:
    """R7.4, daily: the follow-up reminder SMS due today, across the community (once per plan)."""
    from yilian.chronic.services import worklists

    return worklists.send_due_reminders(actor=worklists.SYSTEM)
