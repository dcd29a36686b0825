"""API schemas for chronic-disease management, by direction (``XCreate`` in, ``XRead`` out).

Every input string has a length limit and unknown keys are refused; readings are typed and
bounded loosely here (the plausible ranges and their specific errors are ``rules.RANGES`` via the
services, so that the API and the pages refuse alike).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StringConstraints

DiseaseCode = Literal["htn", "t2dm", "chd", "stroke", "copd", "cancer"]
DiagnosisSource = Literal[
    "county_hospital", "higher_hospital", "township", "screening", "transfer_in", "other"
]
CloseReason = Literal["death", "moved_out", "diagnosis_revoked"]
Mode = Literal["clinic", "home", "phone"]
Adherence = Literal["", "regular", "intermittent", "none"]

# Bounds wide enough to let the services answer with the specific reading errors
# (READING_OUT_OF_RANGE, GLUCOSE_UNIT_SUSPECT), narrow enough to refuse nonsense at the door.
SymptomCode = Annotated[str, StringConstraints(min_length=1, max_length=40)]
LifestyleKey = Annotated[str, StringConstraints(min_length=1, max_length=30)]
LifestyleText = Annotated[str, StringConstraints(max_length=200)]
_MMHG = {"ge": 0, "le": 1000}
_MMOL = {"ge": 0, "le": 1000, "max_digits": 5, "decimal_places": 1}


class _In(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegistryCreate(_In):
    patient_id: int = Field(gt=0)
    disease: DiseaseCode = Field(description="病种")
    registered_on: date = Field(description="建档日期")
    diagnosed_on: date = Field(description="确诊日期")
    diagnosis_source: DiagnosisSource = Field(description="确诊来源")
    managing_org_id: int = Field(gt=0, description="管理机构")
    responsible_doctor_id: int | None = Field(None, gt=0, description="责任医生")
    reminder_consent: bool = Field(False, description="同意短信提醒")
    prior_cvd: bool = Field(False, description="既往心梗/卒中")
    screening_case_id: int | None = Field(None, gt=0, description="来源筛查病例")


class RegistryClose(_In):
    closed_on: date
    reason: CloseReason = Field(description="结案原因：死亡、迁出、排除诊断")
    note: str = Field("", max_length=180)


class RegistryTransfer(_In):
    managing_org_id: int | None = Field(None, gt=0)
    responsible_doctor_id: int | None = Field(None, gt=0)
    clear_doctor: bool = False
    reason: str = Field("", max_length=150)


class OrgRef(Schema):
    id: int
    name: str


class DoctorRef(Schema):
    id: int
    name: str


class RegistryRead(Schema):
    id: int
    patient_id: int
    patient_name: str
    disease: str
    disease_label: str
    status: str
    status_label: str
    registered_on: date
    diagnosed_on: date
    diagnosis_source: str
    managing_org: OrgRef
    responsible_doctor: DoctorRef | None
    reminder_consent: bool
    prior_cvd: bool
    high_risk: bool
    closed_on: date | None
    close_reason: str
    last_follow_up_on: date | None
    next_follow_up_on: date | None
    last_classification: str


class RegistryList(Schema):
    count: int
    items: list[RegistryRead]


class RegistryListParams(_In):
    disease: DiseaseCode | None = None
    status: Literal["active", "closed"] | None = None
    patient_id: int | None = Field(None, gt=0)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class Medication(_In):
    name: str = Field(min_length=1, max_length=60, description="药名")
    dose: str = Field("", max_length=30, description="剂量，如 5mg")
    frequency: str = Field("", max_length=30, description="用法，如 每日1次")


class FollowUpCreate(_In):
    patient_id: int = Field(gt=0)
    diseases: list[DiseaseCode] | None = Field(None, max_length=6, description="省略时为全部在管病种")
    client_uuid: uuid.UUID | None = Field(None, description="客户端生成，重试时不重复记录")
    visit_on: date = Field(description="随访日期")
    mode: Mode = Field(description="随访方式：门诊、家庭、电话")
    sbp: int | None = Field(None, **_MMHG)
    dbp: int | None = Field(None, **_MMHG)
    sbp2: int | None = Field(None, **_MMHG)
    dbp2: int | None = Field(None, **_MMHG)
    fpg_mmol: Decimal | None = Field(None, **_MMOL, description="空腹血糖 mmol/L")
    glucose_any_mmol: Decimal | None = Field(None, **_MMOL, description="随机血糖 mmol/L")
    heart_rate: int | None = Field(None, ge=0, le=1000)
    temperature_c: Decimal | None = Field(None, ge=0, le=100, max_digits=4, decimal_places=1)
    height_cm: Decimal | None = Field(None, ge=0, le=1000, max_digits=5, decimal_places=1)
    weight_kg: Decimal | None = Field(None, ge=0, le=1000, max_digits=5, decimal_places=1)
    waist_cm: Decimal | None = Field(None, ge=0, le=1000, max_digits=5, decimal_places=1)
    symptoms: list[SymptomCode] = Field(default_factory=list, max_length=30)
    pregnant_or_lactating: bool = False
    unmanageable_other_disease: bool = False
    adr: bool = False
    adr_uncontrollable: bool = False
    new_complication: bool = False
    complication_worsened: bool = False
    adherence: Adherence = ""
    medications: list[Medication] = Field(default_factory=list, max_length=20)
    lifestyle: dict[LifestyleKey, LifestyleText] = Field(
        default_factory=dict, max_length=20, description="生活方式指导，如 salt: 减盐"
    )
    note: str = Field("", max_length=500)


class FollowUpResult(Schema):
    """One disease's evaluation of the visit (R3–R5), with the rule IDs that decided."""

    id: int
    registry_id: int
    disease: str
    disease_label: str
    visit_on: date
    mode: str
    classification: str
    classification_label: str
    urgent: bool
    referral: str
    referral_label: str
    referral_reasons: list[str]
    referral_reason_labels: list[str]
    rules_fired: list[str]
    # R3.x: the danger signs that made the visit urgent, e.g. "sbp>=180", "symptom:chest_tightness".
    urgent_signs: list[str] = []
    next_due_on: date
    bp_at_target: bool | None
    fpg_at_target: bool | None
    referral_id: int | None


