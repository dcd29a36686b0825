"""The security administrator's page (安全管理): API keys (shown once, prefix only afterwards,
revocable) and locked staff accounts (unlock, audited). 三员分立: doctors and auditors are refused."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from yilian.accounts import services
from yilian.accounts.errors import AccountLocked
from yilian.accounts.models import ApiKey, User
from yilian.accounts.selectors import actor_for_api_key, actor_for_user
from yilian.common.models import AuditEvent
from yilian.common.policy import AUDITOR, DOCTOR, SECADMIN, SYSADMIN

PAGE = "/accounts/security/"
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def secadmin(staff_of):
    return staff_of(SECADMIN, name="安全员")


def test_security_url_name():
    assert reverse("accounts:security") == PAGE


def test_secadmin_sees_the_page(login, secadmin):
    response = login(secadmin).get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert "接口密钥" in body and "被锁定的账号" in body


@pytest.mark.parametrize("role", [DOCTOR, AUDITOR, SYSADMIN])
def test_other_roles_get_403(login, staff_of, role):
    client = login(staff_of(role))
    assert client.get(PAGE).status_code == 403
    assert (
        client.post(
            reverse("accounts:security-key-create"), {"name": "x", "organisation": "COUNTY01"}
        ).status_code
        == 403
    )
    assert not ApiKey.objects.exists()


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_created_key_is_shown_once_then_only_its_prefix(login, secadmin):
    client = login(secadmin)
    response = client.post(
        reverse("accounts:security-key-create"), {"name": "检验 LIS", "organisation": "TS01"}, **HX
    )
    assert response.status_code == 200
    key = ApiKey.objects.get()
    full = re.search(r'<code id="new-key-secret">([^<]+)</code>', response.content.decode()).group(1)
    assert full.startswith(f"yl_{key.prefix}_")
    assert actor_for_api_key(full).api_key_id == key.pk  # the key shown is the key that works
    assert key.organisation.code == "TS01" and key.created_by == secadmin.user
    page = client.get(PAGE).content.decode()
    assert f"yl_{key.prefix}_" in page and full not in page
    assert full[-48:] not in key.key_hash
    assert AuditEvent.objects.filter(action="apikey.created", actor_id=secadmin.user.pk).exists()


def test_key_without_a_name_is_refused_on_the_page(login, secadmin):
    response = login(secadmin).post(
        reverse("accounts:security-key-create"), {"name": " ", "organisation": "TS01"}, **HX
    )
    assert response.status_code == 422
    assert "密钥名称" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_from_the_page(login, secadmin, community):
    key, _ = services.create_api_key(
        actor=actor_for_user(secadmin.user), organisation=community.county, name="HIS"
    )
    response = login(secadmin).post(reverse("accounts:security-key-revoke", args=[key.pk]), **HX)
    assert response.status_code == 200 and "已吊销" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(action="apikey.revoked", object_id=str(key.pk)).exists()


def test_township_secadmin_sees_only_keys_of_the_township(login, staff_of, secadmin, community):
    county_actor = actor_for_user(secadmin.user)
    services.create_api_key(actor=county_actor, organisation=community.township, name="本镇系统")
    other, _ = services.create_api_key(
        actor=county_actor, organisation=community.other_township, name="他镇系统"
    )
    local = login(staff_of(SECADMIN, community.township))
    body = local.get(PAGE).content.decode()
    assert "本镇系统" in body and "他镇系统" not in body
    assert local.post(reverse("accounts:security-key-revoke", args=[other.pk])).status_code == 404


@override_settings(STAFF_LOCKOUT_THRESHOLD=1)
def test_locked_accounts_are_listed_and_unlocked(login, secadmin, staff_of):
    doc = staff_of(DOCTOR, username="lidoc", name="李医生")
    with pytest.raises(AccountLocked):
        services.sign_in_staff(username="lidoc", password="wrong")
    client = login(secadmin)
    assert "lidoc" in client.get(PAGE).content.decode()
    response = client.post(reverse("accounts:security-unlock", args=[doc.user.pk]), **HX)
    assert response.status_code == 200 and "已解锁" in response.content.decode()
    user = User.objects.get(pk=doc.user.pk)
    assert user.locked_until is None and user.failed_logins == 0
    assert AuditEvent.objects.filter(
        action="auth.unlocked", object_id=str(user.pk), actor_id=secadmin.user.pk
    ).exists()
    assert "lidoc" not in client.get(PAGE).content.decode()


def test_unlocking_an_account_that_is_not_locked_is_a_conflict(secadmin, staff_of):
    doc = staff_of(DOCTOR)
    with pytest.raises(services.Conflict):
        services.unlock_user(actor=actor_for_user(secadmin.user), user_id=doc.user.pk)
