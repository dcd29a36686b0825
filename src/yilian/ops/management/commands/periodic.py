"""``yilian periodic``: the product's timed housekeeping, in one process beside the task worker.

Each job is an existing management command of its app; this only says how often it runs:

* every minute: ``dispatch_sms`` (deferred and retried SMS, notifications), ``scheduling_tick``
  (payment holds expire, waitlist offers, no-shows at session end — access.md B-8, B-20, B-11);
* every 5 minutes: ``close_queues`` (missed patients who never came back — access.md Q-9);
* daily: ``purge_codes`` (spent sign-in codes), ``purge_card_nonces`` (remembered QR nonces) and
  ``chronic_daily`` (follow-up reminder SMS, chronic.md R7.4; family-doctor contracts that ended).

``yilian up`` starts it; on a server run by systemd/cron, run ``yilian periodic --once`` from a
timer instead. A failing job is logged and retried at its next turn; it never stops the others.
"""

from __future__ import annotations

import logging
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections

logger = logging.getLogger("yilian")

MINUTE = 60
JOBS: list[tuple[str, int]] = [
    ("dispatch_sms", MINUTE),
    ("scheduling_tick", MINUTE),
    ("close_queues", 5 * MINUTE),
    ("purge_codes", 24 * 60 * MINUTE),
    ("purge_card_nonces", 24 * 60 * MINUTE),
    ("chronic_daily", 24 * 60 * MINUTE),
]


def run_job(name: str) -> bool:
    """Run one job; ``False`` (and a log line) if it failed."""
    try:
        if name == "purge_card_nonces":
            from yilian.patients import card

            card.purge_token_uses()
        else:
            call_command(name, verbosity=0)
    except Exception:
        logger.exception("periodic job %s failed", name)
        return False
    return True


class Command(BaseCommand):
    help = "Run the timed housekeeping jobs (SMS retries, holds, no-shows, queue closing, purges)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every job once and exit")

    def handle(self, *args, once: bool = False, **options):
        if once:
            failed = [name for name, _every in JOBS if not run_job(name)]
            if failed:
                self.stderr.write(f"failed: {', '.join(failed)}")
            return
        due = dict.fromkeys((name for name, _every in JOBS), 0.0)
        every = dict(JOBS)
        while True:
            close_old_connections()  # a long-running process: drop broken or expired connections
            now = time.monotonic()
            for name in due:
                if now >= due[name]:
                    run_job(name)
                    due[name] = now + every[name]
            time.sleep(max(1.0, min(due.values()) - time.monotonic()))
