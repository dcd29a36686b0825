"""Errors a user can cause, in clinic language, each with a stable code (ARCHITECTURE.md).

One ninja exception handler (``yilian.api``) and one page middleware (``common.middleware``)
render every ``DomainError`` as a 4xx. Messages are lazily translated so that they reach the
caller in the caller's language.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """Base class: ``code`` is the stable API contract, ``status`` the HTTP status."""

    code = "INVALID_REQUEST"
    status = 400
    default_message = _("请求无效。")

    def __init__(self, message: Any = None, *, field: str | None = None, **extra: Any) -> None:
        self.message = message if message is not None else self.default_message
        self.field = field
        self.extra = extra
        super().__init__(str(self.message))

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.field:
            body["field"] = self.field
        body.update(
            {
                k: (str(v) if not isinstance(v, int | float | bool | list | dict) else v)
                for k, v in self.extra.items()
            }
        )
        return body


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    status = 422
    default_message = _("输入有误。")


class NotFound(DomainError):
    """Missing and forbidden look alike for patient data, so that ids cannot be probed."""

    code = "NOT_FOUND"
    status = 404
    default_message = _("未找到该记录，或您无权查看。")


class PermissionDenied(DomainError):
    code = "FORBIDDEN"
    status = 403
    default_message = _("您没有执行此操作的权限。")


class NotAuthenticated(DomainError):
    code = "NOT_AUTHENTICATED"
    status = 401
    default_message = _("请先登录。")


class Conflict(DomainError):
    code = "CONFLICT"
    status = 409
    default_message = _("该记录已被修改或已存在。")


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    status = 429
    default_message = _("操作过于频繁，请稍后再试。")
