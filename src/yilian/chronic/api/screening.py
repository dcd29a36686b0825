"""Chronic-disease API: screening (筛查, R1.1–R1.4), under ``/api/v1/chronic/``.

Thin: parse, call one service or selector, shape the response. Every screening result carries the
rule IDs that fired (``rules_fired``). Residents outside the caller's scope are "not found".
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Literal

from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from yilian.chronic.models import Registry, ScreeningCase
from yilian.chronic.selectors import screening as selectors
from yilian.chronic.services import screening as services
from yilian.common import policy
from yilian.common.access import requires
from yilian.common.errors import InvalidInput

router = Router(tags=["chronic"])

SettingCode = Literal["free_clinic", "health_check", "clinic", "home"]
DiagnosisSource = Literal[
    "county_hospital", "higher_hospital", "township", "screening", "transfer_in", "other"
]


class ScreeningCreate(Schema):
    patient_id: int = Field(..., gt=0)
    organisation_id: int | None = Field(None, gt=0, description="测量机构；缺省为操作人所在机构")
    taken_on: date
    setting: SettingCode = "free_clinic"
    sbp: int | None = Field(None, ge=0, le=1000, description="收缩压 mmHg")
    dbp: int | None = Field(None, ge=0, le=1000, description="舒张压 mmHg")
    fpg_mmol: Decimal | None = Field(
        None, ge=0, le=1000, max_digits=6, decimal_places=2, description="空腹血糖 mmol/L"
    )
    glucose_any_mmol: Decimal | None = Field(
        None, ge=0, le=1000, max_digits=6, decimal_places=2, description="随机血糖 mmol/L"
    )
    ecg_abnormal: bool | None = None
    height_cm: Decimal | None = Field(None, ge=0, le=1000, max_digits=6, decimal_places=2)
    weight_kg: Decimal | None = Field(None, ge=0, le=1000, max_digits=6, decimal_places=2)
    waist_cm: Decimal | None = Field(None, ge=0, le=1000, max_digits=6, decimal_places=2)
    family_history_htn: bool = False
    family_history_dm: bool = False
    high_salt_diet: bool = False
    heavy_drinking: bool = False
    smoking: bool = False
    client_uuid: uuid.UUID | None = Field(None, description="手机端生成的提交编号：重试不会重复记录")


class CaseRead(Schema):
    id: int
    patient_id: int
    disease: str
    status: str
    status_label: str
    opened_on: date
    due_on: date
    closed_on: date | None
    registry_id: int | None


class ReferralBrief(Schema):
    id: int
    kind: str
    to_org_id: int
    to_org_name: str
    tracking_due_on: date


class ScreeningRead(Schema):
    id: int
    patient_id: int
    organisation_id: int
    taken_on: date
    setting: str
    sbp: int | None
    dbp: int | None
    fpg_mmol: Decimal | None
    glucose_any_mmol: Decimal | None
    ecg_abnormal: bool | None
    height_cm: Decimal | None
    weight_kg: Decimal | None
    waist_cm: Decimal | None
    bmi: Decimal | None
    result: str
    high_risk: bool
    risk_factors: list[str]
    rules_fired: list[str]
    next_bp_due: date | None
    message: str
    cases: list[CaseRead]
    referral: ReferralBrief | None
    replayed: bool = False


class ScreeningList(Schema):
    count: int
    items: list[ScreeningRead]


def _case(case: ScreeningCase) -> dict:
    return {
        "id": case.pk,
        "patient_id": case.patient_id,
        "disease": case.disease,
        "status": case.status,
        "status_label": str(ScreeningCase.Status(case.status).label),
        "opened_on": case.opened_on,
        "due_on": case.due_on,
        "closed_on": case.closed_on,
        "registry_id": case.registry_id,
    }


def screening_read(outcome: services.ScreeningOutcome) -> dict:
    reading = outcome.reading
    summary = selectors.describe_screening(reading, outcome.cases, outcome.referral)
    referral = outcome.referral
    return {
        **{
            f: getattr(reading, f)
            for f in (
                "id",
                "patient_id",
                "organisation_id",
                "taken_on",
                "setting",
                "sbp",
                "dbp",
                "fpg_mmol",
                "glucose_any_mmol",
                "ecg_abnormal",
                "height_cm",
                "weight_kg",
                "waist_cm",
                "result",
                "risk_factors",
                "rules_fired",
            )
        },
        "bmi": services.body_mass_index(reading.height_cm, reading.weight_kg),
        "high_risk": summary.high_risk,
        "next_bp_due": outcome.evaluation.next_bp_due if outcome.evaluation else summary.next_bp_due,
        "message": summary.message,
        "cases": [_case(c) for c in outcome.cases],
        "referral": {
            "id": referral.pk,
            "kind": referral.kind,
            "to_org_id": referral.to_org_id,
            "to_org_name": referral.to_org.name,
            "tracking_due_on": referral.tracking_due_on,
        }
        if referral
        else None,
        "replayed": outcome.replayed,
    }


def _default_org_id(request, organisation_id: int | None) -> int:
    if organisation_id is not None:
        return organisation_id
    org = selectors.default_organisation(request.actor)
    if org is None:
        raise InvalidInput(field="organisation_id")
    return org.pk


@router.post(
    "/screenings",
    response={201: ScreeningRead},
    summary="记录一次筛查（血压/血糖/危险因素），返回结果与触发的规则",
)
@requires(policy.CHRONIC_MANAGE)
def record(request, payload: ScreeningCreate):
    data = payload.model_dump()
    data["organisation_id"] = _default_org_id(request, data["organisation_id"])
    outcome = services.record_screening(actor=request.actor, **data)
    return Status(201, screening_read(outcome))


class PatientParams(Schema):
    patient_id: int = Field(..., gt=0)


@router.get("/screenings", response=ScreeningList, summary="某居民的筛查记录（最近20次）")
@requires(policy.CHRONIC_MANAGE)
def list_for_patient(request, params: Query[PatientParams]):
    patient = selectors.access_screening_patient(request.actor, params.patient_id, purpose="api")
    cases = selectors.cases_of(patient)
    items = [
        screening_read(services.ScreeningOutcome(reading=r, evaluation=None, cases=(), referral=None))
        for r in selectors.readings_of(patient)
    ]
    for item in items:
        item["cases"] = [_case(c) for c in cases if c.opened_on <= item["taken_on"]]
    return {"count": len(items), "items": items}


class DueParams(Schema):
    on: date | None = None
    page: int = Field(1, ge=1, le=100000)
    per_page: int = Field(selectors.PER_PAGE, ge=1, le=selectors.PER_PAGE_MAX)
    within_days: int = Field(14, ge=0, le=366)


class PatientBrief(Schema):
    id: int
    name: str
    sex: str
    age: int
    id_masked: str
    phone_masked: str
    home_org_name: str


class DueItem(Schema):
    patient: PatientBrief
    last_bp_on: date | None = None
    due_on: date | None = None
    days_overdue: int | None = None
    risk_factors: list[str] = []


class DuePage(Schema):
    total: int
    page: int
    per_page: int
    items: list[DueItem]


def _due_page(page: selectors.Page) -> dict:
    return {
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "items": [
            {
                "patient": row.patient,
                "last_bp_on": row.last_bp_on,
                "due_on": row.due_on,
                "days_overdue": row.days_overdue,
                "risk_factors": row.extra.get("risk_factors", []),
            }
            for row in page.items
        ],
    }


@router.get(
    "/screening-due", response=DuePage, summary="待筛查居民（≥35岁、本年度未测血压、未纳入高血压管理，R1.1）"
)
@requires(policy.CHRONIC_MANAGE)
def screening_due(request, params: Query[DueParams]):
    on = params.on or timezone.localdate()
    return _due_page(selectors.screening_due(request.actor, on, page=params.page, per_page=params.per_page))


@router.get("/high-risk-due", response=DuePage, summary="高危人群到期测血压（每6个月至少一次，R1.3）")
@requires(policy.CHRONIC_MANAGE)
def high_risk_due(request, params: Query[DueParams]):
    on = params.on or timezone.localdate()
    page = selectors.high_risk_due(
        request.actor, on, within_days=params.within_days, page=params.page, per_page=params.per_page
    )
    return _due_page(page)


class CaseDueItem(Schema):
    id: int
    disease: str
    status: str
    status_label: str
    opened_on: date
    due_on: date
    days_overdue: int
    organisation_name: str
    patient: PatientBrief


class CaseDuePage(Schema):
    total: int
    page: int
    per_page: int
    items: list[CaseDueItem]


@router.get("/screening-cases/due", response=CaseDuePage, summary="到期的疑似病例复查与转诊跟踪（R1.2）")
@requires(policy.CHRONIC_MANAGE)
def cases_due(request, params: Query[DueParams]):
    on = params.on or timezone.localdate()
    page = selectors.cases_due(
        request.actor, on, within_days=params.within_days, page=params.page, per_page=params.per_page
    )
    return {"total": page.total, "page": page.page, "per_page": page.per_page, "items": page.items}


class CaseConfirm(Schema):
    diagnosed_on: date
    diagnosis_source: DiagnosisSource
    managing_org_id: int = Field(..., gt=0)
    responsible_doctor_id: int | None = Field(None, gt=0)
    registered_on: date | None = None
    reminder_consent: bool = False


class CaseExclude(Schema):
    excluded_on: date | None = None
    reason: str = Field("", max_length=200)


class ConfirmResult(Schema):
    case: CaseRead
    registry_id: int
    disease: str


@router.post(
    "/screening-cases/{int:case_id}/confirm", response=ConfirmResult, summary="确诊并纳入专病管理（建档）"
)
@requires(policy.CHRONIC_MANAGE)
def confirm(request, case_id: int, payload: CaseConfirm):
    registry: Registry = services.confirm_case(actor=request.actor, case_id=case_id, **payload.model_dump())
    case = ScreeningCase.objects.get(pk=case_id)
    return {"case": _case(case), "registry_id": registry.pk, "disease": registry.disease}


@router.post("/screening-cases/{int:case_id}/exclude", response=CaseRead, summary="排除疑似病例")
@requires(policy.CHRONIC_MANAGE)
def exclude(request, case_id: int, payload: CaseExclude):
    return _case(services.exclude_case(actor=request.actor, case_id=case_id, **payload.model_dump()))
