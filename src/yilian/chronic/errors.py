"""Chronic-disease refusals: each a stable code, an HTTP status and a specific, translatable message.

Area-specific errors not listed here live next to the service that raises them.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from yilian.common.errors import DomainError


class ReadingOutOfRange(DomainError):
    """An impossible reading (e.g. SBP 30 or 400): refused, never stored."""

    code = "READING_OUT_OF_RANGE"
    status = 422
    default_message = _("测量值超出可能范围，请核对后重新输入。")


class DiastolicNotBelowSystolic(DomainError):
    code = "DIASTOLIC_NOT_BELOW_SYSTOLIC"
    status = 422
    default_message = _("舒张压必须低于收缩压，请核对两次读数是否填反。")


class GlucoseUnitSuspect(DomainError):
    """A glucose value only plausible in mg/dL: the platform works in mmol/L (chronic.md §9)."""

    code = "GLUCOSE_UNIT_SUSPECT"
    status = 422
    default_message = _("血糖值看起来是 mg/dL，请换算为 mmol/L（除以 18）后再填写。")


class DateInFuture(DomainError):
    code = "DATE_IN_FUTURE"
    status = 422
    default_message = _("日期不能晚于今天。")


class VisitBeforeEnrolment(DomainError):
    code = "VISIT_BEFORE_ENROLMENT"
    status = 422
    default_message = _("随访日期早于建档日期。")


class ReadingsRequired(DomainError):
    """A face-to-face visit must carry the disease's own measurement (BP for HTN, glucose for T2DM)."""

    code = "READINGS_REQUIRED"
    status = 422
    default_message = _("面对面随访必须填写该病种的测量值。")


class NotEnrolled(DomainError):
    code = "NOT_ENROLLED"
    status = 409
    default_message = _("该患者未在此病种建档，或档案已结案。")


class AlreadyEnrolled(DomainError):
    code = "ALREADY_ENROLLED"
    status = 409
    default_message = _("该患者已在此病种建档管理。")


class RegistryClosed(DomainError):
    code = "REGISTRY_CLOSED"
    status = 409
    default_message = _("该档案已结案，不能再记录。")


class InvalidTransition(DomainError):
    code = "INVALID_STATUS_TRANSITION"
    status = 409
    default_message = _("当前状态不允许此操作。")


class ImportRejected(DomainError):
    """A bulk import with any bad row: nothing is imported; ``errors`` lists every bad row."""

    code = "IMPORT_REJECTED"
    status = 422
    default_message = _("导入文件中有错误的行，全部未导入。请按错误清单修改后重新上传。")
