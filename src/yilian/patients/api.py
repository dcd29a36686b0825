"""Patients API (``/api/v1/patients/``): search, read, register, change, contacts, merge.

Thin: parse, call one service or selector, shape the response. Lists carry masked identifiers
only; the full record (decrypted) is read through ``selectors.access_patient``, which audits it.
"""

from django.http import HttpResponse
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from yilian.common import policy
from yilian.common.access import requires
from yilian.patients import selectors, services
from yilian.patients.models import Patient
from yilian.patients.schemas import (
    ContactCreate,
    ContactRead,
    MergeRequest,
    MergeResult,
    PatientCreate,
    PatientRead,
    PatientSearchResult,
    PatientUpdate,
)

router = Router(tags=["patients"])


class SearchParams(Schema):
    q: str = Field("", max_length=64, description="证件号、手机号、拼音首字母或姓名开头")
    limit: int = Field(20, ge=1, le=selectors.SEARCH_LIMIT_MAX)


_SCALARS = [
    f for f in PatientRead.model_fields if f not in {"home_org", "merged_into_id", "card", "contacts"}
]


def _read(patient: Patient) -> dict:
    card = selectors.active_card(patient)
    return {
        **{f: getattr(patient, f) for f in _SCALARS},
        "home_org": {"code": patient.home_org.code, "name": patient.home_org.name},
        "merged_into_id": patient.merged_into_id,
        "card": {"card_no": card.card_no, "status": card.status, "issued_at": card.issued_at}
        if card
        else None,
        "contacts": [
            {"id": c.id, "name": c.name, "relationship": c.relationship, "phone": c.phone}
            for c in selectors.contacts_of(patient)
        ],
    }


@router.get("/", response=PatientSearchResult, summary="检索患者（列表信息已脱敏）")
@requires(policy.PATIENT_SEARCH)
def search(request, params: Query[SearchParams]):
    result = selectors.search_patients(request.actor, params.q, limit=params.limit)
    return {"kind": result.kind, "count": len(result.rows), "items": result.rows}


@router.get("/{int:patient_id}", response=PatientRead, summary="患者完整档案（查阅留痕）")
@requires(policy.PATIENT_VIEW)
def read(request, patient_id: int, response: HttpResponse):
    response["Cache-Control"] = "no-store"  # decrypted identifiers: never kept by a proxy or browser
    return _read(selectors.access_patient(request.actor, patient_id, purpose="api"))


@router.post("/", response={201: PatientRead}, summary="建档（同时发放电子健康卡）")
@requires(policy.PATIENT_CREATE)
def register(request, payload: PatientCreate):
    patient = services.register_patient(actor=request.actor, **payload.model_dump())
    return Status(201, _read(patient))


@router.patch("/{int:patient_id}", response=PatientRead, summary="修改患者信息")
@requires(policy.PATIENT_UPDATE)
def update(request, patient_id: int, payload: PatientUpdate):
    patient = services.update_patient(
        actor=request.actor, patient_id=patient_id, **payload.model_dump(exclude_unset=True)
    )
    return _read(patient)


@router.post("/{int:patient_id}/contacts", response={201: ContactRead}, summary="添加联系人")
@requires(policy.PATIENT_UPDATE)
def add_contact(request, patient_id: int, payload: ContactCreate):
    contact = services.add_contact(actor=request.actor, patient_id=patient_id, **payload.model_dump())
    return Status(201, contact)


@router.post("/merge", response=MergeResult, summary="合并重复档案")
@requires(policy.PATIENT_MERGE)
def merge(request, payload: MergeRequest):
    outcome = services.merge_patients(actor=request.actor, **payload.model_dump())
    return {"survivor_id": outcome.survivor.pk, "duplicate_id": outcome.duplicate_id, "moved": outcome.moved}
