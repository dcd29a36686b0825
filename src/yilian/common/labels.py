"""Translatable names of the policy's roles (``common.policy`` stays free of Django)."""

from django.utils.translation import gettext_lazy as _

from yilian.common import policy

ROLE_LABELS = {
    policy.DOCTOR: _("医生"),
    policy.NURSE: _("护士"),
    policy.PHARMACIST: _("药师"),
    policy.VILLAGE_DOCTOR: _("乡村医生"),
    policy.SERVICE_OPERATOR: _("服务中心客服"),
    policy.COORDINATOR: _("医共体协调员"),
    policy.SYSADMIN: _("系统管理员"),
    policy.SECADMIN: _("安全管理员"),
    policy.AUDITOR: _("安全审计员"),
    policy.INTEGRATION: _("系统对接"),
}


def role_label(role: str) -> str:
    """The role's name in the current language (the code itself for an unknown role)."""
    return str(ROLE_LABELS.get(role, role))
