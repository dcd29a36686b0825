"""``/api/v1/community/``: organisations, departments, staff and role assignments.

Thin: parse, call one service or selector, shape the response. Permissions: reading needs
``ORG_VIEW``; organisations/departments ``ORG_MANAGE`` and staff ``STAFF_MANAGE`` (system
administrator); roles ``SECURITY_MANAGE`` (security administrator) — 三员分立.
"""

from ninja import Field, Query, Router, Schema, Status

from yilian.common import labels, policy
from yilian.common.access import requires
from yilian.community import selectors, services
from yilian.community.models import Organisation, RoleAssignment, Staff
from yilian.community.schemas import (
    DepartmentCreate,
    DepartmentRead,
    OrganisationCreate,
    OrganisationNode,
    OrganisationRead,
    OrganisationUpdate,
    RoleAssign,
    RoleRead,
    StaffCreate,
    StaffRead,
    StaffStatus,
)

router = Router(tags=["community"])

KIND_LABELS = dict(Organisation.Kind.choices)
TITLE_LABELS = dict(Staff.Title.choices)


def organisation_out(org: Organisation, parent_code: str | None = None) -> dict:
    return {
        "code": org.code,
        "name": org.name,
        "kind": org.kind,
        "kind_label": str(KIND_LABELS.get(org.kind, org.kind)),
        "parent_code": parent_code
        if parent_code is not None
        else (org.parent.code if org.parent_id else None),
        "path": org.path,
        "depth": org.depth,
        "status": org.status,
        "province": org.province,
        "city": org.city,
        "county": org.county,
        "township": org.township,
        "village": org.village,
        "address_detail": org.address_detail,
        "address": org.address,
        "division_code": org.division_code,
        "phone": org.phone,
        "child_count": getattr(org, "child_count", None),
        "staff_count": getattr(org, "staff_count", None),
    }


def role_out(assignment: RoleAssignment) -> dict:
    return {
        "id": assignment.pk,
        "role": assignment.role,
        "role_label": labels.role_label(assignment.role),
        "organisation_code": assignment.organisation.code,
        "organisation_name": assignment.organisation.name,
        "granted_at": assignment.granted_at,
    }


def staff_out(staff: Staff) -> dict:
    return {
        "id": staff.pk,
        "username": staff.user.username,
        "name": staff.name,
        "organisation_code": staff.organisation.code,
        "organisation_name": staff.organisation.name,
        "department_code": staff.department.code if staff.department_id else None,
        "department_name": staff.department.name if staff.department_id else None,
        "title": staff.title,
        "title_label": str(TITLE_LABELS.get(staff.title, staff.title)),
        "licence_number": staff.licence_number,
        "practice_start_date": staff.practice_start_date,
        "is_active": staff.is_active,
        "roles": [role_out(r) for r in staff.roles.all()],
    }


class OrganisationFilter(Schema):
    parent: str | None = Field(None, max_length=32, description="只列出该机构的直属下级（平铺）")


@router.get("/organisations", response=list[OrganisationNode] | list[OrganisationRead])
@requires(policy.ORG_VIEW)
def list_organisations(request, filters: Query[OrganisationFilter]):
    """The whole tree (nested), or with ``?parent=CODE`` the direct children of one organisation (flat)."""
    if filters.parent:
        parent = selectors.organisation_by_code(filters.parent, field="parent")
        return [organisation_out(o, parent.code) for o in selectors.children_with_counts(parent)]
    nodes: dict[int, dict] = {}
    roots: list[dict] = []
    for org in selectors.organisations_with_counts():
        node = {
            "code": org.code,
            "name": org.name,
            "kind": org.kind,
            "kind_label": str(KIND_LABELS.get(org.kind, org.kind)),
            "status": org.status,
            "address": org.address,
            "child_count": org.child_count,
            "staff_count": org.staff_count,
            "children": [],
        }
        nodes[org.pk] = node
        # Path order is pre-order, so a parent is always seen before its children.
        (nodes[org.parent_id]["children"] if org.parent_id in nodes else roots).append(node)
    return roots


