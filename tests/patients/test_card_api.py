"""The e-health card API: a patient's fresh token, and a desk's scan (access.md HC-1).

The router is mounted here on a NinjaAPI configured like ``yilian.api`` (same auth, same error
contract), so these tests do not depend on where the lead mounts it (``/api/v1/cards/``).
"""

from __future__ import annotations

import pytest
from django.urls import path
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError

from tests import factories as f
from yilian import api as main_api
from yilian.accounts.api import ApiAuth
from yilian.common import policy
from yilian.common.errors import DomainError
from yilian.patients import card
from yilian.patients.card_api import router

_api = NinjaAPI(urls_namespace="cards-under-test", auth=ApiAuth())
_api.add_exception_handler(DomainError, main_api.on_domain_error)
_api.add_exception_handler(NinjaValidationError, main_api.on_validation_error)
_api.add_router("/cards", router)
urlpatterns = [path("api/v1/", _api.urls)]

pytestmark = pytest.mark.urls(__name__)


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
