"""Patient phone pages: home, family members, the e-health card and its self-refreshing QR."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import factories as f
from yilian.common import policy
from yilian.patients.models import CardTokenUse, FamilyLink, Patient


@pytest.fixture
def account(community):
    return f.make_patient_account("13700001234")


@pytest.fixture
def me(account, community):
    patient = f.make_patient(community.village, name="刘德华")
    f.issue_card(patient)
    f.link(account, patient, "self")
    return patient


@pytest.fixture
def mother(account, community):
    patient = f.make_patient(community.village, name="陈秀兰", birth=date(1952, 2, 3), sex="F")
    f.issue_card(patient)
    f.link(account, patient, "parent")
    return patient


@pytest.fixture
def phone(client, account):
    client.force_login(account.user)
    return client


def test_home_greets_and_lists_members_with_card_buttons(phone, me, mother):
    page = phone.get(reverse("h5:home"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "刘*华" in html and "陈*兰" in html
    assert reverse("h5:card", args=[mother.pk]) in html
    assert "刘德华" not in html  # names are masked on screen


def test_card_page_shows_the_managed_patients_qr(phone, me):
    page = phone.get(reverse("h5:card"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and 'id="qr-box"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "刘*华" in html


def test_card_of_a_patient_the_account_does_not_manage_is_not_found(phone, me, community):
    stranger = f.make_patient(community.village, name="张学友")
    f.issue_card(stranger)
    assert phone.get(reverse("h5:card", args=[stranger.pk])).status_code == 404
    assert phone.get(reverse("h5:card-qr", args=[stranger.pk])).status_code == 404
    assert phone.get(reverse("h5:card", args=[999999])).status_code == 404


def test_card_page_without_members_invites_to_add_one(phone, account):
    page = phone.get(reverse("h5:card"))
    assert page.status_code == 200
    assert reverse("h5:family") in page.content.decode()


def _shown(fragment) -> tuple[str, str]:
    """The nonce and expiry the fragment polls with (they name the code on screen)."""
    match = re.search(r"\?n=([A-Za-z0-9_-]+)&amp;e=(\d+)", fragment.content.decode())
    assert match, fragment.content.decode()
    return match.group(1), match.group(2)


def _since(fragment) -> str:
    return re.search(r"&amp;s=(\d+)", fragment.content.decode()).group(1)


def test_qr_fragment_is_kept_until_due_then_replaced(phone, me, settings, monkeypatch):
    url = reverse("h5:card-qr", args=[me.pk])
    first = phone.get(url)
    assert first.status_code == 200 and "<svg" in first.content.decode()
    nonce, expires = _shown(first)
    assert phone.get(url, {"n": nonce, "e": expires}).status_code == 204
    later = timezone.now() + timedelta(seconds=settings.CARD_TOKEN_REFRESH_SECONDS + 1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    again = phone.get(url, {"n": nonce, "e": expires})
    assert again.status_code == 200
    assert _shown(again)[0] != nonce
    assert "已完成扫码" not in again.content.decode()


def test_qr_refreshing_pauses_after_five_minutes_until_asked_again(phone, me, settings, monkeypatch):
    url = reverse("h5:card-qr", args=[me.pk])
    first = phone.get(url)
    nonce, expires = _shown(first)
    since = _since(first)
    later = timezone.now() + timedelta(seconds=301)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    paused = phone.get(url, {"n": nonce, "e": expires, "s": since})
    html = paused.content.decode()
    assert paused.status_code == 200
    assert "<svg" not in html and "hx-trigger" not in html and "继续出示健康卡" in html
    resumed = phone.get(url)
    assert "<svg" in resumed.content.decode() and 'hx-trigger="every 2s"' in resumed.content.decode()


def test_qr_is_replaced_at_once_after_it_was_scanned(phone, me):
    url = reverse("h5:card-qr", args=[me.pk])
    nonce, expires = _shown(phone.get(url))
    CardTokenUse.objects.create(nonce=nonce, card=me.cards.get(), used_at=timezone.now())  # the desk scans it
    after = phone.get(url, {"n": nonce, "e": expires})
    assert after.status_code == 200
    assert _shown(after)[0] != nonce
    assert "已完成扫码" in after.content.decode()


def test_family_page_adds_a_member_with_consent(phone, me, account):
    page = phone.post(
        reverse("h5:family"),
        {
            "name": "刘小雨",
            "id_type": "resident_id",
            "id_number": f.valid_id(date(2019, 4, 5), "F"),
            "relationship": "child",
            "phone": "",
            "consent": "on",
        },
    )
    assert page.status_code == 302
    link = FamilyLink.objects.get(account=account, patient__name="刘小雨")
    assert link.is_guardian


def test_family_page_shows_the_consent_error_inline(phone, me, account):
    page = phone.post(
        reverse("h5:family"),
        {
            "name": "刘小雨",
            "id_type": "resident_id",
            "id_number": f.valid_id(date(2019, 4, 5), "F"),
            "relationship": "child",
        },
    )
    assert page.status_code == 422
    assert "授权书" in page.content.decode()
    assert not Patient.objects.filter(name="刘小雨").exists()


def test_family_page_shows_the_limit_error(phone, me, account, community):
    for i in range(4):
        f.link(account, f.make_patient(community.village, name=f"成员{'一二三四'[i]}"), "other")
    page = phone.get(reverse("h5:family"))
    assert "最多绑定 5 位就诊人" in page.content.decode()
    page = phone.post(
        reverse("h5:family"),
        {
            "name": "刘六",
            "id_type": "resident_id",
            "id_number": f.valid_id(date(1990, 1, 1)),
            "relationship": "other",
            "consent": "on",
        },
    )
    assert page.status_code == 422
    assert 'data-code="FAMILY_BIND_LIMIT"' in page.content.decode()


def test_family_member_can_be_removed(phone, me, mother, account):
    page = phone.post(reverse("h5:family-remove", args=[mother.pk]))
    assert page.status_code == 302
    assert not FamilyLink.objects.filter(account=account, patient=mother).exists()


def test_removing_someone_elses_member_is_not_found(phone, me, community):
    other = f.make_patient_account("13700009999")
    stranger = f.make_patient(community.village, name="郭富城")
    f.link(other, stranger, "spouse")
    assert phone.post(reverse("h5:family-remove", args=[stranger.pk])).status_code == 404
    assert FamilyLink.objects.filter(account=other).exists()


@pytest.mark.parametrize("name", ["h5:home", "h5:family", "h5:card"])
def test_staff_cannot_use_patient_pages(client, staff_of, name):
    client.force_login(staff_of(policy.DOCTOR).user)
    assert client.get(reverse(name)).status_code == 403


def test_self_is_not_offered_again_once_bound(phone, me):
    html = phone.get(reverse("h5:family")).content.decode()
    assert 'value="self"' not in html and 'value="spouse"' in html


def test_self_is_offered_first_to_a_new_account(phone, account):
    html = phone.get(reverse("h5:family")).content.decode()
    assert 'value="self" selected' in html
