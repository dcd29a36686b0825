"""Template filters of the community pages."""

from __future__ import annotations

from django import template

from yilian.common import labels, policy

register = template.Library()


@register.filter
def role_label(role: str) -> str:
    """The Chinese name of a role (``common.policy.ROLE_LABELS``)."""
    return labels.role_label(role)


@register.filter
def is_exclusive_role(role: str) -> bool:
    """三员分立 roles are shown apart from clinical roles."""
    return role in policy.EXCLUSIVE_ROLES