class FollowUpRecorded(Schema):
    visit_key: uuid.UUID
    results: list[FollowUpResult]


class FollowUpRead(FollowUpResult):
    organisation: OrgRef
    sbp: int | None
    dbp: int | None
    sbp2: int | None
    dbp2: int | None
    fpg_mmol: Decimal | None
    glucose_any_mmol: Decimal | None
    heart_rate: int | None
    weight_kg: Decimal | None
    waist_cm: Decimal | None
    symptoms: list[str]
    adherence: str
    medications: list[dict]
    note: str
    age_at_visit: int


class FollowUpList(Schema):
    registry_id: int
    count: int
    items: list[FollowUpRead]


class ReferralRead(Schema):
    id: int
    patient_id: int
    patient_name: str
    disease: str
    registry_id: int | None
    follow_up_id: int | None
    kind: str
    kind_label: str
    reasons: list[str]
    rules_fired: list[str]
    from_org: OrgRef
    to_org: OrgRef
    status: str
    opened_on: date
    tracking_due_on: date
    tracked_on: date | None
    outcome: str


class ReferralList(Schema):
    count: int
    items: list[ReferralRead]


class ReferralListParams(_In):
    status: Literal["open", "tracked", "cancelled"] | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class ReferralTrack(_In):
    tracked_on: date
    outcome: str = Field(min_length=1, max_length=200, description="转诊结果，如 已在县医院就诊，调整用药")


class ReferralCancel(_In):
    reason: str = Field(min_length=1, max_length=200)


class ChronicProfileRead(Schema):
    patient_id: int
    patient_name: str
    registries: list[RegistryRead]
    follow_ups: list[FollowUpRead]
    open_referrals: list[ReferralRead]
