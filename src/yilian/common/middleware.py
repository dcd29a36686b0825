"""Page-side rendering of ``DomainError``: a 4xx page (or HTMX fragment) with the message."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render, resolve_url

from yilian.common.errors import DomainError, NotAuthenticated


class DomainErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        if request.path.startswith("/api/"):
            return None  # the API renders its own JSON errors
        if isinstance(exception, NotAuthenticated) and not request.headers.get("HX-Request"):
            login = "accounts:patient-login" if request.path.startswith("/h5/") else "accounts:staff-login"
            return redirect_to_login(request.get_full_path(), resolve_url(login))
        actor = getattr(request, "actor", None)
        if actor is not None and actor.is_authenticated:
            from yilian.common import audit

            audit.refused(actor, f"page:{request.method} {request.path}"[:64], code=exception.code)
        template = "partials/error.html" if request.headers.get("HX-Request") else "error.html"
        base = "h5_base.html" if request.path.startswith("/h5/") else "base.html"
        return render(request, template, {"error": exception, "base_template": base}, status=exception.status)


def client_ip(request) -> str | None:
    """The caller's address. Behind the hospital's reverse proxy set YILIAN_TRUST_X_FORWARDED_FOR."""
    from django.conf import settings

    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:45]
    return (request.META.get("REMOTE_ADDR") or "")[:45] or None
