"""Session idle timeout and the per-request ``Actor``."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.utils.functional import SimpleLazyObject

from yilian.accounts.selectors import actor_for_user


class SessionTimeoutMiddleware:
    """Sign a user out after ``SESSION_IDLE_TIMEOUT`` without a request (MLPS 2.0 session timeout).

    Also attaches ``request.actor`` (lazily) for views and the API.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_seen")
            if last is not None and now - last > settings.SESSION_IDLE_TIMEOUT.total_seconds():
                logout(request)
                request.session_timed_out = True
            else:
                request.session["last_seen"] = now
        request.actor = SimpleLazyObject(lambda: actor_for_user(request.user))
        return self.get_response(request)
