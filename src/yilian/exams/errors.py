"""Exam centre refusals, with the codes and HTTP statuses of access.md §0.1 (a stable API contract)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from yilian.common.errors import DomainError


class ExamConflict(DomainError):
    """E-3, E-4: the body lists every broken rule under ``violations``."""

    code = "EXAM_CONFLICT"
    status = 422
    default_message = _("检查时间安排冲突。")


class OrderNotActive(DomainError):
    """E-1: only an active, paid (or inpatient-covered) order can be booked."""

    code = "ORDER_NOT_ACTIVE"
    status = 422
    default_message = _("该检查申请未生效或尚未缴费，暂不能预约。")


class SlotUnavailable(DomainError):
    """E-2 (B-10): the segment (or the package's day) has no place left."""

    code = "SLOT_UNAVAILABLE"
    status = 409
    default_message = _("该检查时段已约满，请重新获取推荐方案或选择其他时段。")


class PackageNotEligible(DomainError):
    """PE-1: an item of the package does not apply to the patient's sex or age."""

    code = "PACKAGE_NOT_ELIGIBLE"
    status = 422
    default_message = _("该体检套餐含有不适用于该就诊人的项目。")


class InvalidTransition(DomainError):
    """§8: a status change outside the transition table."""

    code = "INVALID_STATUS_TRANSITION"
    status = 422
    default_message = _("检查预约当前状态不允许此操作。")
