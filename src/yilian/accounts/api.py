"""Accounts API: authentication for the whole API, and sign-in end points.

``/api/v1/accounts/``: staff sign-in (``/login``), patient sign-in by SMS code (``/otp/request``,
``/otp/verify``), ``/logout``, ``/me``, and the security administrator's API keys and lockouts.
Errors follow the project's contract (``{"code", "message", ...}``).

No ``from __future__ import annotations`` here: ninja reads the schema annotations through the
``@requires`` wrapper, whose module globals do not hold ``schemas``.
"""

from django.contrib.auth import login, logout
from django.http import HttpResponse
from django.utils.translation import gettext_lazy
from ninja import Router, Status
from ninja.security import APIKeyHeader

from yilian.accounts import schemas
from yilian.accounts import selectors as account_selectors
from yilian.accounts import services as account_services
from yilian.accounts.selectors import actor_for_api_key, actor_for_user
from yilian.common import masking, policy
from yilian.common.access import AUTHENTICATED, PUBLIC, requires
from yilian.common.errors import NotAuthenticated
from yilian.common.middleware import client_ip
from yilian.community import selectors as community_selectors

router = Router(tags=["accounts"])


class ApiAuth(APIKeyHeader):
    """Session cookie (pages, with CSRF) or ``X-API-Key`` (integrating systems, scoped by organisation)."""

    param_name = "X-API-Key"

    def __call__(self, request):
        raw = request.headers.get(self.param_name)
        if raw:
            actor = actor_for_api_key(raw)
            if actor is None:
                raise NotAuthenticated()
            request.actor = actor
            request._dont_enforce_csrf_checks = True  # machine callers carry no session cookie
            return actor
        actor = actor_for_user(getattr(request, "user", None))
        if not actor.is_authenticated:
            return None
        from django.middleware.csrf import CsrfViewMiddleware

        if request.method not in ("GET", "HEAD", "OPTIONS"):
            reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if reason is not None:
                from yilian.common.errors import PermissionDenied

                raise PermissionDenied(gettext_lazy("CSRF 校验失败，请刷新页面后重试。"))
        request.actor = actor
        return actor

    def authenticate(self, request, key):  # pragma: no cover - __call__ handles both paths
        return None


def _me(actor) -> dict:
    return account_selectors.who_am_i(actor)


@router.post("/login", auth=None, response=schemas.MeRead, summary="工作人员登录（用户名 + 密码）")
@requires(PUBLIC)
def staff_login(request, payload: schemas.StaffLogin):
    """Sign a staff member in (session cookie). Lockout after repeated failures (423 ``ACCOUNT_LOCKED``)."""
    user = account_services.sign_in_staff(username=payload.username, password=payload.password)
    login(request, user)
    return _me(actor_for_user(user))


@router.post("/otp/request", auth=None, response=schemas.CodeSent, summary="患者获取短信验证码")
@requires(PUBLIC)
def otp_request(request, payload: schemas.CodeRequest):
    """Send a 6-digit sign-in code by SMS. 422 for a bad number, 429 ``RATE_LIMITED`` with ``retry_after``."""
    from django.conf import settings

    otp = account_services.request_code(phone=payload.phone, ip=client_ip(request))
    return {
        "phone_masked": masking.mask_phone(account_services.clean_phone(payload.phone)),
        "expires_in": int((otp.expires_at - otp.created_at).total_seconds()),
        "resend_after": settings.OTP_MIN_INTERVAL_SECONDS,
    }


@router.post("/otp/verify", auth=None, response=schemas.MeRead, summary="患者以短信验证码登录")
@requires(PUBLIC)
def otp_verify(request, payload: schemas.CodeVerify):
    """Check the code and sign the patient account in (created on first sign-in)."""
    user = account_services.verify_code(phone=payload.phone, code=payload.code, ip=client_ip(request))
    login(request, user)
    return _me(actor_for_user(user))


@router.post("/logout", auth=None, response={204: None}, summary="退出登录")
@requires(PUBLIC)
def sign_out(request):
    account_services.record_sign_out(actor=request.actor)
    logout(request)
    return HttpResponse(status=204)


@router.get("/me", response=schemas.MeRead, summary="当前登录身份")
@requires(AUTHENTICATED)
def me(request):
    """Who is calling: kind (staff / patient / system), name, roles with organisation codes."""
    return _me(request.actor)


def _key_read(key) -> dict:
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "organisation_code": key.organisation.code,
        "organisation_name": key.organisation.name,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
        "active": key.revoked_at is None,
    }


@router.get("/keys", response=list[schemas.ApiKeyRead], summary="接口密钥列表")
@requires(policy.SECURITY_MANAGE)
def list_keys(request):
    return [_key_read(k) for k in account_selectors.api_keys_visible_to(request.actor)]


@router.post("/keys", response={201: schemas.ApiKeyIssued}, summary="签发接口密钥（完整密钥仅返回一次）")
@requires(policy.SECURITY_MANAGE)
def create_key(request, payload: schemas.ApiKeyCreate):
    org = community_selectors.organisation_by_code(payload.organisation_code, field="organisation_code")
    key, full = account_services.create_api_key(actor=request.actor, organisation=org, name=payload.name)
    return Status(201, {**_key_read(key), "key": full})


@router.post("/keys/{key_id}/revoke", response=schemas.ApiKeyRead, summary="吊销接口密钥")
@requires(policy.SECURITY_MANAGE)
def revoke_key(request, key_id: int):
    key = account_services.revoke_api_key(actor=request.actor, key_id=key_id)
    return _key_read(key)


@router.get("/locked-users", response=list[schemas.LockedUserRead], summary="被锁定的工作人员账号")
@requires(policy.SECURITY_MANAGE)
def locked_users(request):
    return [
        {
            "id": u.pk,
            "username": u.username,
            "name": u.staff.name,
            "organisation_code": u.staff.organisation.code,
            "locked_until": u.locked_until,
        }
        for u in account_selectors.locked_users_visible_to(request.actor)
    ]


@router.post("/users/{user_id}/unlock", response={204: None}, summary="解除账号锁定")
@requires(policy.SECURITY_MANAGE)
def unlock(request, user_id: int):
    account_services.unlock_user(actor=request.actor, user_id=user_id)
    return HttpResponse(status=204)
