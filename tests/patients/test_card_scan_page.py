"""The staff scan page (扫码识别): a desk scanner types the token and presses Enter."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories as f
from yilian.common import policy
from yilian.common.models import AuditEvent
from yilian.patients import card


@pytest.fixture
def patient(community):
    p = f.make_patient(community.village, name="孙悟空")
    f.issue_card(p)
    return p


def test_scan_page_has_an_autofocused_field_and_a_camera_fallback(login, staff_of):
    page = login(staff_of(policy.NURSE)).get(reverse("patients:scan"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="token"' in html and "autofocus" in html
    assert "BarcodeDetector" in html and "vendor/jsQR.js" in html


def test_a_valid_token_opens_the_patient_profile(login, staff_of, community, patient):
    client = login(staff_of(policy.PHARMACIST, community.other_township))
    token = card.make_token(patient.cards.get())
    page = client.post(reverse("patients:scan"), {"token": token + "\n"})
    assert page.status_code == 302
    assert page["Location"] == reverse("patients:detail", args=[patient.pk])
    # The patient belongs to another township: the presented card is what opens the record.
    profile = client.get(page["Location"])
    assert profile.status_code == 200
    assert patient.name in profile.content.decode()


@pytest.mark.parametrize(
    ("mangle", "code", "status"),
    [
        (lambda t: t[:-2] + "zz", "CARD_TOKEN_INVALID", 400),
        (lambda t: t.split(".")[1], "CARD_TOKEN_INVALID", 400),  # the bare card number
    ],
)
def test_a_bad_code_is_explained_inline(login, staff_of, patient, mangle, code, status):
    client = login(staff_of(policy.DOCTOR))
    page = client.post(reverse("patients:scan"), {"token": mangle(card.make_token(patient.cards.get()))})
    assert page.status_code == status
    html = page.content.decode()
    assert f'data-code="{code}"' in html and "二维码无效或已被篡改" in html
    assert AuditEvent.objects.filter(action="card.scan", outcome="refused").exists()


def test_a_replayed_code_is_explained_inline(login, staff_of, patient):
    client = login(staff_of(policy.DOCTOR))
    token = card.make_token(patient.cards.get())
    client.post(reverse("patients:scan"), {"token": token})
    page = client.post(reverse("patients:scan"), {"token": token})
    assert page.status_code == 409
    assert 'data-code="CARD_TOKEN_REPLAYED"' in page.content.decode()


@pytest.mark.parametrize("role", [policy.SYSADMIN, policy.AUDITOR, policy.COORDINATOR])
def test_roles_without_card_scan_are_refused(login, staff_of, role):
    assert login(staff_of(role)).get(reverse("patients:scan")).status_code == 403


def test_a_patient_account_is_refused(client, community):
    account = f.make_patient_account()
    client.force_login(account.user)
    assert client.get(reverse("patients:scan")).status_code == 403
