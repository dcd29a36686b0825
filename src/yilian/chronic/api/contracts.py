"""Chronic-disease API: family-doctor teams and contracts (家庭医生团队, 家庭医生签约), under
``/api/v1/chronic/``. Thin: parse, call one service or selector, shape the response."""

from __future__ import annotations

from datetime import date

from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from yilian.chronic.models import FamilyDoctorContract, FamilyDoctorTeam
from yilian.chronic.selectors import screening as selectors
from yilian.chronic.services import contracts as services
from yilian.common import policy
from yilian.common.access import requires

router = Router(tags=["chronic"])


class TeamCreate(Schema):
    organisation_id: int = Field(..., gt=0)
    name: str = Field(..., min_length=1, max_length=60)
    leader_id: int = Field(..., gt=0, description="团队长（本机构或下属机构在职医务人员）")
    member_ids: list[int] = Field(default_factory=list, max_length=50)


class TeamUpdate(Schema):
    leader_id: int | None = Field(None, gt=0)
    member_ids: list[int] | None = Field(None, max_length=50)
    is_active: bool | None = None


class StaffBrief(Schema):
    id: int
    name: str
    organisation_name: str


class TeamRead(Schema):
    id: int
    organisation_id: int
    organisation_name: str
    name: str
    is_active: bool
    leader: StaffBrief
    members: list[StaffBrief]


def _staff(s) -> dict:
    return {"id": s.pk, "name": s.name, "organisation_name": s.organisation.name}


def _team(team: FamilyDoctorTeam) -> dict:
    return {
        "id": team.pk,
        "organisation_id": team.organisation_id,
        "organisation_name": team.organisation.name,
        "name": team.name,
        "is_active": team.is_active,
        "leader": _staff(team.leader),
        "members": [_staff(m) for m in sorted(team.members.all(), key=lambda m: (m.name, m.pk))],
    }


@router.get("/family-doctor-teams", response=list[TeamRead], summary="家庭医生团队（本人管辖范围）")
@requires(policy.CHRONIC_MANAGE)
def list_teams(request):
    teams = selectors.teams_visible_to(request.actor).select_related("leader__organisation")
    return [_team(t) for t in teams.prefetch_related("members__organisation")[:200]]


def _fresh(team_id: int) -> FamilyDoctorTeam:
    return (
        FamilyDoctorTeam.objects.select_related("organisation", "leader__organisation")
        .prefetch_related("members__organisation")
        .get(pk=team_id)
    )


@router.post("/family-doctor-teams", response={201: TeamRead}, summary="新建家庭医生团队")
@requires(policy.CHRONIC_MANAGE)
def create_team(request, payload: TeamCreate):
    team = services.create_team(actor=request.actor, **payload.model_dump())
    return Status(201, _team(_fresh(team.pk)))


@router.patch("/family-doctor-teams/{int:team_id}", response=TeamRead, summary="调整团队长、成员或停用团队")
@requires(policy.CHRONIC_MANAGE)
def update_team(request, team_id: int, payload: TeamUpdate):
    team = services.update_team(actor=request.actor, team_id=team_id, **payload.model_dump())
    return _team(_fresh(team.pk))


class ContractCreate(Schema):
    patient_id: int = Field(..., gt=0)
    team_id: int = Field(..., gt=0)
    signed_on: date
    starts_on: date
    ends_on: date
    package: str = Field("", max_length=40, description="服务包名称，如“基础包”“慢病包”")


class ContractTerminate(Schema):
    terminated_on: date
    reason: str = Field("", max_length=200)


class ContractRead(Schema):
    id: int
    patient_id: int
    team_id: int
    team_name: str
    signed_on: date
    starts_on: date
    ends_on: date
    package: str
    status: str
    status_label: str
    terminated_on: date | None


def _contract(c: FamilyDoctorContract) -> dict:
    return {
        "id": c.pk,
        "patient_id": c.patient_id,
        "team_id": c.team_id,
        "team_name": c.team.name,
        "signed_on": c.signed_on,
        "starts_on": c.starts_on,
        "ends_on": c.ends_on,
        "package": c.package,
        "status": c.status,
        "status_label": str(FamilyDoctorContract.Status(c.status).label),
        "terminated_on": c.terminated_on,
    }


class ContractParams(Schema):
    patient_id: int = Field(..., gt=0)


@router.get("/contracts", response=list[ContractRead], summary="某居民的家庭医生签约记录")
@requires(policy.CHRONIC_MANAGE)
def list_contracts(request, params: Query[ContractParams]):
    patient = selectors.access_screening_patient(request.actor, params.patient_id, purpose="api")
    return [_contract(c) for c in selectors.contracts_of(patient)]


@router.post(
    "/contracts", response={201: ContractRead}, summary="家庭医生签约（每位居民同时只能有一份履约中的签约）"
)
@requires(policy.CHRONIC_MANAGE)
def sign(request, payload: ContractCreate):
    contract = services.sign_contract(actor=request.actor, **payload.model_dump())
    return Status(201, _contract(contract))


@router.post("/contracts/{int:contract_id}/terminate", response=ContractRead, summary="解约")
@requires(policy.CHRONIC_MANAGE)
def terminate(request, contract_id: int, payload: ContractTerminate):
    contract = services.terminate_contract(
        actor=request.actor, contract_id=contract_id, **payload.model_dump()
    )
    return _contract(contract)


class ActiveParams(Schema):
    team_id: int | None = Field(None, gt=0)
    page: int = Field(1, ge=1, le=100000)
    per_page: int = Field(selectors.PER_PAGE, ge=1, le=selectors.PER_PAGE_MAX)


class PatientBrief(Schema):
    id: int
    name: str
    sex: str
    age: int
    id_masked: str
    phone_masked: str
    home_org_name: str


class ActiveItem(Schema):
    id: int
    status: str
    signed_on: date
    starts_on: date
    ends_on: date
    package: str
    team_name: str
    days_left: int
    patient: PatientBrief


class ActivePage(Schema):
    total: int
    page: int
    per_page: int
    items: list[ActiveItem]


@router.get("/contracts/active", response=ActivePage, summary="履约中的签约（最早到期在前，便于续约）")
@requires(policy.CHRONIC_MANAGE)
def active(request, params: Query[ActiveParams]):
    page = selectors.active_contracts(
        request.actor, team_id=params.team_id, page=params.page, per_page=params.per_page
    )
    today = timezone.localdate()
    return {
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "items": [{**row.__dict__, "days_left": (row.ends_on - today).days} for row in page.items],
    }
