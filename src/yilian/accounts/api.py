"""Accounts API: authentication for the whole API, and sign-in end points."""

from __future__ import annotations

from ninja import Router
from ninja.security import APIKeyHeader

from yilian.accounts.selectors import actor_for_api_key, actor_for_user
from yilian.common.errors import NotAuthenticated

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

                raise PermissionDenied("CSRF 校验失败，请刷新页面后重试。")
        request.actor = actor
        return actor

    def authenticate(self, request, key):  # pragma: no cover - __call__ handles both paths
        return None
