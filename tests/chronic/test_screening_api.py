"""Screening API (``/api/v1/chronic/screenings`` …): results with rule IDs, every bad input a 4xx."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.chronic.factories import make_chronic_patient
from yilian.chronic.models import Registry, ScreeningCase, ScreeningReading
from yilian.common import policy

URL = "/api/v1/chronic"


@pytest.fixture
def resident(community):
    return make_chronic_patient(community.village, name="周大山", birth=date(1970, 2, 3))


@pytest.fixture
def api(login, village_doctor):
    return login(village_doctor)


def body(patient, **kw):
    data = {"patient_id": patient.pk, "taken_on": date.today().isoformat(), "setting": "free_clinic"}
    data.update(kw)
    return data


def post(api, data):
    return api.post(f"{URL}/screenings", data, content_type="application/json")


def test_record_returns_result_rules_fired_case_and_message(api, resident, community):
    r = post(api, body(resident, sbp=150, dbp=92, height_cm="170", weight_kg="80"))
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["result"] == "suspected_htn"
    assert "R1.2" in data["rules_fired"] and "R1.3" in data["rules_fired"]
    assert data["organisation_id"] == community.village.pk  # the village doctor's clinic by default
    assert data["bmi"] == "27.7"
    assert data["cases"][0]["status"] == "suspected"
    assert data["cases"][0]["due_on"] == (date.today() + timedelta(days=14)).isoformat()
    assert "请在2周内复查" in data["message"]


def test_normal_result_still_returns_rules_fired(api, community):
    young = make_chronic_patient(community.village, name="年轻人", birth=date(1985, 1, 1))
    r = post(api, body(young, sbp=118, dbp=76))
    assert r.status_code == 201
    assert r.json()["result"] == "normal"
    assert r.json()["rules_fired"] == []
    assert r.json()["message"] == "血压正常。"


def test_three_days_refers_and_api_shows_referral(api, resident):
    today = date.today()
    for days in (20, 10):
        post(api, body(resident, taken_on=(today - timedelta(days=days)).isoformat(), sbp=150, dbp=95))
    r = post(api, body(resident, sbp=146, dbp=91))
    data = r.json()
    assert data["result"] == "preliminary_htn"
    assert data["referral"]["to_org_name"] == "留格庄镇卫生院"
    assert data["referral"]["tracking_due_on"] == (today + timedelta(days=14)).isoformat()


def test_retry_with_same_client_uuid_returns_the_first_reading(api, resident):
    key = str(uuid.uuid4())
    first = post(api, body(resident, sbp=150, dbp=95, client_uuid=key)).json()
    again = post(api, body(resident, sbp=150, dbp=95, client_uuid=key))
    assert again.status_code == 201
    assert again.json()["id"] == first["id"] and again.json()["replayed"] is True
    assert ScreeningReading.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"sbp": 30, "dbp": 20}, 422, "READING_OUT_OF_RANGE"),
        ({"sbp": 400, "dbp": 90}, 422, "READING_OUT_OF_RANGE"),
        ({"sbp": 120, "dbp": 130}, 422, "DIASTOLIC_NOT_BELOW_SYSTOLIC"),
        ({"fpg_mmol": "126"}, 422, "GLUCOSE_UNIT_SUSPECT"),
        (
            {"sbp": 120, "dbp": 80, "taken_on": (date.today() + timedelta(days=1)).isoformat()},
            422,
            "DATE_IN_FUTURE",
        ),
        ({"sbp": 120}, 422, "BP_INCOMPLETE"),
        ({}, 422, "SCREENING_EMPTY"),
        ({"sbp": "high", "dbp": 80}, 422, "VALIDATION_ERROR"),
        ({"sbp": 120.5, "dbp": 80}, 422, "VALIDATION_ERROR"),
        ({"sbp": 120, "dbp": 80, "taken_on": "yesterday"}, 422, "VALIDATION_ERROR"),
        ({"sbp": 120, "dbp": 80, "setting": "market"}, 422, "VALIDATION_ERROR"),
        ({"sbp": 120, "dbp": 80, "client_uuid": "not-a-uuid"}, 422, "VALIDATION_ERROR"),
        ({"sbp": 120, "dbp": 80, "patient_id": "abc"}, 422, "VALIDATION_ERROR"),
        ({"sbp": 120, "dbp": 80, "patient_id": 99999999}, 404, "NOT_FOUND"),
        ({"sbp": 120, "dbp": 80, "fpg_mmol": "NaN"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_input_is_4xx_and_writes_nothing(api, resident, change, status, code):
    r = post(api, body(resident, **change))
    assert r.status_code == status, r.content
    assert r.json()["code"] == code
    assert r.json()["message"]
    assert not ScreeningReading.objects.exists()


def test_other_villages_resident_and_org_are_not_found(api, community, resident):
    stranger = make_chronic_patient(community.other_village, name="吴外村")
    assert post(api, body(stranger, sbp=120, dbp=80)).status_code == 404
    r = post(api, body(resident, sbp=120, dbp=80, organisation_id=community.other_village.pk))
    assert r.status_code == 404
    assert api.get(f"{URL}/screenings", {"patient_id": stranger.pk}).status_code == 404
    assert not ScreeningReading.objects.exists()


def test_patient_history_lists_readings_with_rules(api, resident):
    post(api, body(resident, sbp=150, dbp=95))
    r = api.get(f"{URL}/screenings", {"patient_id": resident.pk})
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert r.json()["items"][0]["rules_fired"] == ["R1.2", "R1.3"]


def test_due_lists(api, resident, community):
    make_chronic_patient(community.village, name="待筛", birth=date(1960, 1, 1))
    post(api, body(resident, taken_on=(date.today() - timedelta(days=20)).isoformat(), sbp=150, dbp=95))
    due = api.get(f"{URL}/screening-due")
    assert due.status_code == 200
    assert [i["patient"]["name"] for i in due.json()["items"]] == ["待筛"]
    cases = api.get(f"{URL}/screening-cases/due").json()
    assert cases["total"] == 1 and cases["items"][0]["days_overdue"] == 6
    assert api.get(f"{URL}/high-risk-due", {"within_days": 200}).json()["total"] == 0  # open case: elsewhere
    assert api.get(f"{URL}/screening-due", {"per_page": 1000}).status_code == 422
    assert api.get(f"{URL}/screening-due", {"on": "soon"}).status_code == 422


def test_confirm_via_api_enrols(api, resident, community, village_doctor):
    case_id = post(api, body(resident, sbp=150, dbp=95)).json()["cases"][0]["id"]
    r = api.post(
        f"{URL}/screening-cases/{case_id}/confirm",
        {
            "diagnosed_on": date.today().isoformat(),
            "diagnosis_source": "screening",
            "managing_org_id": community.village.pk,
            "responsible_doctor_id": village_doctor.pk,
        },
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["case"]["status"] == "confirmed"
    assert Registry.objects.get(pk=r.json()["registry_id"]).patient_id == resident.pk
    again = api.post(f"{URL}/screening-cases/{case_id}/exclude", {}, content_type="application/json")
    assert again.status_code == 409


def test_confirm_bad_input_is_4xx(api, resident, community):
    case_id = post(api, body(resident, sbp=150, dbp=95)).json()["cases"][0]["id"]
    good = {
        "diagnosed_on": date.today().isoformat(),
        "diagnosis_source": "screening",
        "managing_org_id": community.village.pk,
    }
    for change, status in (
        ({"diagnosis_source": "gossip"}, 422),
        ({"diagnosed_on": (date.today() + timedelta(days=3)).isoformat()}, 422),
        ({"managing_org_id": community.other_village.pk}, 422),
        ({"managing_org_id": "x"}, 422),
    ):
        r = api.post(
            f"{URL}/screening-cases/{case_id}/confirm", {**good, **change}, content_type="application/json"
        )
        assert r.status_code == status, (change, r.content)
    assert (
        api.post(f"{URL}/screening-cases/999999/exclude", {}, content_type="application/json").status_code
        == 404
    )
    assert ScreeningCase.objects.get(pk=case_id).status == "suspected"
    assert not Registry.objects.exists()


def test_roles_without_chronic_manage_are_refused(login, community, staff_of, resident):
    pharmacist = login(staff_of(policy.PHARMACIST, community.village))
    assert post(pharmacist, body(resident, sbp=120, dbp=80)).status_code == 403
    assert pharmacist.get(f"{URL}/screening-due").status_code == 403


def test_openapi_documents_the_screening_and_contract_endpoints(api):
    r = api.get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/api/v1/chronic/screenings", "/api/v1/chronic/screening-due", "/api/v1/chronic/contracts"):
        assert p in paths


def _queries(api, url, params=None) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert api.get(url, params or {}).status_code == 200
    return len(ctx)


@pytest.mark.parametrize(
    "url", ["/screening-due", "/high-risk-due", "/screening-cases/due", "/family-doctor-teams"]
)
def test_list_endpoints_query_count_does_not_grow_with_rows(api, community, url, village_doctor):
    from tests.chronic.conftest import actor_of
    from yilian.chronic.services import contracts

    def add(n: int) -> None:
        for i in range(n):
            p = make_chronic_patient(community.village, name=f"王{i}{n}", birth=date(1950, 1, 1))
            post(api, body(p, sbp=150, dbp=95, taken_on=(date.today() - timedelta(days=200)).isoformat()))
            post(
                api,
                body(
                    make_chronic_patient(community.village, name=f"赵{i}{n}", birth=date(1950, 1, 1)),
                    sbp=120,
                    dbp=70,
                    taken_on=(date.today() - timedelta(days=200)).isoformat(),
                ),
            )
            contracts.create_team(
                actor=actor_of(village_doctor),
                organisation_id=community.village.pk,
                name=f"组{i}{n}",
                leader_id=village_doctor.pk,
            )

    add(2)
    few = _queries(api, URL + url, {"within_days": 200})
    add(6)
    many = _queries(api, URL + url, {"within_days": 200})
    assert many == few
