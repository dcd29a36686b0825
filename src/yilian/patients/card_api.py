"""E-health card API (电子健康卡, 一码通用; access.md HC-1), mounted at ``/api/v1/cards/``.

* ``GET /mine/{patient_id}/token`` — a patient account gets a fresh QR token for a patient it
  manages (others: 404, never 403).
* ``POST /scan`` — a desk, kiosk or integrating system with ``CARD_SCAN`` turns a scanned token
  into the patient's id and a masked summary (``patients.card.verify_token``: signed, unexpired,
  used once).

No ``from __future__ import annotations`` here: ninja reads the handler annotations through the
``@requires`` wrapper, so they must be real classes, not strings.
"""

from datetime import date, datetime

from ninja import Field, Router, Schema

from yilian.common import masking, policy
from yilian.common.access import PATIENT, requires
from yilian.common.errors import NotFound
from yilian.patients import card as health_card
from yilian.patients.models import FamilyLink, HealthCard, Patient

router = Router(tags=["cards"])


class CardTokenRead(Schema):
    token: str
    card_no: str
    expires_at: datetime
    refresh_seconds: int
    qr_svg: str


class CardScan(Schema):
    token: str = Field(..., min_length=1, max_length=health_card.MAX_TOKEN_LENGTH)


class ScannedPatientRead(Schema):
    id: int
    name_masked: str
    sex: str
    birth_date: date
    age: int
    id_type: str
    id_masked: str
    phone_masked: str
    home_org_name: str
    realname_verified: bool
    card_no: str


@router.get("/mine/{patient_id}/token", response=CardTokenRead)
@requires(PATIENT)
def my_card_token(request, patient_id: int):
    actor = request.actor
    if patient_id not in actor.managed_patient_ids:
        raise NotFound()
    linked = FamilyLink.objects.filter(
        account_id=actor.patient_account_id, patient_id=patient_id, patient__status=Patient.Status.ACTIVE
    ).exists()
    card = HealthCard.objects.filter(patient_id=patient_id, status=HealthCard.Status.ACTIVE).first()
    if not linked or card is None:
        raise NotFound()
    token = health_card.make_token(card)
    return {
        "token": token,
        "card_no": card.card_no,
        "expires_at": health_card.token_expires_at(token),
        "refresh_seconds": health_card.refresh_seconds(),
        "qr_svg": health_card.card_qr_svg(token),
    }


@router.post("/scan", response=ScannedPatientRead)
@requires(policy.CARD_SCAN)
def scan_card(request, payload: CardScan):
    from yilian.patients import selectors as patient_selectors

    patient = health_card.verify_token(payload.token, actor=request.actor)
    card = HealthCard.objects.filter(patient=patient, status=HealthCard.Status.ACTIVE).first()
    return {
        "id": patient.pk,
        "name_masked": masking.mask_name(patient.name),
        "sex": patient.sex,
        "birth_date": patient.birth_date,
        "age": patient_selectors.age_on(patient.birth_date),
        "id_type": patient.id_type,
        "id_masked": patient_selectors.masked_id(patient.id_type, patient.id_head, patient.id_last4),
        "phone_masked": patient_selectors.masked_phone(patient.phone_last4),
        "home_org_name": patient.home_org.name,
        "realname_verified": patient.realname_verified,
        "card_no": card.card_no if card else "",
    }
