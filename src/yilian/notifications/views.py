"""Inbox pages (站内信): staff ``/notifications/``, patients ``/notifications/mine/``.

As thin as ``api.py``: the same view renders the page or, for HTMX, the fragment that changed.
A user only ever sees and marks their own messages (``selectors.inbox_of``).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_POST

from yilian.common import policy
from yilian.common.access import PATIENT, requires
from yilian.notifications import selectors, services

PAGE_SIZE = 20


def _patient_sign_in_first(view):
    """Send an anonymous visitor of a patient page to the patient (phone) sign-in, not the staff one."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.actor.is_authenticated and not request.headers.get("HX-Request"):
            return redirect_to_login(request.get_full_path(), resolve_url("accounts:patient-login"))
        return view(request, *args, **kwargs)

    return wrapped


def _inbox(request, template: str, *, mark_url: str, mark_all_url: str):
    unread_only = request.GET.get("show") == "unread"
    page = Paginator(selectors.inbox_of(request.actor, unread_only=unread_only), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "unread_only": unread_only,
        "unread": selectors.unread_count(request.actor),
        "mark_url": mark_url,
        "mark_all_url": mark_all_url,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "inbox-list":
        return render(request, f"{template}#inbox-list", context)
    return render(request, template, context)


def _mark_read(request, message_id: int, template: str, inbox_url: str):
    message = services.mark_read(actor=request.actor, message_id=message_id)
    if not request.headers.get("HX-Request"):
        return redirect(inbox_url)  # without JavaScript: back to the list
    context = {"message": message, "unread": selectors.unread_count(request.actor)}
    return render(request, f"{template}#message-row", context)


@requires(policy.INBOX)
def inbox(request):
    return _inbox(
        request,
        "notifications/inbox.html",
        mark_url="notifications:mark-read",
        mark_all_url="notifications:mark-all-read",
    )


@requires(policy.INBOX)
@require_POST
def mark_read(request, message_id: int):
    return _mark_read(request, message_id, "notifications/inbox.html", "notifications:inbox")


@requires(policy.INBOX)
@require_POST
def mark_all_read(request):
    services.mark_all_read(actor=request.actor)
    return inbox(request)


@requires(policy.INBOX)
def unread_badge(request):
    """The unread count for the navigation bar (HTMX polls it)."""
    return render(
        request, "notifications/unread_badge.html", {"unread": selectors.unread_count(request.actor)}
    )


@_patient_sign_in_first
@requires(PATIENT)
def patient_inbox(request):
    return _inbox(
        request,
        "notifications/patient_inbox.html",
        mark_url="notifications:patient-mark-read",
        mark_all_url="notifications:patient-mark-all-read",
    )


@requires(PATIENT)
@require_POST
def patient_mark_read(request, message_id: int):
    return _mark_read(request, message_id, "notifications/patient_inbox.html", "notifications:patient-inbox")


@requires(PATIENT)
@require_POST
def patient_mark_all_read(request):
    services.mark_all_read(actor=request.actor)
    return patient_inbox(request)
