"""``/api/v1/chronic/follow-ups`` and referrals: classification with rule IDs, referral to the right
organisation and its tracking, idempotent retries, scope, and a 4xx (never a 500) for bad input."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests.chronic.factories import make_chronic_patient, make_follow_up, make_registry
from yilian.chronic.models import FollowUp, Referral
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db
URL = "/api/v1/chronic/follow-ups"
TODAY = timezone.localdate()
VISIT = TODAY - timedelta(days=1)


@pytest.fixture
def htn(community):
    patient = make_chronic_patient(community.village, birth=date(1970, 5, 1))
    return make_registry(patient=patient, registered_on=TODAY - timedelta(days=200))


def _post(client, body):
    return client.post(URL, body, content_type="application/json")


def _visit(registry, **values):
    body = {"patient_id": registry.patient_id, "visit_on": VISIT.isoformat(), "mode": "clinic"}
    body.update(values)
    return body


def test_classification_with_chinese_label_and_rule_ids(login, htn, village_doctor):
    r = _post(login(village_doctor), _visit(htn, sbp=138, dbp=86, sbp2=136, dbp2=84))
    assert r.status_code == 201, r.content
    [result] = r.json()["results"]
    assert result["disease"] == "htn" and result["disease_label"] == "高血压"
    assert result["classification"] == "satisfied" and result["classification_label"] == "控制满意"
    assert set(result["rules_fired"]) >= {"R4.1", "R4.3", "R5.1"}
    assert result["bp_at_target"] is True and result["fpg_at_target"] is None
    assert result["urgent"] is False and result["referral"] == "none" and result["referral_id"] is None


def test_urgent_reading_opens_a_referral_to_the_township_and_returns_its_id(
    login, community, htn, village_doctor
):
    r = _post(login(village_doctor), _visit(htn, sbp=186, dbp=112))
    assert r.status_code == 201, r.content
    [result] = r.json()["results"]
    assert result["urgent"] is True and result["referral"] == "urgent"
    assert result["referral_label"] == "紧急转诊" and result["referral_reasons"][0] == "urgent"
    assert "R3.1" in result["rules_fired"] and "R3.3" in result["rules_fired"]
    assert set(result["urgent_signs"]) == {"sbp>=180", "dbp>=110"}  # which danger signs fired
    referral = Referral.objects.get(pk=result["referral_id"])
    assert referral.to_org == community.township
    assert referral.tracking_due_on == VISIT + timedelta(days=14)


def test_two_unsatisfied_then_the_next_visit_tracks_the_referral(login, htn, village_doctor):
    client = login(village_doctor)
    make_follow_up(htn, visit_on=VISIT - timedelta(days=20), sbp=150, dbp=95)
    first = _post(
        client, _visit(htn, visit_on=(VISIT - timedelta(days=5)).isoformat(), sbp=152, dbp=96)
    ).json()
    [result] = first["results"]
    assert result["referral"] == "routine" and result["referral_reasons"] == ["two_consecutive_unsatisfied"]
    assert "R5.3" in result["rules_fired"]
    _post(client, _visit(htn, mode="phone"))
    referral = Referral.objects.get(pk=result["referral_id"])
    assert referral.status == "tracked" and referral.tracked_on == VISIT

    listed = client.get("/api/v1/chronic/referrals", {"status": "tracked"}).json()
    assert [i["id"] for i in listed["items"]] == [referral.pk]


def test_retry_with_the_same_client_uuid_returns_the_same_answer(login, htn, village_doctor):
    client = login(village_doctor)
    body = _visit(htn, sbp=186, dbp=100, client_uuid=str(uuid.uuid4()))
    a, b = _post(client, body), _post(client, body)
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json()
    assert FollowUp.objects.count() == 1 and Referral.objects.count() == 1


@pytest.mark.parametrize(
    ("values", "code", "field"),
    [
        ({"sbp": 30, "dbp": 20}, "READING_OUT_OF_RANGE", "sbp"),
        ({"sbp": 400, "dbp": 90}, "READING_OUT_OF_RANGE", "sbp"),
        ({"sbp": 90, "dbp": 130}, "DIASTOLIC_NOT_BELOW_SYSTOLIC", "dbp"),
        ({"sbp": 130, "dbp": 80, "fpg_mmol": 126}, "GLUCOSE_UNIT_SUSPECT", "fpg_mmol"),
        (
            {"sbp": 130, "dbp": 80, "visit_on": (TODAY + timedelta(days=1)).isoformat()},
            "DATE_IN_FUTURE",
            "visit_on",
        ),
        ({"sbp": 130, "dbp": 80, "visit_on": "2020-01-01"}, "VISIT_BEFORE_ENROLMENT", "visit_on"),
        ({"mode": "home"}, "READINGS_REQUIRED", "sbp"),
        ({"sbp": 130, "dbp": 80, "diseases": ["t2dm"]}, "NOT_ENROLLED", "diseases"),
        ({"sbp": 130, "dbp": 80, "symptoms": ["headache"]}, "INVALID_INPUT", "symptoms"),
    ],
)
def test_bad_input_gets_a_clear_4xx(login, htn, village_doctor, values, code, field):
    r = _post(login(village_doctor), _visit(htn, **values))
    assert 400 <= r.status_code < 500, r.content
    body = r.json()
    assert body["code"] == code and body["field"] == field
    assert body["message"]
    assert not FollowUp.objects.exists()


def test_out_of_range_answer_names_the_allowed_range(login, htn, village_doctor):
    body = _post(login(village_doctor), _visit(htn, sbp=400, dbp=90)).json()
    assert body["min"] == "50" and body["max"] == "300" and "收缩压" in body["message"]


@pytest.mark.parametrize(
    "values",
    [
        {"sbp": "high", "dbp": 80},
        {"sbp": 130.5, "dbp": 80},
        {"sbp": 130, "dbp": 80, "visit_on": "yesterday"},
        {"sbp": 130, "dbp": 80, "mode": "wechat"},
        {"sbp": 130, "dbp": 80, "diseases": ["flu"]},
        {"sbp": 130, "dbp": 80, "diseases": "htn"},
        {"sbp": 130, "dbp": 80, "fpg_mmol": "7,0"},
        {"sbp": 130, "dbp": 80, "fpg_mmol": 6.15},
        {"sbp": 130, "dbp": 80, "client_uuid": "not-a-uuid"},
        {"sbp": 130, "dbp": 80, "note": "x" * 501},
        {"sbp": 130, "dbp": 80, "symptoms": ["x" * 41]},
        {"sbp": 130, "dbp": 80, "lifestyle": {"salt": "x" * 201}},
        {"sbp": 130, "dbp": 80, "medications": [{"name": "x" * 61}]},
        {"sbp": 130, "dbp": 80, "unexpected": 1},
        {"sbp": -5, "dbp": 80},
        {"patient_id": "abc"},
        {"patient_id": 0},
    ],
)
def test_wrong_types_and_overlong_strings_are_422(login, htn, village_doctor, values):
    r = _post(login(village_doctor), _visit(htn, **values))
    assert r.status_code == 422, r.content
    assert r.json()["code"] in {"VALIDATION_ERROR", "INVALID_INPUT", "READING_OUT_OF_RANGE"}


def test_not_json_is_a_4xx(login, htn, village_doctor):
    r = login(village_doctor).post(URL, "sbp=130", content_type="application/json")
    assert 400 <= r.status_code < 500


def test_unknown_patient_is_404(login, htn, village_doctor):
    r = _post(login(village_doctor), _visit(htn, patient_id=987654, sbp=130, dbp=80))
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


def test_village_doctor_of_another_village_gets_404_and_the_refusal_is_audited(
    login, htn, other_village_doctor
):
    r = _post(login(other_village_doctor), _visit(htn, sbp=130, dbp=80))
    assert r.status_code == 404
    assert not FollowUp.objects.exists()
    assert AuditEvent.objects.filter(outcome="refused", detail__code="NOT_FOUND").exists()


def test_roles_without_chronic_manage_are_refused(login, htn, staff_of, community):
    coordinator = staff_of(policy.COORDINATOR, community.county)
    r = _post(login(coordinator), _visit(htn, sbp=130, dbp=80))
    assert r.status_code == 403


def test_anonymous_is_401(client, htn):
    assert _post(client, _visit(htn, sbp=130, dbp=80)).status_code == 401


def test_follow_up_history_of_a_registry_newest_first(login, htn, village_doctor, other_village_doctor):
    make_follow_up(htn, visit_on=VISIT - timedelta(days=100), sbp=150, dbp=95)
    make_follow_up(htn, visit_on=VISIT - timedelta(days=10), sbp=130, dbp=80)
    r = login(village_doctor).get(f"/api/v1/chronic/registries/{htn.pk}/follow-ups")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["visit_on"] for i in items] == sorted([i["visit_on"] for i in items], reverse=True)
    assert items[0]["sbp"] == 130 and items[0]["organisation"]["name"]
    assert AuditEvent.objects.filter(action="chronic.registry.view", patient_id=htn.patient_id).exists()
    assert (
        login(other_village_doctor).get(f"/api/v1/chronic/registries/{htn.pk}/follow-ups").status_code == 404
    )


def test_follow_up_list_with_a_bad_limit_is_422(login, htn, village_doctor):
    r = login(village_doctor).get(f"/api/v1/chronic/registries/{htn.pk}/follow-ups", {"limit": "many"})
    assert r.status_code == 422


def test_track_and_cancel_a_referral(login, htn, village_doctor, other_village_doctor):
    client = login(village_doctor)
    result = _post(client, _visit(htn, sbp=186, dbp=100)).json()["results"][0]
    rid = result["referral_id"]
    # another village cannot see it
    other = login(other_village_doctor)
    assert (
        other.post(
            f"/api/v1/chronic/referrals/{rid}/track",
            {"tracked_on": VISIT.isoformat(), "outcome": "已就诊"},
            content_type="application/json",
        ).status_code
        == 404
    )
    client = login(village_doctor)
    r = client.post(
        f"/api/v1/chronic/referrals/{rid}/track",
        {"tracked_on": VISIT.isoformat(), "outcome": "已在镇卫生院就诊，调整用药"},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "tracked"
    again = client.post(
        f"/api/v1/chronic/referrals/{rid}/cancel", {"reason": "误开"}, content_type="application/json"
    )
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATUS_TRANSITION"


def test_tracking_before_the_referral_or_in_the_future_is_refused(login, htn, village_doctor):
    client = login(village_doctor)
    rid = _post(client, _visit(htn, sbp=186, dbp=100)).json()["results"][0]["referral_id"]
    early = client.post(
        f"/api/v1/chronic/referrals/{rid}/track",
        {"tracked_on": (VISIT - timedelta(days=1)).isoformat(), "outcome": "x"},
        content_type="application/json",
    )
    assert early.status_code == 422 and early.json()["field"] == "tracked_on"
    late = client.post(
        f"/api/v1/chronic/referrals/{rid}/track",
        {"tracked_on": (TODAY + timedelta(days=1)).isoformat(), "outcome": "x"},
        content_type="application/json",
    )
    assert late.status_code == 422 and late.json()["code"] == "DATE_IN_FUTURE"
    cancelled = client.post(
        f"/api/v1/chronic/referrals/{rid}/cancel", {"reason": "读数录入错误"}, content_type="application/json"
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_the_referral_list_masks_names_and_is_audited(login, htn, village_doctor):
    client = login(village_doctor)
    _post(client, _visit(htn, sbp=186, dbp=100))
    r = client.get("/api/v1/chronic/referrals")
    assert r.status_code == 200, r.content
    [item] = r.json()["items"]
    assert item["patient_name"] != htn.patient.name and "*" in item["patient_name"]
    assert AuditEvent.objects.filter(action="chronic.referral.list", detail__rows=1).exists()
