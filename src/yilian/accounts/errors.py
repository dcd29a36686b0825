"""Sign-in errors a user can cause, each with a stable code (ARCHITECTURE.md error contract).

The messages never tell an unknown user from a wrong password (no user enumeration, MLPS 2.0
identification and authentication practice).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from yilian.common.errors import DomainError, NotAuthenticated, RateLimited


class InvalidCredentials(NotAuthenticated):
    """Unknown user, wrong password, disabled account or a patient account: all look alike."""

    code = "INVALID_CREDENTIALS"
    default_message = _("用户名或密码不正确。")


class AccountLocked(DomainError):
    """The account is locked after too many failed sign-ins; ``locked_until`` says until when."""

    code = "ACCOUNT_LOCKED"
    status = 423
    default_message = _("账号已被锁定，请稍后再试。")


class CodeRateLimited(RateLimited):
    """Too many codes asked for; ``retry_after`` (seconds) says how long to wait."""


class CodeInvalid(DomainError):
    code = "OTP_INVALID"
    status = 400
    default_message = _("验证码不正确，请核对短信后重新输入。")


class CodeExpired(DomainError):
    code = "OTP_EXPIRED"
    status = 400
    default_message = _("验证码已过期或已使用，请重新获取。")


class CodeAttemptsExceeded(DomainError):
    code = "OTP_ATTEMPTS_EXCEEDED"
    status = 429
    default_message = _("验证码输错次数过多，已失效，请重新获取。")


class AccountDisabled(DomainError):
    code = "ACCOUNT_DISABLED"
    status = 403
    default_message = _("该账号已停用，请联系医院。")
