"""Chronic-disease API: the work lists, the call list's one-tap results and SMS reminders (R7.3, R7.4).

Lists carry masked names and phones only; paths are relative to ``/api/v1/chronic/``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from yilian.chronic.selectors import worklists as selectors
from yilian.chronic.services import worklists as services
from yilian.common import policy
from yilian.common.access import requires

router = Router(tags=["chronic"])

ListKind = Literal["due", "overdue", "uncontrolled", "missed", "call", "lost"]


class WorklistParams(Schema):
    page: int = Field(1, ge=1, le=100_000)
    org_id: int | None = Field(None, ge=1, description="只看该机构及其下级机构")
    doctor_id: int | None = Field(None, ge=1, description="只看该责任医生（工作人员 id）")


class CountParams(Schema):
    org_id: int | None = Field(None, ge=1)
    doctor_id: int | None = Field(None, ge=1)


class WorklistRowRead(Schema):
    registry_id: int
    patient_id: int
    name_masked: str
    sex: str
    age: int
    disease: str
    disease_label: str
    other_disease_labels: list[str]
    org_name: str
    doctor_name: str
    registered_on: date
    next_follow_up_on: date | None
    days_overdue: int | None
    last_follow_up_on: date | None
    last_classification: str
    last_classification_label: str
    last_reading: str
    high_risk: bool
    has_phone: bool
    phone_masked: str
    reminder_consent: bool
    call_snoozed_until: date | None


class WorklistPageRead(Schema):
    kind: str
    today: date
    page: int
    pages: int
    per_page: int
    total: int
    items: list[WorklistRowRead]


class WorklistCounts(Schema):
    due: int
    overdue: int
    uncontrolled: int
    missed: int
    call: int
    lost: int


class CallCreate(Schema):
    registry_id: int = Field(ge=1)
    outcome: str = Field(
        max_length=20,
        description="reached 已联系 | remind_later 稍后再联系 | no_answer 无人接听 | moved 已迁出 | died 已死亡",
    )
    note: str = Field("", max_length=200)
    on: date | None = Field(None, description="通话日期，默认今天")


class CallRead(Schema):
    id: int
    registry_id: int
    outcome: str
    note: str
    called_on: date
    call_snoozed_until: date | None
    registry_status: str


class ReminderRun(Schema):
    on: date | None = Field(None, description="按此日期计算逾期天数，默认今天")
    org_id: int | None = Field(None, ge=1)


class ReminderResult(Schema):
    queued: int


@router.get("/worklists/counts", response=WorklistCounts, summary="各随访清单人数（R7.3）")
@requires(policy.CHRONIC_MANAGE)
def counts(request, params: Query[CountParams]):
    return selectors.worklist_counts(request.actor, org_id=params.org_id, doctor_id=params.doctor_id)


@router.post("/worklists/calls", response={201: CallRead}, summary="记录电话随访结果（R7.3）")
@requires(policy.CHRONIC_MANAGE)
def record_call(request, payload: CallCreate):
    call = services.record_call(
        actor=request.actor,
        registry_id=payload.registry_id,
        outcome=payload.outcome,
        note=payload.note,
        on=payload.on,
    )
    registry = call.registry
    registry.refresh_from_db(fields=["status", "call_snoozed_until"])
    return Status(
        201,
        {
            "id": call.pk,
            "registry_id": registry.pk,
            "outcome": call.outcome,
            "note": call.note,
            "called_on": call.called_on,
            "call_snoozed_until": registry.call_snoozed_until,
            "registry_status": registry.status,
        },
    )


@router.post("/worklists/reminders", response=ReminderResult, summary="发送逾期随访短信提醒（R7.4）")
@requires(policy.CHRONIC_MANAGE)
def send_reminders(request, payload: ReminderRun):
    return {"queued": services.send_due_reminders(actor=request.actor, on=payload.on, org_id=payload.org_id)}


# Declared last: ``{kind}`` would otherwise capture ``calls`` and ``reminders``.
@router.get("/worklists/{kind}", response=WorklistPageRead, summary="随访清单（分页，每页 25 条，已脱敏）")
@requires(policy.CHRONIC_MANAGE)
def worklist(request, kind: ListKind, params: Query[WorklistParams]):
    page = selectors.worklist(
        request.actor, kind, page=params.page, org_id=params.org_id, doctor_id=params.doctor_id
    )
    return {
        "kind": page.kind,
        "today": page.today,
        "page": page.page,
        "pages": page.pages,
        "per_page": page.per_page,
        "total": page.total,
        "items": [row.__dict__ for row in page.rows],
    }
