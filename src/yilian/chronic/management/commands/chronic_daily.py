"""``yilian chronic_daily``: the chronic-disease programme's daily steps (run by ``yilian periodic``).

* R7.4 follow-up reminders: one SMS per overdue patient with consent and a phone, once per plan;
* family-doctor contracts whose term has ended become ENDED (家庭医生签约到期).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from yilian.chronic.services import contracts, worklists


class Command(BaseCommand):
    help = "Send due follow-up reminders and end expired family-doctor contracts."

    def handle(self, *args, **options):
        sent = worklists.send_due_reminders(actor=worklists.SYSTEM)
        ended = contracts.expire_contracts(actor=worklists.SYSTEM)
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(f"reminders queued: {sent}; contracts ended: {ended}")
