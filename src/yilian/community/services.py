"""Writes to the community structure: organisations, departments, staff and role assignments.

Rules implemented here (see also ``community.rules`` and ``common.policy``):

* Organisations are placed in the tree by ``rules.ALLOWED_PARENTS`` and get a materialised path
  ``parent.path + NNNN.``; the parent row is locked (``select_for_update``) while the next number
  is computed, so concurrent creations under one parent get distinct paths (the unique index on
  ``path`` is the last line of defence).
* Organisations, departments and staff are managed by the system administrator
  (``ORG_MANAGE`` / ``STAFF_MANAGE``); roles are granted and revoked only by the security
  administrator (``SECURITY_MANAGE``) — 三员分立, MLPS 2.0 / GB/T 22239-2019 §8.1.4.2 practice —
  and the three administrative roles are mutually exclusive (``policy.exclusive_conflict``).
* Every write is checked against the actor's scope (``policy.covers``), validated
  (``full_clean``) and audited in the same transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from yilian.common import audit, labels, policy
from yilian.common.audit import Target
from yilian.common.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.community import rules
from yilian.community import selectors as community_selectors
from yilian.community.errors import (
    DuplicateAssignment,
    DuplicateCode,
    DuplicateLicence,
    DuplicateUsername,
    HierarchyViolation,
    InvalidCode,
    InvalidDivisionCode,
    LevelFull,
    OrganisationHasActiveChildren,
    SelfAssignment,
    SeparationOfDuties,
    UnknownDepartment,
    UnknownRole,
    UnknownStaff,
    WeakPassword,
)
from yilian.community.models import Department, Organisation, RoleAssignment, Staff

ORG_UPDATABLE_FIELDS = (
    "name",
    "province",
    "city",
    "county",
    "township",
    "village",
    "address_detail",
    "division_code",
    "phone",
)


# --- helpers -------------------------------------------------------------------------------------


def _require(actor: Actor, permission: str, org_path: str | None = None) -> None:
    """The actor holds ``permission`` (over ``org_path`` when given). Refusals are audited by the
    API / page error handlers, outside this (rolled-back) transaction."""
    if not actor.is_authenticated:
        raise NotAuthenticated()
    if org_path is None:
        allowed = policy.allows(actor, permission)
    else:
        allowed = policy.covers(actor, permission, org_path)
    if not allowed:
        raise PermissionDenied()


def _full_clean(obj: Any, *, exclude: list[str] | None = None) -> None:
    """``full_clean`` with Django's messages turned into a 422 naming the first bad field."""
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            field, errors = next(iter(exc.message_dict.items()))
            try:
                label = str(obj._meta.get_field(field).verbose_name)
            except FieldDoesNotExist:  # NON_FIELD_ERRORS
                label = field
            raise InvalidInput(
                _("%(label)s：%(message)s") % {"label": label, "message": "；".join(errors)},
                field=None if field == "__all__" else field,
            ) from exc
        raise InvalidInput("；".join(exc.messages)) from exc


def _clean_code(raw: str, field: str = "code") -> str:
    code = rules.normalise_code(raw or "")
    if not rules.code_is_valid(code):
        raise InvalidCode(
            _("编码“%(code)s”无效：只能包含大写字母、数字和连字符，长度 2–32 位。") % {"code": raw[:40]},
            field=field,
        )
    return code


def _clean_division_code(raw: str) -> str:
    code = (raw or "").strip()
    if not code:
        return ""
    problem = rules.division_code_problem(code)
    if problem is None:
        return code
    messages = {
        "shape": _("行政区划代码“%(code)s”无效：应为 12 位数字。"),
        "province": _("行政区划代码“%(code)s”无效：前两位不是有效的省级代码。"),
        "levels": _("行政区划代码“%(code)s”无效：上级区划为 0 时下级区划也必须为 0。"),
    }
    raise InvalidDivisionCode(messages[problem] % {"code": code[:40]}, field="division_code")


def _clean_phone(raw: str) -> str:
    phone = (raw or "").strip()
    if phone and not rules.phone_is_valid(phone):
        raise InvalidInput(
            _("联系电话“%(phone)s”无效：只能包含数字、空格、括号和连字符。") % {"phone": phone[:20]},
            field="phone",
        )
    return phone


def _kind_label(kind: str | None) -> str:
    if kind is None:
        return _("（无上级，作为根机构）")
    return str(dict(Organisation.Kind.choices).get(kind, kind))


# --- organisations ---------------------------------------------------------------------------------


