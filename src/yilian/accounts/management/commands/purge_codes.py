"""``yilian purge_codes``: delete SMS sign-in code rows older than a day (run it daily)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from yilian.accounts import services


class Command(BaseCommand):
    help = "Delete SMS sign-in code rows older than a day (they only serve the hourly rate limits)."

    def handle(self, *args, **options):
        count = services.purge_spent_codes()
        self.stdout.write(f"purged {count} sign-in code row(s)")
