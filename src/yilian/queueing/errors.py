"""Queue refusals with the codes and HTTP statuses of access.md §0.1 (Q-1, Q-3, Q-5, Q-8, B-2)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from yilian.common.errors import Conflict, DomainError, NotFound


class TooEarly(DomainError):
    """Q-1: before segment start − SIGNIN_EARLY_MIN (the body carries ``opens_at``)."""

    code = "TOO_EARLY"
    status = 422
    default_message = _("还未到签到时间：请在预约时段开始前 30 分钟内签到。")


class SigninClosed(DomainError):
    """Q-1: after SIGNIN_CLOSE (session end); the appointment has become NO_SHOW."""

    code = "SIGNIN_CLOSED"
    status = 422
    default_message = _("本出诊单元已结束，签到已关闭，该预约已记为爽约。")


class EvidenceRequired(DomainError):
    """Q-3: every priority except age needs the certificate the nurse checked."""

    code = "EVIDENCE_REQUIRED"
    status = 422
    default_message = _("请填写已核验的证件（军人证、残疾人证、母子健康手册等）信息后再设置优先。")


class TicketVoided(DomainError):
    """Q-8: after the 4th miss the ticket is void and cannot be re-signed in."""

    code = "TICKET_VOIDED"
    status = 422
    default_message = _("该号已过号 4 次并作废，请重新挂号。")


class ReturnWindowExpired(DomainError):
    """Q-5: a free return visit only within RETURN_FREE_DAYS (visit day included)."""

    code = "RETURN_WINDOW_EXPIRED"
    status = 422
    default_message = _("已超过免费回诊期限（含就诊当日 3 天），请重新挂号。")


class IdentityMismatch(DomainError):
    """B-2: the scanned card is not the booked patient's; the booking is unchanged."""

    code = "IDENTITY_MISMATCH"
    status = 403
    default_message = _("所扫健康卡与预约患者不一致，不能签到。")


class NoAppointmentToday(NotFound):
    code = "NO_APPOINTMENT_TODAY"
    default_message = _("该患者今天没有待签到的预约。请到挂号窗口挂号。")


class TicketStateConflict(Conflict):
    code = "TICKET_STATE_CONFLICT"
    default_message = _("该候诊号当前状态不允许此操作，请刷新后重试。")


class NoCurrentPatient(Conflict):
    code = "NO_CURRENT_PATIENT"
    default_message = _("当前没有正在呼叫或就诊的患者。")


class AppointmentNotSignable(Conflict):
    code = "APPOINTMENT_NOT_SIGNABLE"
    default_message = _("该预约已取消、已爽约或未支付，不能签到。")