@transaction.atomic
def create_organisation(
    *,
    actor: Actor,
    code: str,
    name: str,
    kind: str,
    parent_code: str | None = None,
    province: str,
    city: str,
    county: str,
    township: str = "",
    village: str = "",
    address_detail: str = "",
    division_code: str = "",
    phone: str = "",
) -> Organisation:
    """Add a member institution to the tree (rules: hierarchy, code format, division code)."""
    _require(actor, policy.ORG_MANAGE)
    code = _clean_code(code)
    if kind not in rules.KINDS:
        raise InvalidInput(_("机构类型“%(kind)s”无效。") % {"kind": kind[:40]}, field="kind")

    parent: Organisation | None = None
    if parent_code:
        normalised = rules.normalise_code(parent_code)
        # Lock the parent row: concurrent creations under it wait here, then see each other's paths.
        parent = Organisation.objects.select_for_update().filter(code=normalised).first()
        if parent is None:
            community_selectors.organisation_by_code(normalised, field="parent_code")  # raises 422
        assert parent is not None
        _require(actor, policy.ORG_MANAGE, parent.path)
        if parent.status == Organisation.Status.CLOSED:
            raise HierarchyViolation(
                _("上级机构“%(name)s”已撤销，不能在其下新增机构。") % {"name": parent.name},
                field="parent_code",
            )
    elif not any(rules.depth_of(p) == 0 for p in policy.scope_paths(actor, policy.ORG_MANAGE)):
        raise PermissionDenied(_("只有牵头医院的系统管理员可以新增根机构。"))

    parent_kind = parent.kind if parent else None
    if not rules.parent_allowed(kind, parent_kind):
        raise HierarchyViolation(
            _("“%(kind)s”不能设在“%(parent)s”之下。")
            % {"kind": _kind_label(kind), "parent": _kind_label(parent_kind)},
            field="parent_code" if parent else "kind",
        )
    division_code = _clean_division_code(division_code)
    if Organisation.objects.filter(code=code).exists():
        raise DuplicateCode(_("机构编码 %(code)s 已被使用。") % {"code": code}, field="code")

    siblings = (
        Organisation.objects.filter(parent=parent) if parent else Organisation.objects.filter(parent=None)
    )
    last = siblings.aggregate(last=Max("path"))["last"]
    try:
        path = rules.child_path(parent.path if parent else "", last)
    except ValueError as exc:
        raise LevelFull() from exc

    org = Organisation(
        code=code,
        name=(name or "").strip(),
        kind=kind,
        parent=parent,
        path=path,
        depth=rules.depth_of(path),
        province=(province or "").strip(),
        city=(city or "").strip(),
        county=(county or "").strip(),
        township=(township or "").strip(),
        village=(village or "").strip(),
        address_detail=(address_detail or "").strip(),
        division_code=division_code,
        phone=_clean_phone(phone),
    )
    _full_clean(org, exclude=["code", "path"])
    try:
        with transaction.atomic():
            org.save()
    except IntegrityError as exc:
        # Two roots created at once, or a code taken between the check and the insert.
        raise Conflict(_("机构编码或层级位置已被占用，请重试。"), field="code") from exc
    audit.record(
        actor,
        "community.organisation.create",
        target=Target("organisation", org.pk),
        detail={"code": org.code, "kind": org.kind, "parent": parent.code if parent else None, "path": path},
    )
    return org


@transaction.atomic
def update_organisation(
    *, actor: Actor, code: str, status: str | None = None, reason: str = "", **changes: Any
) -> Organisation:
    """Change an organisation's name, address or contact, and (with ``status``) its status, all or
    nothing. Kind and position are fixed at creation (moving a subtree re-scopes every patient
    under it and is a data migration, not an edit)."""
    _require(actor, policy.ORG_MANAGE)
    org = community_selectors.organisation_by_code(code, as_input=False)
    org = Organisation.objects.select_for_update().get(pk=org.pk)
    _require(actor, policy.ORG_MANAGE, org.path)
    unknown = set(changes) - set(ORG_UPDATABLE_FIELDS)
    if unknown:
        raise InvalidInput(
            _("字段 %(field)s 不能修改。") % {"field": sorted(unknown)[0]}, field=sorted(unknown)[0]
        )
    changed = []
    for field, value in changes.items():
        if value is None:
            continue
        value = value.strip() if isinstance(value, str) else value
        if field == "division_code":
            value = _clean_division_code(value)
        elif field == "phone":
            value = _clean_phone(value)
        if getattr(org, field) != value:
            setattr(org, field, value)
            changed.append(field)
    if changed:
        _full_clean(org)
        org.save(update_fields=changed)
        audit.record(
            actor,
            "community.organisation.update",
            target=Target("organisation", org.pk),
            detail={"code": org.code, "fields": changed},
        )
    if status is not None:
        org = set_organisation_status(actor=actor, code=org.code, status=status, reason=reason)
    return org


