"""Anti-automation limits on booking and availability calls (access.md B-18)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.scheduling.factories import make_booker, make_session
from yilian.common.models import AuditEvent

URL = "/api/v1/scheduling"


@pytest.fixture
def booker_client(community):
    booker = make_booker(community.county)
    c = Client()
    c.force_login(booker.account.user)
    return booker, c


def _book(c, booker, session_id, n):
    return c.post(
        f"{URL}/appointments",
        json.dumps({"patient_id": booker.patient.pk, "session_id": session_id}),
        content_type="application/json",
        headers={"Idempotency-Key": f"k-{n}"},
    )


def test_an_account_over_its_booking_limit_gets_429_with_retry_after(booker_client, settings):
    settings.BOOKING_PER_ACCOUNT_MINUTE = 3
    booker, c = booker_client
    answers = [_book(c, booker, 999_999, n) for n in range(4)]
    assert [r.status_code for r in answers[:3]] == [404, 404, 404]  # counted, then refused for what they are
    r = answers[3]
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED", r.content
    assert 1 <= r.json()["retry_after"] <= 60 and r.json()["limit"] == "account"


def test_another_account_is_not_limited_by_the_first(community, booker_client, settings):
    settings.BOOKING_PER_ACCOUNT_MINUTE = 1
    booker, c = booker_client
    _book(c, booker, 999_999, 0)
    assert _book(c, booker, 999_999, 1).status_code == 429
    other = make_booker(community.county)
    c2 = Client()
    c2.force_login(other.account.user)
    assert _book(c2, other, 999_999, 2).status_code == 404


def test_one_address_is_limited_across_accounts(community, settings):
    settings.AVAILABILITY_PER_IP_MINUTE = 2
    session = make_session(community.county)
    params = {"department": session.department_id, "date": session.service_date.isoformat()}
    assert [Client().get(f"{URL}/sessions", params).status_code for _ in range(2)] == [200, 200]
    r = Client().get(f"{URL}/sessions", params)
    assert r.status_code == 429 and r.json()["limit"] == "ip"
    assert Client(REMOTE_ADDR="10.1.2.3").get(f"{URL}/sessions", params).status_code == 200


def test_repeated_limit_hits_flag_the_account_for_review_once_without_blocking(booker_client, settings):
    settings.BOOKING_PER_ACCOUNT_MINUTE = 1
    settings.AUTOMATION_FLAG_AFTER = 3
    booker, c = booker_client
    for n in range(6):
        _book(c, booker, 999_999, n)
    flags = AuditEvent.objects.filter(
        action="scheduling.automation_suspected", actor_id=booker.account.user.pk
    )
    assert flags.count() == 1


def test_desk_staff_booking_for_many_patients_are_not_limited_per_account(
    community, settings, staff_of, login
):
    settings.BOOKING_PER_ACCOUNT_MINUTE = 1
    c = login(staff_of("service_operator"))
    codes = [
        c.post(
            f"{URL}/appointments",
            json.dumps({"patient_id": 999_999, "session_id": 999_999}),
            content_type="application/json",
        ).status_code
        for _ in range(3)
    ]
    assert 429 not in codes