@router.get("/organisations/{code}", response=OrganisationRead)
@requires(policy.ORG_VIEW)
def get_organisation(request, code: str):
    org = selectors.organisation_by_code(code, as_input=False)
    org = selectors.with_counts(Organisation.objects.filter(pk=org.pk)).select_related("parent").get()
    return organisation_out(org)


@router.post("/organisations", response={201: OrganisationRead})
@requires(policy.ORG_MANAGE)
def create_organisation(request, payload: OrganisationCreate):
    org = services.create_organisation(actor=request.actor, **payload.dict())
    return Status(201, organisation_out(org))


@router.patch("/organisations/{code}", response=OrganisationRead)
@requires(policy.ORG_MANAGE)
def update_organisation(request, code: str, payload: OrganisationUpdate):
    data = payload.dict(exclude_unset=True)
    status = data.pop("status", None)
    reason = data.pop("reason", "")
    org = services.update_organisation(actor=request.actor, code=code, **data)
    if status:
        org = services.set_organisation_status(
            actor=request.actor, code=org.code, status=status, reason=reason
        )
    return organisation_out(Organisation.objects.select_related("parent").get(pk=org.pk))


@router.get("/organisations/{code}/departments", response=list[DepartmentRead])
@requires(policy.ORG_VIEW)
def list_departments(request, code: str):
    org = selectors.organisation_by_code(code, as_input=False)
    return [
        {
            "id": d.pk,
            "organisation_code": org.code,
            "code": d.code,
            "name": d.name,
            "kind": d.kind,
            "location": d.location,
            "is_active": d.is_active,
            "staff_count": d.staff_count,
        }
        for d in selectors.departments_of(org)
    ]


@router.post("/departments", response={201: DepartmentRead})
@requires(policy.ORG_MANAGE)
def create_department(request, payload: DepartmentCreate):
    dept = services.create_department(actor=request.actor, **payload.dict())
    return Status(
        201,
        {
            "id": dept.pk,
            "organisation_code": dept.organisation.code,
            "code": dept.code,
            "name": dept.name,
            "kind": dept.kind,
            "location": dept.location,
            "is_active": dept.is_active,
        },
    )


class StaffFilter(Schema):
    organisation: str | None = Field(None, max_length=32, description="只列出该机构（含下级）的人员")
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/staff", response=list[StaffRead])
@requires(policy.ORG_VIEW)
def list_staff(request, filters: Query[StaffFilter]):
    """Staff in the caller's scope (``policy.scope_paths`` for ``ORG_VIEW``)."""
    qs = selectors.staff_visible_to(request.actor)
    if filters.organisation:
        org = selectors.organisation_by_code(filters.organisation, field="organisation")
        qs = qs.filter(organisation__path__startswith=org.path)
    return [staff_out(s) for s in qs[filters.offset : filters.offset + filters.limit]]


@router.post("/staff", response={201: StaffRead})
@requires(policy.STAFF_MANAGE)
def create_staff(request, payload: StaffCreate):
    staff = services.create_staff(actor=request.actor, **payload.dict())
    return Status(201, staff_out(selectors.staff_visible_to(request.actor).get(pk=staff.pk)))


@router.post("/staff/{int:staff_id}/status", response=StaffRead)
@requires(policy.STAFF_MANAGE)
def set_staff_status(request, staff_id: int, payload: StaffStatus):
    """Mark a member of staff as left (离职, cannot sign in) or back."""
    services.set_staff_active(
        actor=request.actor, staff=staff_id, active=payload.is_active, reason=payload.reason
    )
    return staff_out(selectors.staff_visible_to(request.actor).get(pk=staff_id))


@router.post("/staff/{int:staff_id}/roles", response={201: RoleRead})
@requires(policy.SECURITY_MANAGE)
def assign_role(request, staff_id: int, payload: RoleAssign):
    assignment = services.assign_role(
        actor=request.actor, staff=staff_id, role=payload.role, organisation=payload.organisation_code
    )
    return Status(201, role_out(assignment))


@router.delete("/staff/{int:staff_id}/roles/{int:role_id}", response={204: None})
@requires(policy.SECURITY_MANAGE)
def revoke_role(request, staff_id: int, role_id: int):
    services.revoke_role(actor=request.actor, staff=staff_id, assignment_id=role_id)
    return Status(204, None)
