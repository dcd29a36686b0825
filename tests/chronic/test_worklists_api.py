"""``/api/v1/chronic/worklists/…``: paginated lists, one-tap call results, reminders; 4xx on bad input."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.chronic.factories import make_chronic_patient, make_registry
from yilian.chronic.models import CallAttempt, Registry
from yilian.common import policy

pytestmark = pytest.mark.django_db

URL = "/api/v1/chronic/worklists/"


def _overdue(org, days: int, **kwargs):
    today = timezone.localdate()
    patient = make_chronic_patient(
        org, name=kwargs.pop("name", "李建国"), phone=kwargs.pop("phone", "13900001111")
    )
    return make_registry(
        patient=patient,
        registered_on=today - timedelta(days=800),
        next_follow_up_on=today - timedelta(days=days),
        **kwargs,
    )


@pytest.fixture
def village_client(community, staff_of, login):
    return login(staff_of(policy.VILLAGE_DOCTOR, community.village))


def _post(client, path, body):
    return client.post(URL + path, json.dumps(body), content_type="application/json")


def test_overdue_list_is_paginated_and_masked(community, village_client):
    for i in range(27):
        _overdue(community.village, i + 1, name="欧阳娜娜")
    first = village_client.get(URL + "overdue")
    second = village_client.get(URL + "overdue", {"page": 2})
    assert first.status_code == 200
    body = first.json()
    assert (body["total"], body["pages"], len(body["items"])) == (27, 2, 25)
    assert [i["days_overdue"] for i in body["items"]][:3] == [1, 2, 3]
    assert len(second.json()["items"]) == 2
    assert "欧阳娜娜" not in first.content.decode() and "13900001111" not in first.content.decode()
    assert body["items"][0]["name_masked"] == "欧**娜"


def test_counts_and_every_list_kind(community, village_client):
    _overdue(community.village, 3)
    counts = village_client.get(URL + "counts").json()
    assert counts["overdue"] == counts["call"] == 1
    for kind in ("due", "overdue", "uncontrolled", "missed", "call", "lost"):
        assert village_client.get(URL + kind).status_code == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [("overdue", {"page": "two"}), ("overdue", {"page": 0}), ("nonsense", {}), ("overdue", {"org_id": "x"})],
)
def test_bad_list_parameters_are_422(village_client, path, params):
    response = village_client.get(URL + path, params)
    assert response.status_code == 422


def test_filtering_by_an_organisation_outside_the_scope_is_404(community, village_client):
    assert village_client.get(URL + "overdue", {"org_id": community.other_village.pk}).status_code == 404


def test_record_a_call_result(community, village_client):
    registry = _overdue(community.village, 5)
    response = _post(
        village_client, "calls", {"registry_id": registry.pk, "outcome": "remind_later", "note": "在外地"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["call_snoozed_until"] == (timezone.localdate() + timedelta(days=7)).isoformat()
    assert body["registry_status"] == "active"
    died = _post(village_client, "calls", {"registry_id": registry.pk, "outcome": "died"})
    assert died.json()["registry_status"] == "closed"
    assert Registry.objects.get(pk=registry.pk).close_reason == "death"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"outcome": "hung_up"}, 422, "INVALID_CALL_OUTCOME"),
        ({"outcome": "reached", "registry_id": "abc"}, 422, "VALIDATION_ERROR"),
        ({"outcome": ["reached"]}, 422, "VALIDATION_ERROR"),
        ({"outcome": "reached", "note": "x" * 201}, 422, "VALIDATION_ERROR"),
        ({"outcome": "reached", "on": "2999-01-01"}, 422, "DATE_IN_FUTURE"),
    ],
)
def test_bad_call_input_is_4xx_and_writes_nothing(community, village_client, body, status, code):
    registry = _overdue(community.village, 5)
    response = _post(village_client, "calls", {"registry_id": registry.pk, **body})
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not CallAttempt.objects.exists()


def test_another_organisations_registry_is_404(community, village_client):
    registry = _overdue(community.other_village, 5)
    response = _post(village_client, "calls", {"registry_id": registry.pk, "outcome": "died"})
    assert response.status_code == 404
    assert Registry.objects.get(pk=registry.pk).status == "active"


def test_send_reminders(community, village_client):
    _overdue(community.village, 5, reminder_consent=True)
    response = _post(village_client, "reminders", {})
    assert (response.status_code, response.json()) == (200, {"queued": 1})
    assert _post(village_client, "reminders", {}).json() == {"queued": 0}


def test_roles_without_chronic_manage_are_refused(community, staff_of, login):
    client = login(staff_of(policy.PHARMACIST, community.village))
    assert client.get(URL + "overdue").status_code == 403
    assert _post(client, "calls", {"registry_id": 1, "outcome": "died"}).status_code == 403
