"""Sign-in pages: staff (username + password), patients (phone + SMS code, H5), security admin.

Pages are as thin as the API: they call ``accounts.services`` / ``accounts.selectors`` and render.
The same view answers a full page or, for HTMX, the fragment it replaces.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from yilian.accounts import selectors as account_selectors
from yilian.accounts import services as account_services
from yilian.accounts.errors import AccountLocked, CodeRateLimited, InvalidCredentials
from yilian.accounts.middleware import TIMED_OUT_KEY
from yilian.accounts.models import User
from yilian.common import masking, policy
from yilian.common.access import PUBLIC, STAFF, requires
from yilian.common.errors import DomainError, InvalidInput
from yilian.common.htmx import is_htmx
from yilian.common.middleware import client_ip
from yilian.community import selectors as community_selectors


def _url(name: str, fallback: str) -> str:
    """``reverse(name)``, or the app's mount point while that page is not there yet."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return fallback


def staff_home() -> str:
    return _url("patients:staff-home", "/patients/")


def staff_landing(user) -> str:
    """Where a member of staff starts: the patient list, or for the non-clinical roles of 三员分立
    (who may not see patients) their own workspace."""
    actor = account_selectors.actor_for_user(user)
    if policy.allows(actor, policy.PATIENT_SEARCH):
        return staff_home()
    for permission, name in (
        (policy.SECURITY_MANAGE, "accounts:security"),
        (policy.AUDIT_VIEW, "common:audit-log"),
        (policy.ORG_MANAGE, "community:org-tree"),
    ):
        if policy.allows(actor, permission):
            return _url(name, staff_home())
    return staff_home()


def patient_home() -> str:
    return _url("h5:home", "/h5/")


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _hx_redirect(request, to: str):
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = to
        return response
    return redirect(to)


# --- staff ---------------------------------------------------------------------------------


@never_cache
@sensitive_post_parameters("password")
@requires(PUBLIC)
def staff_login(request):
    """Staff sign-in (MLPS 2.0 login-failure lock; no user enumeration; safe ``next``)."""
    next_url = _safe_next(request)
    if request.method == "GET" and request.user.is_authenticated and request.user.kind == User.Kind.STAFF:
        return redirect(next_url or staff_landing(request.user))
    timed_out = request.session.pop(TIMED_OUT_KEY, None) if request.method == "GET" else None
    error = None
    username = ""
    if request.method == "POST":
        username = request.POST.get("username", "")[:150]
        try:
            user = account_services.sign_in_staff(
                username=username, password=request.POST.get("password", "")
            )
        except (InvalidCredentials, AccountLocked) as exc:
            error = exc
        else:
            login(request, user)
            return redirect(next_url or staff_landing(user))
    context = {"error": error, "username": username, "next": next_url, "timed_out": timed_out}
    return render(request, "accounts/staff_login.html", context, status=error.status if error else 200)


@never_cache
@sensitive_post_parameters("current", "new", "confirm")
@requires(STAFF)
def password_change(request):
    """A member of staff changes their own password; the session stays signed in."""
    error = None
    if request.method == "POST":
        try:
            user = account_services.change_password(
                actor=request.actor,
                current=request.POST.get("current", "")[:128],
                new=request.POST.get("new", "")[:128],
                confirm=request.POST.get("confirm", "")[:128],
            )
        except InvalidInput as exc:
            error = exc
        else:
            update_session_auth_hash(request, user)
            messages.success(request, _("密码已修改。"))
            return redirect(staff_landing(user))
    return render(
        request, "accounts/password_change.html", {"error": error}, status=error.status if error else 200
    )


@require_POST
@requires(PUBLIC)
def sign_out(request):
    """Sign out (POST only, so a link or an image cannot sign anyone out)."""
    was_patient = request.user.is_authenticated and request.user.kind == User.Kind.PATIENT
    account_services.record_sign_out(actor=request.actor)
    logout(request)
    return redirect("accounts:patient-login" if was_patient else "accounts:staff-login")


# --- patients (H5) -------------------------------------------------------------------------


