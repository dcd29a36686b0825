"""Role names follow the caller's language, and every role the policy knows has one."""

from django.utils import translation

from yilian.common import labels, policy


def test_every_policy_role_has_a_translatable_label():
    assert set(labels.ROLE_LABELS) == set(policy.ROLE_LABELS)


def test_role_labels_follow_the_language():
    with translation.override("zh-hans"):
        assert labels.role_label(policy.AUDITOR) == "安全审计员"
    with translation.override("en"):
        assert labels.role_label(policy.AUDITOR) == "Security auditor"
    assert labels.role_label("unknown-role") == "unknown-role"
