"""Scanning one QR code at two desks at the same instant: exactly one wins (access.md HC-1).

Real concurrency needs real connections, so this runs in the PostgreSQL pass of the suite
(``python -m yilian.ops.pgtmp -- pytest``); SQLite serialises every writer.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from tests import factories as f
from tests.helpers import race
from yilian.accounts.selectors import actor_for_user
from yilian.common import policy
from yilian.patients import card
from yilian.patients.models import CardTokenUse

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"],
        reason="needs PostgreSQL: SQLite serialises every write transaction",
    ),
]


def test_one_code_scanned_at_eight_desks_at_once_opens_the_record_once(flushable_db):
    county = f.make_org("县医院", "county_hospital", code="C-CARD")
    patient = f.make_patient(county, name="周大福")
    token = card.make_token(f.issue_card(patient))
    desks = [actor_for_user(f.make_staff(policy.NURSE, county).user) for _ in range(8)]

    results = race(8, lambda i: card.verify_token(token, actor=desks[i]))

    wins = [r for r in results if not isinstance(r, Exception)]
    assert [w.pk for w in wins] == [patient.pk]
    assert all(isinstance(r, card.CardTokenReplayed) for r in results if isinstance(r, Exception)), results
    assert CardTokenUse.objects.count() == 1
