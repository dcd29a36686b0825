"""The e-health card QR token (access.md HC-1): signed, short-lived, single-use, scoped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.common import policy
from yilian.common.errors import PermissionDenied
from yilian.common.models import AuditEvent
from yilian.patients import card
from yilian.patients.models import CardTokenUse, HealthCard, Patient


@pytest.fixture
def patient(community):
    return f.make_patient(community.village, name="李秀英")


@pytest.fixture
def health_card(patient):
    return f.issue_card(patient)


@pytest.fixture
def doctor(staff_of, community):
    return actor_for_user(staff_of(policy.DOCTOR, community.township).user)


def _travel(monkeypatch, seconds: int) -> None:
    moment = timezone.now() + timedelta(seconds=seconds)
    monkeypatch.setattr("django.utils.timezone.now", lambda: moment)


def test_token_round_trip_identifies_the_patient(health_card, patient, doctor):
    token = card.make_token(health_card)
    assert card.verify_token(token, actor=doctor) == patient


def test_token_is_compact_url_safe_and_carries_no_personal_data(patient):
    from yilian.patients import services

    real = HealthCard.objects.create(
        patient=patient, card_no=services.new_card_no(), issued_at=timezone.now()
    )
    token = card.make_token(real)
    assert token.startswith("YLHC1.")
    assert len(token) < 90
    assert re.fullmatch(r"[A-Za-z0-9._\-]+", token)
    assert patient.name not in token and patient.id_number not in token


def test_each_token_is_different(health_card):
    assert card.make_token(health_card) != card.make_token(health_card)


def test_scanner_whitespace_is_tolerated(health_card, patient, doctor):
    token = card.make_token(health_card)
    assert card.verify_token(f"  {token}\r\n", actor=doctor) == patient


def test_expired_token_is_refused(health_card, doctor, monkeypatch, settings):
    token = card.make_token(health_card)
    _travel(monkeypatch, settings.CARD_TOKEN_TTL_SECONDS + 1)
    with pytest.raises(card.CardTokenExpired) as exc:
        card.verify_token(token, actor=doctor)
    assert exc.value.status == 422 and exc.value.code == "CARD_TOKEN_EXPIRED"


def test_token_is_accepted_until_its_expiry(health_card, patient, doctor, monkeypatch, settings):
    token = card.make_token(health_card)
    _travel(monkeypatch, settings.CARD_TOKEN_TTL_SECONDS - 2)
    assert card.verify_token(token, actor=doctor) == patient


@pytest.mark.parametrize("position", [6, 10, 25, 40, -1, -20])
def test_tampered_token_is_refused(health_card, doctor, position):
    token = card.make_token(health_card)
    i = position % len(token)
    if token[i] == ".":
        i += 1
    flipped = token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1 :]
    with pytest.raises(card.CardTokenInvalid) as exc:
        card.verify_token(flipped, actor=doctor)
    assert exc.value.status == 400 and exc.value.code == "CARD_TOKEN_INVALID"
    assert not CardTokenUse.objects.exists()


def test_token_for_another_card_number_cannot_be_forged(health_card, community, doctor):
    other = f.issue_card(f.make_patient(community.village, name="王五"))
    token = card.make_token(health_card)
    forged = token.replace(health_card.card_no, other.card_no)
    with pytest.raises(card.CardTokenInvalid):
        card.verify_token(forged, actor=doctor)


def test_token_signed_under_another_salt_is_refused(health_card, doctor):
    value = f"{health_card.card_no}.{signing.b62_encode(int(timezone.now().timestamp()) + 60)}.abcdefabcdef"
    forged = card.PREFIX + signing.Signer(salt="other", sep=".").sign(value)
    with pytest.raises(card.CardTokenInvalid):
        card.verify_token(forged, actor=doctor)


@pytest.mark.parametrize("raw", ["", "hello", "YLHC1.", "YLHC1.a.b.c", "YL" + "0" * 16, "x" * 5000])
def test_garbage_and_bare_card_numbers_are_refused(raw, health_card, doctor):
    with pytest.raises(card.CardTokenInvalid):
        card.verify_token(raw, actor=doctor)


def test_card_number_alone_does_not_open_the_record(health_card, doctor):
    with pytest.raises(card.CardTokenInvalid):
        card.verify_token(health_card.card_no, actor=doctor)
    with pytest.raises(card.CardTokenInvalid):
        card.verify_token(card.PREFIX + health_card.card_no, actor=doctor)


def test_second_scan_of_the_same_token_is_refused(health_card, doctor):
    token = card.make_token(health_card)
    card.verify_token(token, actor=doctor)
    with pytest.raises(card.CardTokenReplayed) as exc:
        card.verify_token(token, actor=doctor)
    assert exc.value.status == 409 and exc.value.code == "CARD_TOKEN_REPLAYED"
    assert CardTokenUse.objects.count() == 1


def test_token_of_a_revoked_card_is_refused(health_card, doctor):
    token = card.make_token(health_card)
    HealthCard.objects.filter(pk=health_card.pk).update(status="revoked", revoked_at=timezone.now())
    with pytest.raises(card.CardRevoked) as exc:
        card.verify_token(token, actor=doctor)
    assert exc.value.status == 422 and exc.value.code == "CARD_REVOKED"


def test_token_of_a_merged_patient_is_refused(health_card, patient, community, doctor):
    token = card.make_token(health_card)
    survivor = f.make_patient(community.village, name="李秀英")
    Patient.objects.filter(pk=patient.pk).update(status="merged", merged_into=survivor)
    with pytest.raises(card.CardRevoked):
        card.verify_token(token, actor=doctor)


def test_no_token_is_made_for_a_revoked_card(health_card):
    health_card.status = HealthCard.Status.REVOKED
    with pytest.raises(card.CardRevoked):
        card.make_token(health_card)


def test_any_desk_of_the_community_may_scan_outside_its_own_subtree(
    health_card, patient, staff_of, community
):
    """HC-1: the code works at every desk; the patient is present, so home-org scope does not apply."""
    other_desk = actor_for_user(staff_of(policy.PHARMACIST, community.other_village).user)
    assert card.verify_token(card.make_token(health_card), actor=other_desk) == patient


def test_a_role_without_card_scan_cannot_use_a_token_and_does_not_burn_it(
    health_card, patient, staff_of, doctor
):
    admin = actor_for_user(staff_of(policy.SYSADMIN).user)
    token = card.make_token(health_card)
    with pytest.raises(PermissionDenied):
        card.verify_token(token, actor=admin)
    assert card.verify_token(token, actor=doctor) == patient


def test_a_successful_scan_is_audited(health_card, patient, doctor):
    card.verify_token(card.make_token(health_card), actor=doctor)
    event = AuditEvent.objects.get(patient_id=patient.pk)
    assert (event.action, event.reason, event.actor_id) == ("patient.view", "card_scan", doctor.user_id)
    use = CardTokenUse.objects.get()
    assert (use.card_id, use.used_by_id) == (health_card.pk, doctor.user_id)


def test_qr_svg_is_inline_svg(health_card):
    svg = card.card_qr_svg(card.make_token(health_card))
    assert svg.startswith("<svg") and "path" in svg
    assert "<?xml" not in svg


def test_purging_old_nonces_keeps_expired_tokens_refused(health_card, doctor, monkeypatch):
    token = card.make_token(health_card)
    card.verify_token(token, actor=doctor)
    fresh = card.make_token(health_card)
    card.verify_token(fresh, actor=doctor)
    CardTokenUse.objects.exclude(nonce=card.token_parts(fresh)[2]).update(
        used_at=timezone.now() - timedelta(days=2)
    )
    assert card.purge_token_uses() == 1
    assert CardTokenUse.objects.count() == 1
    _travel(monkeypatch, 3 * 24 * 3600)
    with pytest.raises(card.CardTokenExpired):
        card.verify_token(token, actor=doctor)


def test_the_phone_refreshes_before_the_code_on_screen_expires(settings):
    settings.CARD_TOKEN_TTL_SECONDS, settings.CARD_TOKEN_REFRESH_SECONDS = 60, 30
    assert card.refresh_seconds() == 30
    settings.CARD_TOKEN_REFRESH_SECONDS = 90  # a setting mistake
    assert card.refresh_seconds() == 50


def test_a_scanner_typing_with_caps_lock_on_still_works(health_card, patient, doctor):
    token = card.make_token(health_card)
    assert card.verify_token(token.swapcase(), actor=doctor) == patient


def test_a_scanner_typing_full_width_characters_still_works(health_card, patient, doctor):
    token = card.make_token(health_card)
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in token)
    assert card.verify_token(full_width, actor=doctor) == patient
