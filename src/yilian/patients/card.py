"""The e-health card QR token (电子健康卡动态码, 一码通用; access.md HC-1).

A token is what the patient's phone shows as a QR code and what any desk of the medical community
scans to identify the patient. Design:

* It carries the public card number (random, no personal data), an expiry and a random nonce,
  signed with Django's ``signing.Signer`` (HMAC-SHA256 under ``SECRET_KEY``, salt ``SALT``), so a
  code cannot be forged or altered, and the card number alone never opens a record.
* It expires ``settings.CARD_TOKEN_TTL_SECONDS`` after it was made, so a photographed code soon
  stops working; the phone shows a fresh one every ``CARD_TOKEN_REFRESH_SECONDS``.
* It works once: the first scan stores its nonce in ``CardTokenUse`` (unique column), so a
  replayed code is refused, race-safe because the database decides which insert wins.
* Layout: ``YLHC1.<card_no>.<expiry, base62 unix seconds>.<nonce>.<signature>``, about 80
  characters: a version-5 QR at error correction M, easy for phone cameras and desk scanners.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, datetime, timedelta

import segno
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common.errors import DomainError
from yilian.common.policy import Actor
from yilian.patients.models import CardTokenUse, HealthCard, Patient

PREFIX = "YLHC1."
SALT = "yilian.patients.card.token.v1"
SEP = "."
NONCE_BYTES = 9  # 72 bits, 12 URL-safe characters
MAX_TOKEN_LENGTH = 200  # anything longer is not ours; refuse before any work


class CardTokenInvalid(DomainError):
    code = "CARD_TOKEN_INVALID"
    status = 400
    default_message = _("二维码无效或已被篡改")


class CardTokenExpired(DomainError):
    code = "CARD_TOKEN_EXPIRED"
    status = 422
    default_message = _("二维码已过期，请患者刷新健康卡")


class CardTokenReplayed(DomainError):
    code = "CARD_TOKEN_REPLAYED"
    status = 409
    default_message = _("该二维码已被扫描使用过，请患者刷新健康卡后重新出示")


class CardRevoked(DomainError):
    code = "CARD_REVOKED"
    status = 422
    default_message = _("该电子健康卡已注销或患者档案已合并，请核实患者身份")


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT, sep=SEP)


def _now_ts() -> int:
    return int(timezone.now().timestamp())


REFRESH_MARGIN_SECONDS = 10  # a shown code keeps at least this long to be scanned


def refresh_seconds() -> int:
    """How often the phone shows a new code: ``CARD_TOKEN_REFRESH_SECONDS``, but always early enough
    that the code on screen has not expired yet (a setting mistake must not show dead codes)."""
    ttl = settings.CARD_TOKEN_TTL_SECONDS
    return max(1, min(settings.CARD_TOKEN_REFRESH_SECONDS, ttl - REFRESH_MARGIN_SECONDS))


def make_token(card: HealthCard) -> str:
    """A fresh, signed, single-use QR token for an active card (HC-1)."""
    if card.status != HealthCard.Status.ACTIVE:
        raise CardRevoked()
    expires = _now_ts() + settings.CARD_TOKEN_TTL_SECONDS
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    value = SEP.join([card.card_no, signing.b62_encode(expires), nonce])
    return PREFIX + _signer().sign(value)


def token_parts(token: str) -> tuple[str, int, str]:
    """``(card_no, expires_unix, nonce)`` of a token whose signature is valid, else ``CardTokenInvalid``.

    What desk scanners do to a code is undone, nothing else: surrounding whitespace or a newline,
    full-width characters (a scanner typing through a Chinese input method), and inverted case
    (a scanner typing with Caps Lock on, recognised by the lower-case prefix).
    """
    token = unicodedata.normalize("NFKC", (token or "")[: MAX_TOKEN_LENGTH * 2]).strip()
    if token.startswith(PREFIX.swapcase()):
        token = token.swapcase()
    if len(token) > MAX_TOKEN_LENGTH or not token.startswith(PREFIX):
        raise CardTokenInvalid(field="token")
    try:
        value = _signer().unsign(token[len(PREFIX) :])
        card_no, exp62, nonce = value.rsplit(SEP, 2)
        expires = signing.b62_decode(exp62)
    except (signing.BadSignature, ValueError) as exc:
        raise CardTokenInvalid(field="token") from exc
    if not card_no or not nonce:
        raise CardTokenInvalid(field="token")
    return card_no, expires, nonce


def token_expires_at(token: str) -> datetime:
    return datetime.fromtimestamp(token_parts(token)[1], tz=UTC)


def token_was_used(nonce: str) -> bool:
    return CardTokenUse.objects.filter(nonce=nonce).exists()


@transaction.atomic
def verify_token(token: str, *, actor: Actor) -> Patient:
    """Resolve a scanned QR token to its patient, once (HC-1; access.md B-2 spirit).

    Refusals: malformed or tampered → ``CARD_TOKEN_INVALID`` (400); past its expiry →
    ``CARD_TOKEN_EXPIRED`` (422); scanned before → ``CARD_TOKEN_REPLAYED`` (409); card revoked or
    patient merged → ``CARD_REVOKED`` (422). Who may then open the record is decided by
    ``patients.selectors.access_patient_for_card_scan`` (scope, permission, audit).
    """
    from yilian.patients import selectors as patient_selectors

    card_no, expires, nonce = token_parts(token)
    if _now_ts() > expires:
        raise CardTokenExpired(field="token")
    card = HealthCard.objects.select_related("patient").filter(card_no=card_no).first()
    if card is None:  # signed by us, but no such card: treat like a forged code
        raise CardTokenInvalid(field="token")
    if card.status != HealthCard.Status.ACTIVE or card.patient.status != Patient.Status.ACTIVE:
        raise CardRevoked(field="token")
    try:
        with transaction.atomic():  # savepoint: the unique nonce decides which scan wins
            CardTokenUse.objects.create(
                nonce=nonce, card=card, used_at=timezone.now(), used_by_id=actor.user_id
            )
    except IntegrityError as exc:
        raise CardTokenReplayed(field="token") from exc
    # The gate writes the audit row (patient.view, reason card_scan); CardTokenUse keeps which
    # card, when and by whom.
    return patient_selectors.access_patient_for_card_scan(actor, card.patient)


USE_RETENTION = timedelta(days=1)


def purge_token_uses(*, now: datetime | None = None) -> int:
    """Forget the nonces of tokens that expired over ``USE_RETENTION`` ago; returns how many.

    Safe because expiry is checked before replay: an expired token is refused whether or not its
    nonce is remembered. Who opened which record by card scan stays in the audit log
    (``patient.view``, reason ``card_scan``). Meant for a daily job.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CARD_TOKEN_TTL_SECONDS) - USE_RETENTION
    deleted, _by_model = CardTokenUse.objects.filter(used_at__lt=cutoff).delete()
    return deleted


def card_qr_svg(token: str, *, scale: int = 4, title: str = "") -> str:
    """The token as an inline SVG QR code (error correction M), sized by CSS."""
    qr = segno.make(token, error="m", micro=False, boost_error=False)
    return qr.svg_inline(scale=scale, border=2, title=title or None, omitsize=True, dark="#111")
