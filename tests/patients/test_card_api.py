"""The e-health card API at ``/api/v1/cards/``: a patient's fresh token, a desk's scan (access.md HC-1)."""

from __future__ import annotations

import pytest

from tests import factories as f
from yilian.common import policy
from yilian.common.models import AuditEvent
from yilian.patients import card


@pytest.fixture
def account(community):
    return f.make_patient_account("13600001111")


@pytest.fixture
def mine(account, community):
    patient = f.make_patient(community.village, name="黄大仙")
    f.issue_card(patient)
    f.link(account, patient, "self")
    return patient


@pytest.fixture
def stranger(community):
    patient = f.make_patient(community.other_village, name="林小姐")
    f.issue_card(patient)
    f.link(f.make_patient_account("13600002222"), patient, "self")
    return patient


def test_patient_gets_a_fresh_token_for_a_managed_patient(client, account, mine):
    client.force_login(account.user)
    r = client.get(f"/api/v1/cards/mine/{mine.pk}/token")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["token"].startswith("YLHC1.") and body["qr_svg"].startswith("<svg")
    assert card.token_parts(body["token"])[0] == body["card_no"]


def test_patient_cannot_get_a_token_for_another_patient(client, account, mine, stranger):
    client.force_login(account.user)
    r = client.get(f"/api/v1/cards/mine/{stranger.pk}/token")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


def test_staff_cannot_get_patient_tokens(client, staff_of, mine):
    client.force_login(staff_of(policy.DOCTOR).user)
    assert client.get(f"/api/v1/cards/mine/{mine.pk}/token").status_code == 403


def test_desk_scan_returns_the_patient_with_masked_identifiers(client, staff_of, community, mine):
    client.force_login(staff_of(policy.NURSE, community.township).user)
    token = card.make_token(mine.cards.get())
    r = client.post("/api/v1/cards/scan", {"token": token}, content_type="application/json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["id"] == mine.pk and body["name_masked"] == "黄*仙"
    assert mine.id_number not in r.content.decode()
    assert body["id_masked"].endswith(mine.id_number[-4:])


def test_replayed_scan_is_409(client, staff_of, mine):
    client.force_login(staff_of(policy.DOCTOR).user)
    token = card.make_token(mine.cards.get())
    client.post("/api/v1/cards/scan", {"token": token}, content_type="application/json")
    r = client.post("/api/v1/cards/scan", {"token": token}, content_type="application/json")
    assert r.status_code == 409 and r.json()["code"] == "CARD_TOKEN_REPLAYED"


def test_tampered_scan_is_400(client, staff_of, mine):
    client.force_login(staff_of(policy.DOCTOR).user)
    token = card.make_token(mine.cards.get())
    r = client.post("/api/v1/cards/scan", {"token": token[:-3] + "abc"}, content_type="application/json")
    assert r.status_code == 400 and r.json()["code"] == "CARD_TOKEN_INVALID"
    assert AuditEvent.objects.filter(outcome="refused", detail__code="CARD_TOKEN_INVALID").exists()  # L-1


def test_overlong_token_is_a_validation_error(client, staff_of):
    client.force_login(staff_of(policy.DOCTOR).user)
    r = client.post("/api/v1/cards/scan", {"token": "x" * 1000}, content_type="application/json")
    assert r.status_code == 422


def test_a_patient_account_cannot_scan(client, account, mine):
    client.force_login(account.user)
    token = card.make_token(mine.cards.get())
    r = client.post("/api/v1/cards/scan", {"token": token}, content_type="application/json")
    assert r.status_code == 403


def test_anonymous_cannot_scan(client, mine):
    token = card.make_token(mine.cards.get())
    r = client.post("/api/v1/cards/scan", {"token": token}, content_type="application/json")
    assert r.status_code == 401


def test_card_operations_are_in_the_openapi_schema(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/cards/scan" in paths and "/api/v1/cards/mine/{patient_id}/token" in paths
