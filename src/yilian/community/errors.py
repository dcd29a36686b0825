"""Errors of the community app, each with a stable code (ARCHITECTURE.md: errors in clinic language)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from yilian.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class UnknownOrganisation(InvalidInput):
    """A code that names no organisation. 422 when given as input, see ``OrganisationNotFound``."""

    code = "UNKNOWN_ORGANISATION"
    default_message = _("机构编码不存在。")


class OrganisationNotFound(NotFound):
    """The organisation named in the URL does not exist (404)."""

    code = "UNKNOWN_ORGANISATION"
    default_message = _("机构编码不存在。")


class UnknownDepartment(InvalidInput):
    code = "UNKNOWN_DEPARTMENT"
    default_message = _("科室编码不存在。")


class UnknownStaff(NotFound):
    code = "UNKNOWN_STAFF"
    default_message = _("未找到该工作人员，或您无权查看。")


class DuplicateCode(Conflict):
    code = "DUPLICATE_CODE"
    default_message = _("编码已被使用。")


class DuplicateUsername(Conflict):
    code = "DUPLICATE_USERNAME"
    default_message = _("登录名已被使用。")


class DuplicateLicence(Conflict):
    code = "DUPLICATE_LICENCE"
    default_message = _("执业证书编码已登记在其他人员名下。")


class HierarchyViolation(InvalidInput):
    code = "HIERARCHY_VIOLATION"
    default_message = _("该类型的机构不能设在所选上级机构之下。")


class InvalidCode(InvalidInput):
    code = "INVALID_CODE"
    default_message = _("编码只能包含大写字母、数字和连字符，长度 2–32 位。")


class InvalidDivisionCode(InvalidInput):
    code = "INVALID_DIVISION_CODE"
    default_message = _("行政区划代码应为 12 位数字。")


class WeakPassword(InvalidInput):
    code = "WEAK_PASSWORD"
    default_message = _("密码不符合安全要求。")


class SeparationOfDuties(Conflict):
    """三员分立: system administrator, security administrator and auditor are held by different people."""

    code = "SEPARATION_OF_DUTIES"
    default_message = _("违反三员分立原则：该人员已担任互斥角色。")


class DuplicateAssignment(Conflict):
    code = "DUPLICATE_ASSIGNMENT"
    default_message = _("该人员已在该机构担任此角色。")


class UnknownRole(InvalidInput):
    code = "UNKNOWN_ROLE"
    default_message = _("角色不存在或不可分配给人员。")


class SelfAssignment(PermissionDenied):
    code = "SELF_ASSIGNMENT"
    default_message = _("不能为自己分配或撤销角色，请由另一位安全管理员操作。")


class OrganisationHasActiveChildren(Conflict):
    code = "ORGANISATION_HAS_ACTIVE_CHILDREN"
    default_message = _("该机构下仍有运营中的下级机构，不能撤销。")


class LevelFull(Conflict):
    code = "LEVEL_FULL"
    default_message = _("该机构下的下级机构数量已达上限。")