def _code_context(phone: str) -> dict:
    return {
        "phone": phone,
        "phone_masked": masking.mask_phone(phone),
        "resend_after": settings.OTP_MIN_INTERVAL_SECONDS,
        "ttl_minutes": max(1, settings.OTP_TTL_SECONDS // 60),
    }


def _patient_page(request, step: str, context: dict, status: int = 200):
    template = (
        f"accounts/patient_login.html#step-{step}" if is_htmx(request) else "accounts/patient_login.html"
    )
    # ``next`` (a page the patient was sent to sign in from, e.g. an SMS link) rides along both steps.
    return render(request, template, {"step": step, "next": _safe_next(request), **context}, status=status)


@never_cache
@require_GET
@requires(PUBLIC)
def patient_login(request):
    """Step 1: the phone number (phone-sized H5 page)."""
    if request.user.is_authenticated and request.user.kind == User.Kind.PATIENT:
        return redirect(_safe_next(request) or patient_home())
    timed_out = request.session.pop(TIMED_OUT_KEY, None)
    return _patient_page(request, "phone", {"phone": "", "timed_out": timed_out})


@never_cache
@require_POST
@requires(PUBLIC)
def patient_send_code(request):
    """Step 1 → 2: send the code by SMS (rate-limited), then ask for it."""
    raw = phone = request.POST.get("phone", "")[:20]
    try:
        phone = account_services.clean_phone(raw)
        account_services.request_code(phone=phone, ip=client_ip(request))
    except DomainError as exc:
        # A code went out moments ago (reloaded page, "change number" and back): ask for that code.
        just_sent = isinstance(exc, CodeRateLimited) and exc.extra.get("limit") == "interval"
        resend = request.POST.get("resend") and not isinstance(exc, InvalidInput)
        step = "code" if just_sent or resend else "phone"
        context = _code_context(phone) if step == "code" else {"phone": raw}
        return _patient_page(request, step, {**context, "error": exc}, status=exc.status)
    return _patient_page(request, "code", {**_code_context(phone), "sent": True})


@never_cache
@require_POST
@requires(PUBLIC)
def patient_verify(request):
    """Step 2: check the code, sign in, go to the H5 home page."""
    raw = request.POST.get("phone", "")[:20]
    try:
        phone = account_services.clean_phone(raw)
    except InvalidInput as exc:
        return _patient_page(request, "phone", {"phone": raw, "error": exc}, status=exc.status)
    try:
        user = account_services.verify_code(
            phone=phone, code=request.POST.get("code", "")[:10], ip=client_ip(request)
        )
    except DomainError as exc:
        return _patient_page(request, "code", {**_code_context(phone), "error": exc}, status=exc.status)
    login(request, user)
    return _hx_redirect(request, _safe_next(request) or patient_home())


# --- security administrator ----------------------------------------------------------------


def _security_context(request, **extra) -> dict:
    actor = request.actor
    return {
        "keys": account_selectors.api_keys_visible_to(actor),
        "organisations": account_selectors.organisations_for_keys(actor),
        "locked_users": account_selectors.locked_users_visible_to(actor),
        "lockout_threshold": settings.STAFF_LOCKOUT_THRESHOLD,
        "lockout_minutes": settings.STAFF_LOCKOUT_MINUTES,
        **extra,
    }


@never_cache
@require_GET
@requires(policy.SECURITY_MANAGE)
def security(request):
    """The security administrator's page (安全管理): API keys and locked staff accounts."""
    return render(request, "accounts/security.html", _security_context(request))


@never_cache
@require_POST
@requires(policy.SECURITY_MANAGE)
def security_key_create(request):
    """Issue a key; the full key is in this one response and nowhere else."""
    form = {
        "name": request.POST.get("name", "")[:80],
        "organisation": request.POST.get("organisation", "")[:32],
    }
    try:
        if "\x00" in form["organisation"]:
            raise InvalidInput(_("请选择所属机构。"), field="organisation")
        org = community_selectors.organisation_by_code(form["organisation"], field="organisation")
        key, full = account_services.create_api_key(actor=request.actor, organisation=org, name=form["name"])
    except DomainError as exc:
        context = _security_context(request, form=form, key_error=exc)
        status = exc.status
    else:
        context = _security_context(request, new_key=key, new_key_secret=full)
        status = 200
    template = "accounts/security.html#keys" if is_htmx(request) else "accounts/security.html"
    return render(request, template, context, status=status)


@require_POST
@requires(policy.SECURITY_MANAGE)
def security_key_revoke(request, key_id: int):
    key = account_services.revoke_api_key(actor=request.actor, key_id=key_id)
    if is_htmx(request):
        return render(request, "accounts/security.html#key-row", {"key": key})
    messages.success(request, _("密钥 %(prefix)s 已吊销。") % {"prefix": key.prefix})
    return redirect("accounts:security")


@require_POST
@requires(policy.SECURITY_MANAGE)
def security_unlock(request, user_id: int):
    user = account_services.unlock_user(actor=request.actor, user_id=user_id)
    if is_htmx(request):
        return render(request, "accounts/security.html#unlocked-row", {"locked": user})
    messages.success(request, _("账号 %(username)s 已解锁。") % {"username": user.username})
    return redirect("accounts:security")
