"""``/api/v1/``: one NinjaAPI mounting every app's router, with one error contract.

Errors are JSON ``{"code": ..., "message": ...}``: ``code`` is stable for integrators, ``message``
is in the caller's language (Accept-Language, via LocaleMiddleware). Every refusal of an
authenticated caller is audited (access.md L-1).
"""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.operation import PathView

from yilian.accounts.api import ApiAuth
from yilian.accounts.api import router as accounts_router
from yilian.chronic.api import router as chronic_router
from yilian.common import access, audit
from yilian.common.api import router as audit_router
from yilian.common.errors import DomainError
from yilian.community.api import router as community_router
from yilian.exams.api import router as exams_router
from yilian.notifications.api import router as notifications_router
from yilian.patients.api import router as patients_router
from yilian.patients.card_api import router as cards_router
from yilian.queueing.api import router as queueing_router
from yilian.scheduling.api import router as scheduling_router


class GuardedAuth(ApiAuth):
    """Authenticate, then apply the operation's declared permission *before* ninja parses the body.

    ``@requires`` on the handler runs only after parameter validation, so without this a caller
    lacking the permission would learn about validation (422) before being refused (403).
    The handler's own guard still runs: this is an earlier, not a second, decision.
    """

    def __call__(self, request):
        actor = super().__call__(request)
        if actor is None:
            return None
        permission = _declared_permission(request)
        if permission is not None:
            access.check(actor, permission)
        return actor


def _declared_permission(request) -> str | None:
    match = getattr(request, "resolver_match", None)
    view = getattr(match, "func", None)
    for cell in getattr(view, "__closure__", None) or ():
        path_view = cell.cell_contents
        if isinstance(path_view, PathView):
            for operation in path_view.operations:
                if request.method in operation.methods:
                    return getattr(operation.view_func, "yilian_permission", None)
    return None


api = NinjaAPI(
    title="Yilian API",
    version="1",
    description="医联 — county medical community services. Session cookie (pages) or X-API-Key (systems).",
    urls_namespace="api-v1",
    auth=GuardedAuth(),
)


def _refusal(request, code: str) -> None:
    actor = getattr(request, "actor", None)
    if actor is not None and actor.is_authenticated:
        audit.refused(actor, f"api:{request.method} {request.path}"[:64], code=code)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    _refusal(request, exc.code)
    return api.create_response(request, exc.as_dict(), status=exc.status)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    errors = []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload", "query", "path")]
        errors.append({"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type", "")})
    first = errors[0] if errors else {"field": "", "message": ""}
    body = {
        "code": "VALIDATION_ERROR",
        "message": _("字段 %(field)s 有误：%(message)s")
        % {"field": first["field"] or "-", "message": first["message"]},
        "errors": errors,
    }
    return api.create_response(request, body, status=422)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return api.create_response(
        request, {"code": "NOT_AUTHENTICATED", "message": _("请先登录或提供有效的接口密钥。")}, status=401
    )


@api.exception_handler(Http404)
def on_404(request, exc):
    return api.create_response(
        request, {"code": "NOT_FOUND", "message": _("未找到该记录，或您无权查看。")}, status=404
    )


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return api.create_response(
        request, {"code": f"HTTP_{exc.status_code}", "message": str(exc)}, status=exc.status_code
    )


api.add_router("/accounts", accounts_router)
api.add_router("/community", community_router)
api.add_router("/patients", patients_router)
api.add_router("/cards", cards_router)
api.add_router("/notifications", notifications_router)
api.add_router("/audit", audit_router)
api.add_router("/scheduling", scheduling_router)
api.add_router("/exams", exams_router)
api.add_router("/chronic", chronic_router)
api.add_router("/queueing", queueing_router)
