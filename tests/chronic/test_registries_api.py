"""``/api/v1/chronic/registries``: enrol, list, read, close, transfer, a patient's chronic profile."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests.chronic.factories import make_chronic_patient, make_follow_up, make_referral, make_registry
from yilian.chronic.models import Registry
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db
URL = "/api/v1/chronic/registries"
TODAY = timezone.localdate()


def _body(patient, org, **kw):
    body = {
        "patient_id": patient.pk,
        "disease": "htn",
        "registered_on": (TODAY - timedelta(days=3)).isoformat(),
        "diagnosed_on": (TODAY - timedelta(days=10)).isoformat(),
        "diagnosis_source": "county_hospital",
        "managing_org_id": org.pk,
    }
    body.update(kw)
    return body


def _post(client, url, body):
    return client.post(url, body, content_type="application/json")


def test_enrol_returns_201_with_labels(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    r = _post(
        login(village_doctor), URL, _body(patient, community.village, responsible_doctor_id=village_doctor.pk)
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["disease_label"] == "高血压" and body["status"] == "active" and body["status_label"] == "在管"
    assert body["managing_org"]["id"] == community.village.pk
    assert body["responsible_doctor"]["name"] == "赵村医"


def test_enrol_twice_is_409(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    client = login(village_doctor)
    assert _post(client, URL, _body(patient, community.village)).status_code == 201
    r = _post(client, URL, _body(patient, community.village))
    assert r.status_code == 409 and r.json()["code"] == "ALREADY_ENROLLED"


@pytest.mark.parametrize(
    "change",
    [
        {"disease": "flu"},
        {"disease": 3},
        {"patient_id": "x"},
        {"registered_on": "2026-13-01"},
        {"diagnosis_source": "gossip"},
        {"managing_org_id": None},
        {"reminder_consent": "maybe"},
        {"extra": "field"},
    ],
)
def test_wrong_types_and_unknown_values_are_422(login, community, village_doctor, change):
    patient = make_chronic_patient(community.village)
    r = _post(login(village_doctor), URL, _body(patient, community.village, **change))
    assert r.status_code == 422, r.content
    assert not Registry.objects.exists()


def test_enrol_future_date_and_diagnosis_after_registration_are_422(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    client = login(village_doctor)
    future = _post(
        client, URL, _body(patient, community.village, registered_on=(TODAY + timedelta(days=1)).isoformat())
    )
    assert future.status_code == 422 and future.json()["code"] == "DATE_IN_FUTURE"
    late_dx = _post(
        client,
        URL,
        _body(
            patient,
            community.village,
            diagnosed_on=TODAY.isoformat(),
            registered_on=(TODAY - timedelta(days=1)).isoformat(),
        ),
    )
    assert late_dx.status_code == 422 and late_dx.json()["field"] == "diagnosed_on"


def test_unknown_patient_and_other_villages_patient_are_404(login, community, village_doctor):
    client = login(village_doctor)
    stranger = make_chronic_patient(community.other_village)
    ghost = _post(client, URL, _body(stranger, community.village, patient_id=999999))
    other = _post(client, URL, _body(stranger, community.village))
    assert ghost.status_code == other.status_code == 404
    assert ghost.json()["code"] == other.json()["code"] == "NOT_FOUND"


def test_managing_org_outside_scope_is_422(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    r = _post(login(village_doctor), URL, _body(patient, community.other_village))
    assert r.status_code == 422 and r.json()["code"] == "ORGANISATION_NOT_IN_SCOPE"


def test_list_is_scoped_and_filterable(login, community, village_doctor, township_doctor):
    mine = make_registry(org=community.village)
    make_registry(org=community.village, disease="t2dm")
    make_registry(org=community.other_village)
    r = login(village_doctor).get(URL, {"disease": "htn"})
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [mine.pk]
    assert r.json()["items"][0]["patient_name"] == "李*国"  # masked in lists (李建国)
    assert AuditEvent.objects.filter(action="chronic.registry.list", detail__rows=1).exists()
    assert login(township_doctor).get(URL).json()["count"] == 2
    assert login(village_doctor).get(URL, {"disease": "flu"}).status_code == 422
    assert login(village_doctor).get(URL, {"limit": 0}).status_code == 422


def test_read_registry_is_audited_and_scoped(login, community, village_doctor, other_village_doctor):
    registry = make_registry(org=community.village)
    assert login(village_doctor).get(f"{URL}/{registry.pk}").status_code == 200
    assert AuditEvent.objects.filter(action="chronic.registry.view", patient_id=registry.patient_id).exists()
    assert login(other_village_doctor).get(f"{URL}/{registry.pk}").status_code == 404
    assert login(village_doctor).get(f"{URL}/999999").status_code == 404


def test_close_and_its_errors(login, community, village_doctor):
    registry = make_registry(org=community.village, registered_on=TODAY - timedelta(days=30))
    client = login(village_doctor)
    bad = _post(client, f"{URL}/{registry.pk}/close", {"closed_on": TODAY.isoformat(), "reason": "lost"})
    assert bad.status_code == 422
    before = _post(
        client,
        f"{URL}/{registry.pk}/close",
        {"closed_on": (TODAY - timedelta(days=31)).isoformat(), "reason": "death"},
    )
    assert before.status_code == 422 and before.json()["field"] == "closed_on"
    ok = _post(
        client,
        f"{URL}/{registry.pk}/close",
        {"closed_on": TODAY.isoformat(), "reason": "moved_out", "note": "迁往外省"},
    )
    assert (
        ok.status_code == 200 and ok.json()["status"] == "closed" and ok.json()["close_reason"] == "moved_out"
    )
    again = _post(client, f"{URL}/{registry.pk}/close", {"closed_on": TODAY.isoformat(), "reason": "death"})
    assert again.status_code == 409 and again.json()["code"] == "REGISTRY_CLOSED"


def test_transfer_responsible_doctor(login, community, township_doctor, village_doctor):
    registry = make_registry(org=community.village)
    r = _post(
        login(township_doctor), f"{URL}/{registry.pk}/transfer", {"responsible_doctor_id": village_doctor.pk}
    )
    assert r.status_code == 200 and r.json()["responsible_doctor"]["id"] == village_doctor.pk
    empty = _post(login(township_doctor), f"{URL}/{registry.pk}/transfer", {})
    assert empty.status_code == 422


def test_patient_profile_lists_registries_follow_ups_newest_first_and_open_referrals(
    login, community, village_doctor, other_village_doctor
):
    patient = make_chronic_patient(community.village)
    htn = make_registry(patient=patient, registered_on=date(2025, 1, 10))
    make_registry(patient=patient, disease="t2dm", registered_on=date(2025, 3, 1))
    make_follow_up(htn, visit_on=date(2025, 4, 1), sbp=150, dbp=95)
    later = make_follow_up(htn, visit_on=date(2025, 7, 1), sbp=152, dbp=95)
    referral = make_referral(htn, opened_on=date(2025, 7, 1), follow_up=later)
    r = login(village_doctor).get(f"/api/v1/chronic/patients/{patient.pk}/registries")
    assert r.status_code == 200, r.content
    body = r.json()
    assert {x["disease"] for x in body["registries"]} == {"htn", "t2dm"}
    assert [x["visit_on"] for x in body["follow_ups"]] == ["2025-07-01", "2025-04-01"]
    assert body["follow_ups"][0]["referral_id"] == referral.pk
    assert [x["id"] for x in body["open_referrals"]] == [referral.pk]
    assert AuditEvent.objects.filter(action="patient.view", patient_id=patient.pk, reason="api").exists()
    assert (
        login(other_village_doctor).get(f"/api/v1/chronic/patients/{patient.pk}/registries").status_code
        == 404
    )
    assert login(village_doctor).get("/api/v1/chronic/patients/999999/registries").status_code == 404


def test_reads_need_chronic_manage(login, community, staff_of):
    registry = make_registry(org=community.village)
    pharmacist = staff_of(policy.PHARMACIST, community.county)
    client = login(pharmacist)
    assert client.get(URL).status_code == 403
    assert client.get(f"/api/v1/chronic/patients/{registry.patient_id}/registries").status_code == 403


def _queries(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_lists_do_not_grow_queries_with_rows(login, community, village_doctor):
    """The registry, referral and profile lists read in a fixed number of queries (no N+1)."""
    client = login(village_doctor)
    patient = make_chronic_patient(community.village)
    first = make_registry(patient=patient, responsible_doctor=village_doctor)
    make_referral(first, opened_on=date(2025, 7, 1))
    make_follow_up(first, visit_on=date(2025, 7, 1), sbp=150, dbp=95)
    urls = [URL, "/api/v1/chronic/referrals", f"/api/v1/chronic/patients/{patient.pk}/registries"]
    [_queries(client, u) for u in urls]  # warm the session
    before = [_queries(client, u) for u in urls]
    for disease in ("t2dm", "chd", "copd"):
        r = make_registry(patient=patient, disease=disease, responsible_doctor=village_doctor)
        make_referral(r, opened_on=date(2025, 7, 2))
        make_follow_up(r, visit_on=date(2025, 7, 2), sbp=150, dbp=95, fpg_mmol="8.0")
    for _ in range(3):
        make_registry(org=community.village, responsible_doctor=village_doctor)
    assert [_queries(client, u) for u in urls] == before


def test_openapi_describes_the_registry_follow_up_and_referral_endpoints(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/v1/chronic/registries",
        "/api/v1/chronic/registries/{registry_id}/close",
        "/api/v1/chronic/registries/{registry_id}/transfer",
        "/api/v1/chronic/patients/{patient_id}/registries",
        "/api/v1/chronic/follow-ups",
        "/api/v1/chronic/registries/{registry_id}/follow-ups",
        "/api/v1/chronic/referrals/{referral_id}/track",
    ):
        assert path in paths, path
