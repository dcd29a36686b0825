"""Booking refusals, one per code of access.md §0.1 (API contract: code and HTTP status are stable)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from yilian.common.errors import DomainError, PermissionDenied, RateLimited


class SlotUnavailable(DomainError):
    """B-9, B-10, B-17."""

    code = "SLOT_UNAVAILABLE"
    status = 409
    default_message = _("该出诊单元的号源已约满，请选择其他时段或医生，或加入候补。")


class DuplicateSessionBooking(DomainError):
    """B-5."""

    code = "DUPLICATE_SESSION_BOOKING"
    status = 409
    default_message = _("该就诊人在同一天同一时段已预约本科室，不能重复预约。")


class QuotaExceeded(DomainError):
    """B-6."""

    code = "QUOTA_EXCEEDED"
    status = 422
    default_message = _("该就诊人的预约次数已达上限（每周8次、每月12次、每季度24次）。")


class NotYetReleased(DomainError):
    """B-3, B-17."""

    code = "NOT_YET_RELEASED"
    status = 422
    default_message = _("该出诊单元尚未放号。")


class BookingClosed(DomainError):
    """B-4."""

    code = "BOOKING_CLOSED"
    status = 422
    default_message = _("该出诊单元已停止线上预约，请到医院挂号窗口现场挂号。")


class CancelDeadlinePassed(DomainError):
    """B-7."""

    code = "CANCEL_DEADLINE_PASSED"
    status = 422
    default_message = _("已过退号截止时间，不能取消预约。")


class HoldExpired(DomainError):
    """B-8."""

    code = "HOLD_EXPIRED"
    status = 422
    default_message = _("预约锁号已超时，请重新预约。")


class RealnameRequired(DomainError):
    """B-1."""

    code = "REALNAME_REQUIRED"
    status = 403
    default_message = _("该就诊人尚未完成实名认证，不能预约。")


class BookingSuspended(DomainError):
    """B-12, B-14: the body carries ``until``."""

    code = "BOOKING_SUSPENDED"
    status = 403
    default_message = _("因爽约或频繁退号，该就诊人的预约功能暂停至 %(until)s。")


class ReferralRequired(DomainError):
    """B-17."""

    code = "REFERRAL_REQUIRED"
    status = 403
    default_message = _("该号源为医共体转诊预留号，需凭转诊单预约。")


class GuardianRequired(PermissionDenied):
    """B-16: a patient under 14 can be booked only from a guardian's account."""

    code = "GUARDIAN_REQUIRED"
    default_message = _("未满14周岁的就诊人只能由监护人账号预约。")


class SessionStopped(SlotUnavailable):
    """A stopped session (停诊) has no numbers to give (SLOT_UNAVAILABLE, B-15)."""

    default_message = _("该出诊单元已停诊，请选择其他时段或医生。")


class InvalidTransition(DomainError):
    """§8: every transition outside ``rules.TRANSITIONS`` → 422."""

    code = "INVALID_STATUS_TRANSITION"
    status = 422
    default_message = _("预约当前状态不允许此操作。")


class IdempotencyKeyReused(DomainError):
    """The same account used one idempotency key for a different booking (a client bug)."""

    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    default_message = _("该幂等键已用于另一次预约（不同的就诊人或出诊单元），请为新的预约生成新的幂等键。")


class SlotsStillAvailable(DomainError):
    """B-20: the waitlist is for full sessions; while numbers are free the patient books directly."""

    code = "SLOTS_AVAILABLE"
    status = 409
    default_message = _("该出诊单元仍有号源，请直接预约，无需候补。")


class BookingRateLimited(RateLimited):
    """B-18: too many booking or availability calls from one account or one address."""

    code = "RATE_LIMITED"
    status = 429
    default_message = _("操作过于频繁，请 %(wait)d 秒后再试。")
