"""Patients-app test helpers: actors for staff members, patient accounts and API keys."""

from __future__ import annotations

from yilian.accounts.selectors import actor_for_user
from yilian.common.policy import INTEGRATION, Actor, Assignment


def actor_of(staff_or_user) -> Actor:
    """The ``Actor`` the middleware would build for this staff member or user."""
    return actor_for_user(getattr(staff_or_user, "user", staff_or_user))


def system_actor(org) -> Actor:
    """An integrating system's API key scoped to ``org``."""
    return Actor(
        kind="system",
        label="api-key:test",
        assignments=(Assignment(role=INTEGRATION, org_id=org.pk, org_path=org.path),),
        api_key_id=1,
    )
