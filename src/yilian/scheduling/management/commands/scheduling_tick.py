"""``yilian scheduling_tick``: the periodic steps of booking, safe to run at any interval (cron or a
systemd timer every minute): expire unpaid holds (B-8), offer freed numbers to waitlists (B-20),
mark no-shows of ended sessions (B-11, B-12). Each step is idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from yilian.scheduling import services


class Command(BaseCommand):
    help = "Expire payment holds, offer freed numbers to waitlists, mark no-shows."

    def handle(self, *args, **options):
        expired = services.expire_holds()
        offered = services.offer_waitlist()
        suspended = services.mark_no_shows(actor=services.SYSTEM)
        self.stdout.write(
            f"holds expired: {expired}; waitlist offers: {offered}; newly suspended: {len(suspended)}"
        )