@transaction.atomic
def set_organisation_status(*, actor: Actor, code: str, status: str, reason: str = "") -> Organisation:
    """Suspend, reopen or close (撤销) an organisation; one with running children cannot close."""
    _require(actor, policy.ORG_MANAGE)
    org = community_selectors.organisation_by_code(code, as_input=False)
    org = Organisation.objects.select_for_update().get(pk=org.pk)
    _require(actor, policy.ORG_MANAGE, org.path)
    if status not in Organisation.Status.values:
        raise InvalidInput(_("状态“%(status)s”无效。") % {"status": status[:20]}, field="status")
    if status == org.status:
        return org
    if (
        status == Organisation.Status.CLOSED
        and org.children.exclude(status=Organisation.Status.CLOSED).exists()
    ):
        raise OrganisationHasActiveChildren()
    before = org.status
    org.status = status
    org.save(update_fields=["status"])
    audit.record(
        actor,
        "community.organisation.status",
        target=Target("organisation", org.pk),
        reason=reason,
        detail={"code": org.code, "from": before, "to": status},
    )
    return org


# --- departments -----------------------------------------------------------------------------------


@transaction.atomic
def create_department(
    *,
    actor: Actor,
    organisation_code: str,
    code: str,
    name: str,
    kind: str = Department.Kind.CLINICAL,
    location: str = "",
) -> Department:
    _require(actor, policy.ORG_MANAGE)
    org = community_selectors.organisation_by_code(organisation_code, field="organisation_code")
    _require(actor, policy.ORG_MANAGE, org.path)
    code = _clean_code(code)
    if kind not in Department.Kind.values:
        raise InvalidInput(_("科室类别“%(kind)s”无效。") % {"kind": kind[:20]}, field="kind")
    if Department.objects.filter(organisation=org, code=code).exists():
        raise DuplicateCode(
            _("科室编码 %(code)s 在 %(org)s 已被使用。") % {"code": code, "org": org.name}, field="code"
        )
    dept = Department(
        organisation=org, code=code, name=(name or "").strip(), kind=kind, location=(location or "").strip()
    )
    _full_clean(dept, exclude=["code"])
    try:
        with transaction.atomic():
            dept.save()
    except IntegrityError as exc:
        raise DuplicateCode(field="code") from exc
    audit.record(
        actor,
        "community.department.create",
        target=Target("department", dept.pk),
        detail={"organisation": org.code, "code": code},
    )
    return dept


# --- staff -------------------------------------------------------------------------------------------


@transaction.atomic
def create_staff(
    *,
    actor: Actor,
    username: str,
    password: str,
    name: str,
    organisation_code: str,
    department_code: str = "",
    title: str = Staff.Title.NONE,
    licence_number: str = "",
    practice_start_date: date | None = None,
) -> Staff:
    """Register a member of staff with a sign-in. Roles are granted separately by the security
    administrator (三员分立): a new member holds no role and can see nothing."""
    _require(actor, policy.STAFF_MANAGE)
    org = community_selectors.organisation_by_code(organisation_code, field="organisation_code")
    _require(actor, policy.STAFF_MANAGE, org.path)
    department = None
    if department_code:
        department = community_selectors.department_by_code(org, department_code)
        if department is None:
            raise UnknownDepartment(
                _("科室编码 %(code)s 在 %(org)s 不存在。") % {"code": department_code[:40], "org": org.name},
                field="department_code",
            )
    if title not in Staff.Title.values:
        raise InvalidInput(_("专业技术职称“%(title)s”无效。") % {"title": title[:30]}, field="title")
    if practice_start_date and practice_start_date > timezone.localdate():
        raise InvalidInput(_("执业起始日期不能晚于今天。"), field="practice_start_date")
    username = (username or "").strip()
    licence_number = (licence_number or "").strip()

    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise DuplicateUsername(
            _("登录名 %(username)s 已被使用。") % {"username": username[:150]}, field="username"
        )
    user = User(username=username, kind=User.Kind.STAFF)
    _full_clean(user, exclude=["password"])  # username syntax, length and uniqueness
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise WeakPassword(
            _("密码不符合要求：%(reasons)s") % {"reasons": "；".join(exc.messages)},
            field="password",
            reasons=list(exc.messages),
        ) from exc
    if licence_number and Staff.objects.filter(licence_number=licence_number).exists():
        raise DuplicateLicence(field="licence_number")
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise DuplicateUsername(field="username") from exc
    staff = Staff(
        user=user,
        name=(name or "").strip(),
        organisation=org,
        department=department,
        title=title,
        licence_number=licence_number,
        practice_start_date=practice_start_date,
    )
    _full_clean(staff)
    try:
        with transaction.atomic():
            staff.save()
    except IntegrityError as exc:
        raise DuplicateLicence(field="licence_number") from exc
    audit.record(
        actor,
        "community.staff.create",
        target=Target("staff", staff.pk),
        detail={"organisation": org.code, "username": username},
    )
    return staff


