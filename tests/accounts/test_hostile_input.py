"""Hostile input never reaches the database as a 500: NUL characters (PostgreSQL refuses them in
text), over-long values, and wrong types get a 4xx with the error contract."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from yilian.common.policy import SECADMIN

API = "/api/v1/accounts"
NUL = "a\x00b"


def post_json(client, path, data):
    return client.post(f"{API}{path}", json.dumps(data), content_type="application/json")


def test_nul_in_a_staff_username_is_just_a_failed_sign_in(client, db):
    response = client.post(reverse("accounts:staff-login"), {"username": NUL, "password": "x"})
    assert response.status_code == 401
    assert post_json(client, "/login", {"username": NUL, "password": NUL}).status_code in (401, 422)


@pytest.mark.parametrize("field", ["phone", "code"])
def test_nul_in_phone_or_code_is_a_422(client, db, field):
    data = {"phone": "13800138000", "code": "123456", field: NUL}
    assert post_json(client, "/otp/verify", data).status_code == 422
    if field == "phone":
        assert post_json(client, "/otp/request", {"phone": NUL}).status_code == 422
        page = client.post(reverse("accounts:patient-send-code"), {"phone": NUL})
        assert page.status_code == 422


def test_nul_in_api_key_fields_is_a_422(client, staff_of):
    client.force_login(staff_of(SECADMIN).user)
    assert post_json(client, "/keys", {"organisation_code": NUL, "name": "x"}).status_code == 422
    assert post_json(client, "/keys", {"organisation_code": "COUNTY01", "name": NUL}).status_code == 422
    page = client.post(reverse("accounts:security-key-create"), {"organisation": NUL, "name": "x"})
    assert page.status_code == 422
    page = client.post(reverse("accounts:security-key-create"), {"organisation": "COUNTY01", "name": NUL})
    assert page.status_code == 422


def test_nul_in_an_api_key_header_is_a_401(client, db):
    assert client.get(f"{API}/me", HTTP_X_API_KEY="yl_\x00").status_code == 401


def test_wrong_types_are_a_422(client, db):
    assert post_json(client, "/otp/request", {"phone": 13800138000}).status_code == 422
    assert post_json(client, "/login", {"username": ["x"], "password": "y"}).status_code == 422
