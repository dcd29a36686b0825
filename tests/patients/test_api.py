"""The JSON API: masking in lists, audited full reads, 201/409/422 contracts, query counts."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as f
from yilian.common.models import AuditEvent
from yilian.patients.models import HealthCard, Patient

URL = "/api/v1/patients/"


@pytest.fixture
def doctor_client(staff_of, community, login):
    return login(staff_of("doctor", community.township))


def _post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_list_is_masked(doctor_client, community):
    number = f.valid_id()
    f.make_patient(community.village, name="张三", id_number=number, phone="13912345678")
    response = doctor_client.get(URL, {"q": "zs"})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "initials" and body["count"] == 1
    item = body["items"][0]
    assert item["id_masked"] == number[:6] + "********" + number[-4:]
    assert item["phone_masked"] == "*******5678"
    assert number not in response.content.decode() and "13912345678" not in response.content.decode()


def _own(ctx) -> int:
    """Queries of the request itself, without the session middleware's bookkeeping writes."""
    return sum(
        not (q["sql"].startswith(("SAVEPOINT", "RELEASE")) or q["sql"].startswith('UPDATE "django_session'))
        for q in ctx.captured_queries
    )


def test_list_query_count_does_not_grow_with_results(doctor_client, community, django_assert_max_num_queries):
    f.make_patient(community.village, name="李四")
    with CaptureQueriesContext(connection) as one:
        assert doctor_client.get(URL, {"q": "ls"}).json()["count"] == 1
    for i in range(20):
        f.make_patient(community.village, name="张三", phone=f"139123456{i:02d}")
    # session, user, staff with roles; ONE search query; one audit insert; session save
    with django_assert_max_num_queries(9):
        response = doctor_client.get(URL, {"q": "zs", "limit": 20})
    assert response.json()["count"] == 20
    with CaptureQueriesContext(connection) as twenty:
        doctor_client.get(URL, {"q": "zs", "limit": 20})
    assert _own(twenty) == _own(one) == 5  # session, user, staff with roles, search, audit insert
    assert sum("patients_patient" in q["sql"] for q in twenty.captured_queries) == 1


def test_read_returns_the_full_record_and_is_audited(doctor_client, community):
    patient = f.make_patient(community.village, name="张三", phone="13912345678")
    f.issue_card(patient)
    response = doctor_client.get(f"{URL}{patient.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id_number"] == patient.id_number and body["phone"] == "13912345678"
    assert body["card"]["status"] == "active" and body["home_org"]["code"] == community.village.code
    assert AuditEvent.objects.filter(action="patient.view", patient_id=patient.pk, reason="api").count() == 1


def test_read_outside_scope_is_404(staff_of, community, login):
    patient = f.make_patient(community.other_village)
    client = login(staff_of("village_doctor", community.village))
    response = client.get(f"{URL}{patient.pk}")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_register_returns_201_with_card(doctor_client, community):
    response = _post(
        doctor_client,
        URL,
        {
            "name": "李秀英",
            "id_number": f.valid_id(date(1975, 3, 9), "F"),
            "phone": "13800138000",
            "home_org_code": community.village.code,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sex"] == "F" and body["birth_date"] == "1975-03-09" and body["card"]["status"] == "active"


def test_register_passport_without_birth_date_is_422_naming_the_field(doctor_client):
    response = _post(
        doctor_client,
        URL,
        {"name": "John Smith", "id_type": "passport", "id_number": "E12345678", "sex": "M"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "BIRTH_DATE_REQUIRED" and response.json()["field"] == "birth_date"


def test_duplicate_registration_is_409_and_nothing_written(doctor_client, community):
    number = f.valid_id()
    f.make_patient(community.village, name="张三丰", id_number=number)
    before = (Patient.objects.count(), HealthCard.objects.count())
    response = _post(doctor_client, URL, {"name": "张三丰", "id_number": number})
    assert response.status_code == 409
    assert response.json()["code"] == "DUPLICATE_PATIENT" and response.json()["existing_name"] == "张*丰"
    assert (Patient.objects.count(), HealthCard.objects.count()) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "张" * 51, "id_number": "x"}, "name"),
        ({"name": "张三", "id_number": "1" * 31}, "id_number"),
        ({"name": "张三", "id_number": 370687}, "id_number"),
        ({"name": "张三", "id_number": "x", "birth_date": "1980-02-30"}, "birth_date"),
        ({"name": "张三", "id_number": "x", "id_type": "driving_licence"}, "id_type"),
        ({"name": "张三", "id_number": "x", "sex": "X"}, "sex"),
        ({"name": "张三", "id_number": "x", "address_detail": "路" * 121}, "address_detail"),
        ({"name": "张三", "id_number": "x", "is_admin": True}, "is_admin"),
        ({"name": ["张三"], "id_number": "x"}, "name"),
    ],
)
def test_bad_input_is_422_naming_the_field(doctor_client, body, field):
    response = _post(doctor_client, URL, body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}
    assert Patient.objects.count() == 0


def test_unknown_org_code_is_422(doctor_client):
    response = _post(doctor_client, URL, {"name": "张三", "id_number": f.valid_id(), "home_org_code": "NOPE"})
    assert response.status_code == 422
    assert response.json()["code"] == "UNKNOWN_ORG" and response.json()["field"] == "home_org_code"


def test_invalid_json_is_4xx_not_500(doctor_client):
    response = doctor_client.post(URL, "{not json", content_type="application/json")
    assert 400 <= response.status_code < 500


def test_patch_changes_and_audits(doctor_client, community):
    patient = f.make_patient(community.village)
    response = doctor_client.patch(
        f"{URL}{patient.pk}", json.dumps({"village": "东村"}), content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["village"] == "东村"
    assert AuditEvent.objects.get(action="patient.update").detail == {"fields": ["village"]}


def test_patch_with_bad_id_is_422(doctor_client, community):
    patient = f.make_patient(community.village)
    response = doctor_client.patch(
        f"{URL}{patient.pk}", json.dumps({"id_number": "123"}), content_type="application/json"
    )
    assert response.status_code == 422 and response.json()["code"] == "ID_FORMAT"


def test_add_contact(doctor_client, community):
    patient = f.make_patient(community.village)
    response = _post(
        doctor_client,
        f"{URL}{patient.pk}/contacts",
        {"name": "张大", "relationship": "父亲", "phone": "13800000002"},
    )
    assert response.status_code == 201 and response.json()["phone"] == "13800000002"


def test_merge_endpoint(staff_of, community, login):
    keep, drop = f.make_patient(community.village), f.make_patient(community.village)
    client = login(staff_of("coordinator"))
    response = _post(
        client, f"{URL}merge", {"survivor_id": keep.pk, "duplicate_id": drop.pk, "reason": "重复建档"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["survivor_id"] == keep.pk
    assert Patient.objects.get(pk=drop.pk).status == "merged"


def test_merge_endpoint_refuses_doctors(doctor_client, community):
    keep, drop = f.make_patient(community.village), f.make_patient(community.village)
    response = _post(
        doctor_client, f"{URL}merge", {"survivor_id": keep.pk, "duplicate_id": drop.pk, "reason": "x"}
    )
    assert response.status_code == 403


def test_anonymous_is_401(client):
    assert client.get(URL, {"q": "zs"}).status_code == 401


@pytest.mark.parametrize(
    "params", [{"q": "zs", "limit": 1000}, {"q": "zs", "limit": "many"}, {"q": "张" * 65}]
)
def test_bad_search_parameters_are_422(doctor_client, params):
    response = doctor_client.get(URL, params)
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_ERROR"
