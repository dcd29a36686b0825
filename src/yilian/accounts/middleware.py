"""Session idle timeout and the per-request ``Actor``."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.utils.functional import SimpleLazyObject

from yilian.accounts.selectors import actor_for_user

TIMED_OUT_KEY = "yilian_timed_out"
# Requests a page makes on its own (polling a badge, refreshing a QR code) send this header so
# that they do not count as the user being active: ``hx-headers='{"X-Yilian-Background": "1"}'``.
BACKGROUND_HEADER = "X-Yilian-Background"
# ``last_seen`` is rewritten at most this often (seconds), so not every request writes the session.
LAST_SEEN_RESOLUTION = 10


class SessionTimeoutMiddleware:
    """Sign a user out after ``SESSION_IDLE_TIMEOUT`` without a request (MLPS 2.0 session timeout,
    GB/T 22239-2019 §8.1.4.1 d).

    Background requests (``X-Yilian-Background``) are checked but do not keep a session alive, so
    a screen left open with a polling widget still signs out. The sign-out is audited
    (``auth.session_timeout``) and leaves a flag in the new, anonymous session so that the sign-in
    page can say why. Also attaches ``request.actor`` (lazily) for views and the API.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_seen")
            if last is not None and now - last > settings.SESSION_IDLE_TIMEOUT.total_seconds():
                from yilian.accounts import services  # services import selectors; keep start-up light

                user = request.user
                logout(request)
                services.record_session_timeout(user=user)
                request.session[TIMED_OUT_KEY] = user.kind
                request.session_timed_out = True
            elif last is None or (
                not request.headers.get(BACKGROUND_HEADER) and now - last >= LAST_SEEN_RESOLUTION
            ):
                request.session["last_seen"] = now
        request.actor = SimpleLazyObject(lambda: actor_for_user(request.user))
        return self.get_response(request)
