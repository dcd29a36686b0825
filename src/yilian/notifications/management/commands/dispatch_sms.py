"""``yilian dispatch_sms``: the periodic safety net of SMS delivery (run it every minute or so).

Enqueues every queued or deferred message that is due (a lost task, a backend that cannot delay
tasks, the end of quiet hours) and closes messages stuck mid-send.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from yilian.notifications import services


class Command(BaseCommand):
    help = "Enqueue due queued/deferred SMS messages (safety net for the task queue)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="at most this many messages per run")
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=int(services.DISPATCH_GRACE.total_seconds()),
            help="leave a due message this long to the task queue first",
        )

    def handle(self, *args, limit: int, grace_seconds: int, **options):
        count = services.dispatch_due_sms(limit=limit, grace=timedelta(seconds=max(grace_seconds, 0)))
        self.stdout.write(f"dispatched {count} SMS message(s)")
