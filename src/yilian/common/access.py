"""Endpoint guards that ask the policy module. Every page view and API operation declares one.

``@requires(permission)`` both enforces and *declares*: it sets ``yilian_permission`` on the
function, which the role × endpoint matrix test (tests/test_permission_matrix.py) reads to check
that every endpoint that exists is guarded and behaves as the policy says for every role.
Special values: ``PUBLIC`` (sign-in pages), ``PATIENT`` (a signed-in patient account),
``STAFF`` (any signed-in staff member; data inside is still scoped by the selectors),
``AUTHENTICATED`` (anyone signed in).
"""

from __future__ import annotations

import contextlib
import inspect
from functools import wraps

from yilian.common import policy
from yilian.common.errors import NotAuthenticated, PermissionDenied
from yilian.common.policy import Actor

PUBLIC = "public"
PATIENT = "patient"
STAFF = "staff"
AUTHENTICATED = "authenticated"  # anyone signed in: staff, patient account or API key


def check(actor: Actor, permission: str) -> None:
    """Raise ``NotAuthenticated`` / ``PermissionDenied`` unless ``actor`` may use ``permission``."""
    if permission == PUBLIC:
        return
    if not actor.is_authenticated:
        raise NotAuthenticated()
    if permission == AUTHENTICATED:
        return
    if permission == PATIENT:
        if actor.kind != "patient":
            raise PermissionDenied()
        return
    if not actor.is_staff_member:
        raise PermissionDenied()
    if permission == STAFF:
        return
    if not policy.allows(actor, permission):
        raise PermissionDenied()


def requires(permission: str):
    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            check(getattr(request, "actor", policy.ANONYMOUS), permission)
            return view(request, *args, **kwargs)

        guarded.yilian_permission = permission  # type: ignore[attr-defined]
        # Resolve string annotations (``from __future__ import annotations``) against the view's own
        # module now: ninja would otherwise resolve them against this module and fail. A forward
        # reference to a name defined later is left for ninja to resolve itself.
        with contextlib.suppress(NameError, TypeError):
            guarded.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
        return guarded

    return decorate
