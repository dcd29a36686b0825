"""``yilian close_queues``: Q-9 — tickets still on the missed list of an ended session become
no-shows. Run it every few minutes (cron / the task worker's scheduler); it is idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from yilian.common.policy import Actor
from yilian.queueing import services

SYSTEM = Actor(kind="system", label="system:close_queues")


class Command(BaseCommand):
    help = "Close the missed lists of ended sessions (access.md Q-9)."

    def handle(self, *args, **options):
        closed = services.close_ended_queues(actor=SYSTEM)
        self.stdout.write(f"closed {len(closed)} missed ticket(s)")
