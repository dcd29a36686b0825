"""The accounts API: sign-in end points, /me, and API keys (valid, revoked, malformed, scoped)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from tests import factories as f
from tests.accounts.conftest import PASSWORD
from yilian.accounts import services
from yilian.accounts.models import ApiKey
from yilian.accounts.selectors import actor_for_user
from yilian.common.policy import AUDITOR, DOCTOR, SECADMIN

API = "/api/v1/accounts"
PHONE = "13800138000"


def post(client, path, data, **extra):
    return client.post(f"{API}{path}", json.dumps(data), content_type="application/json", **extra)


@pytest.fixture
def secadmin(staff_of):
    return staff_of(SECADMIN, name="安全员")


def issue_key(actor_staff, org, name="县医院 HIS") -> str:
    _, full = services.create_api_key(actor=actor_for_user(actor_staff.user), organisation=org, name=name)
    return full


# --- sign-in --------------------------------------------------------------------------------


def test_staff_login_returns_who_signed_in_with_roles(client, staff_of, community):
    staff_of(DOCTOR, community.township, username="lidoc", name="李医生")
    response = post(client, "/login", {"username": "lidoc", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "staff" and body["name"] == "李医生" and body["username"] == "lidoc"
    assert body["roles"] == [
        {
            "role": "doctor",
            "role_label": "医生",
            "organisation_code": "TS01",
            "organisation_name": "留格庄镇卫生院",
        }
    ]
    assert client.get(f"{API}/me").json()["username"] == "lidoc"  # the session cookie works


def test_staff_login_failure_uses_the_error_contract(client, staff_of):
    staff_of(DOCTOR, username="lidoc")
    unknown = post(client, "/login", {"username": "nobody", "password": "x"})
    wrong = post(client, "/login", {"username": "lidoc", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.json()["code"] == "INVALID_CREDENTIALS"


@override_settings(STAFF_LOCKOUT_THRESHOLD=2)
def test_staff_login_lockout_over_the_api(client, staff_of):
    staff_of(DOCTOR, username="lidoc")
    post(client, "/login", {"username": "lidoc", "password": "x"})
    locked = post(client, "/login", {"username": "lidoc", "password": "x"})
    assert locked.status_code == 423 and locked.json()["code"] == "ACCOUNT_LOCKED"
    assert "locked_until" in locked.json()
    assert post(client, "/login", {"username": "lidoc", "password": PASSWORD}).status_code == 423


def test_login_input_lengths_are_bounded(client, db):
    response = post(client, "/login", {"username": "a" * 151, "password": "x"})
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_ERROR"


def test_patient_sign_in_over_the_api(client, db, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(client, "/otp/request", {"phone": PHONE})
    assert sent.status_code == 200
    assert sent.json() == {"phone_masked": "138****8000", "expires_in": 300, "resend_after": 60}
    code = outbox[-1][1].split("验证码是 ")[1][:6]
    wrong = post(client, "/otp/verify", {"phone": PHONE, "code": f"{(int(code) + 1) % 10**6:06d}"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "OTP_INVALID"
    assert wrong.json()["attempts_left"] == 4
    response = post(client, "/otp/verify", {"phone": PHONE, "code": code})
    assert response.status_code == 200 and response.json()["kind"] == "patient"
    me = client.get(f"{API}/me").json()
    assert me["kind"] == "patient" and me["name"] == "138****8000" and me["roles"] == []


def test_otp_request_errors_use_the_contract(client, db, send_code):
    bad = post(client, "/otp/request", {"phone": "12345"})
    assert bad.status_code == 422 and bad.json()["code"] == "INVALID_INPUT" and bad.json()["field"] == "phone"
    send_code(PHONE, ip="127.0.0.1")
    limited = post(client, "/otp/request", {"phone": PHONE})
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED" and limited.json()["retry_after"] > 0


def test_me_requires_sign_in(client, db):
    response = client.get(f"{API}/me")
    assert response.status_code == 401 and response.json()["code"] == "NOT_AUTHENTICATED"


def test_api_logout_ends_the_session(client, staff_of):
    staff = staff_of(DOCTOR)
    client.force_login(staff.user)
    assert post(client, "/logout", {}).status_code == 204
    assert client.get(f"{API}/me").status_code == 401


# --- API keys -------------------------------------------------------------------------------


def test_valid_key_authenticates_as_its_organisation(client, secadmin, community):
    key = issue_key(secadmin, community.township)
    response = client.get(f"{API}/me", HTTP_X_API_KEY=key)
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "system" and body["name"] == "县医院 HIS"
    assert [r["organisation_code"] for r in body["roles"]] == ["TS01"]
    assert ApiKey.objects.get().last_used_at is not None


def test_revoked_key_gets_401(client, secadmin, community):
    key = issue_key(secadmin, community.township)
    services.revoke_api_key(actor=actor_for_user(secadmin.user), key_id=ApiKey.objects.get().pk)
    response = client.get(f"{API}/me", HTTP_X_API_KEY=key)
    assert response.status_code == 401 and response.json()["code"] == "NOT_AUTHENTICATED"


@pytest.mark.parametrize(
    "raw",
    ["garbage", "yl_abc", "yl_0123abcd_" + "0" * 48, "Bearer yl_x_y", "yl__", "yl_0123abcd_" + "g" * 48],
)
def test_malformed_or_unknown_key_gets_401(client, db, raw):
    response = client.get(f"{API}/me", HTTP_X_API_KEY=raw)
    assert response.status_code == 401


def test_key_with_a_right_prefix_but_wrong_secret_gets_401(client, secadmin, community):
    key = issue_key(secadmin, community.township)
    forged = key[:-4] + ("0000" if not key.endswith("0000") else "1111")
    assert client.get(f"{API}/me", HTTP_X_API_KEY=forged).status_code == 401


def test_key_of_one_township_cannot_see_another_townships_patients(client, secadmin, community):
    key = issue_key(secadmin, community.township)
    ours = f.make_patient(community.village, name="本镇患者")
    theirs = f.make_patient(community.other_village, name="他镇患者")
    mine = client.get(f"/api/v1/patients/{ours.pk}", HTTP_X_API_KEY=key)
    other = client.get(f"/api/v1/patients/{theirs.pk}", HTTP_X_API_KEY=key)
    assert mine.status_code == 200
    assert other.status_code == 404  # forbidden looks like missing


def test_secadmin_issues_lists_and_revokes_keys_over_the_api(client, secadmin, community):
    client.force_login(secadmin.user)
    created = post(client, "/keys", {"organisation_code": "ts01", "name": "乡镇 LIS"})
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(f"yl_{body['prefix']}_") and body["organisation_code"] == "TS01"
    listed = client.get(f"{API}/keys").json()
    assert [k["prefix"] for k in listed] == [body["prefix"]]
    assert "key" not in listed[0]  # the full key is never shown again
    assert client.get(f"{API}/me", HTTP_X_API_KEY=body["key"]).status_code == 200
    revoked = post(client, f"/keys/{body['id']}/revoke", {})
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert post(client, f"/keys/{body['id']}/revoke", {}).json()["code"] == "CONFLICT"
    assert client.get(f"{API}/me", HTTP_X_API_KEY=body["key"]).status_code == 401


def test_key_for_an_unknown_organisation_is_a_422(client, secadmin):
    client.force_login(secadmin.user)
    response = post(client, "/keys", {"organisation_code": "NOPE", "name": "x"})
    assert response.status_code == 422


def test_township_secadmin_cannot_issue_keys_for_another_township(client, staff_of, community):
    local = staff_of(SECADMIN, community.township)
    client.force_login(local.user)
    response = post(client, "/keys", {"organisation_code": "TS02", "name": "x"})
    assert response.status_code == 403
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("role", [DOCTOR, AUDITOR])
def test_key_endpoints_are_for_the_security_administrator_only(client, staff_of, role):
    client.force_login(staff_of(role).user)
    assert client.get(f"{API}/keys").status_code == 403
    assert post(client, "/keys", {"organisation_code": "COUNTY01", "name": "x"}).status_code == 403


def test_an_api_key_cannot_issue_keys(client, secadmin, community):
    key = issue_key(secadmin, community.county)
    response = post(client, "/keys", {"organisation_code": "COUNTY01", "name": "x"}, HTTP_X_API_KEY=key)
    assert response.status_code == 403


@override_settings(STAFF_LOCKOUT_THRESHOLD=1)
def test_secadmin_lists_and_unlocks_locked_accounts_over_the_api(client, secadmin, staff_of):
    doc = staff_of(DOCTOR, username="lidoc")
    with pytest.raises(services.AccountLocked):
        services.sign_in_staff(username="lidoc", password="x")
    client.force_login(secadmin.user)
    assert [u["username"] for u in client.get(f"{API}/locked-users").json()] == ["lidoc"]
    assert post(client, f"/users/{doc.user.pk}/unlock", {}).status_code == 204
    assert client.get(f"{API}/locked-users").json() == []
    assert services.sign_in_staff(username="lidoc", password=PASSWORD) == doc.user