@transaction.atomic
def set_staff_active(*, actor: Actor, staff: Staff | int, active: bool, reason: str = "") -> Staff:
    """Mark a member of staff as left (离职) or back. A member who has left cannot sign in
    (``User.is_active``) and their role assignments, kept for the record, grant nothing."""
    _require(actor, policy.STAFF_MANAGE)
    member = _staff_locked(staff)
    if not policy.covers(actor, policy.STAFF_MANAGE, member.organisation.path):
        raise UnknownStaff()
    if actor.staff_id is not None and actor.staff_id == member.pk:
        raise PermissionDenied(_("不能停用自己的账号。"))
    if member.is_active == active:
        return member
    member.is_active = active
    member.save(update_fields=["is_active"])
    type(member.user).objects.filter(pk=member.user_id).update(is_active=active)
    audit.record(
        actor,
        "community.staff.activate" if active else "community.staff.deactivate",
        target=Target("staff", member.pk),
        reason=reason,
    )
    return member


# --- roles -------------------------------------------------------------------------------------------


def _staff_locked(staff: Staff | int) -> Staff:
    staff_id = staff.pk if isinstance(staff, Staff) else staff
    locked = Staff.objects.select_for_update().select_related("organisation").filter(pk=staff_id).first()
    if locked is None:
        raise UnknownStaff()
    return locked


@transaction.atomic
def assign_role(
    *, actor: Actor, staff: Staff | int, role: str, organisation: Organisation | str
) -> RoleAssignment:
    """Grant ``role`` at ``organisation`` (reaching its subtree). Only the security administrator
    may, never to themself, and never against 三员分立 (``policy.exclusive_conflict``)."""
    _require(actor, policy.SECURITY_MANAGE)
    # Lock the staff row so that two concurrent grants cannot both pass the exclusivity check.
    member = _staff_locked(staff)
    if not policy.covers(actor, policy.SECURITY_MANAGE, member.organisation.path):
        raise UnknownStaff()
    org = (
        organisation
        if isinstance(organisation, Organisation)
        else community_selectors.organisation_by_code(organisation, field="organisation_code")
    )
    _require(actor, policy.SECURITY_MANAGE, org.path)
    if actor.staff_id is not None and actor.staff_id == member.pk:
        raise SelfAssignment()
    if role not in policy.STAFF_ROLES:
        raise UnknownRole(_("角色“%(role)s”不存在或不可分配给人员。") % {"role": role[:20]}, field="role")
    if not member.is_active:
        raise InvalidInput(_("%(name)s 已离职，不能分配角色。") % {"name": member.name}, field="staff")
    held = list(RoleAssignment.objects.filter(staff=member).values_list("role", flat=True))
    clash = policy.exclusive_conflict(held, role)
    if clash:
        raise SeparationOfDuties(
            _("违反三员分立原则：%(name)s 已担任“%(held)s”，不能再担任“%(role)s”。")
            % {
                "name": member.name,
                "held": labels.role_label(clash),
                "role": labels.role_label(role),
            },
            field="role",
            conflicting_role=clash,
        )
    if RoleAssignment.objects.filter(staff=member, role=role, organisation=org).exists():
        raise DuplicateAssignment(field="role")
    assignment = RoleAssignment.objects.create(staff=member, role=role, organisation=org)
    audit.record(
        actor,
        "community.role.assign",
        target=Target("staff", member.pk),
        detail={"role": role, "organisation": org.code, "assignment": assignment.pk},
    )
    return assignment


@transaction.atomic
def revoke_role(*, actor: Actor, staff: Staff | int, assignment_id: int, reason: str = "") -> None:
    """Withdraw a role assignment (security administrator only, never their own)."""
    _require(actor, policy.SECURITY_MANAGE)
    member = _staff_locked(staff)
    if not policy.covers(actor, policy.SECURITY_MANAGE, member.organisation.path):
        raise UnknownStaff()
    assignment = (
        RoleAssignment.objects.select_related("organisation").filter(pk=assignment_id, staff=member).first()
    )
    if assignment is None:
        raise NotFound(_("该人员没有编号为 %(id)s 的角色。") % {"id": assignment_id})
    _require(actor, policy.SECURITY_MANAGE, assignment.organisation.path)
    if actor.staff_id is not None and actor.staff_id == member.pk:
        raise SelfAssignment()
    detail = {
        "role": assignment.role,
        "organisation": assignment.organisation.code,
        "assignment": assignment.pk,
    }
    assignment.delete()
    audit.record(
        actor, "community.role.revoke", target=Target("staff", member.pk), reason=reason, detail=detail
    )
