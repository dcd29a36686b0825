"""The policy module: role permissions, subtree scope, separation of duties (三员分立)."""

import pytest

from yilian.common import policy
from yilian.common.policy import Actor, Assignment


def actor(*pairs):
    return Actor(
        kind="staff", user_id=1, assignments=tuple(Assignment(r, i, p) for i, (r, p) in enumerate(pairs))
    )


def test_village_doctor_scope_is_the_village_subtree():
    a = actor((policy.VILLAGE_DOCTOR, "0001.0002.0003."))
    assert policy.covers(a, policy.PATIENT_VIEW, "0001.0002.0003.")
    assert not policy.covers(a, policy.PATIENT_VIEW, "0001.0002.0004.")
    assert not policy.covers(a, policy.PATIENT_VIEW, "0001.0002.")


def test_scope_paths_drop_nested_prefixes():
    a = actor((policy.DOCTOR, "0001."), (policy.NURSE, "0001.0002."))
    assert policy.scope_paths(a, policy.PATIENT_VIEW) == ["0001."]


@pytest.mark.parametrize("role", [policy.SYSADMIN, policy.SECADMIN, policy.AUDITOR])
def test_administrative_roles_never_see_patients(role):
    assert not policy.allows(actor((role, "0001.")), policy.PATIENT_VIEW)
    assert not policy.allows(actor((role, "0001.")), policy.PATIENT_SEARCH)


def test_only_auditors_read_the_audit_log():
    holders = [r for r in policy.STAFF_ROLES if policy.AUDIT_VIEW in policy.ROLE_PERMISSIONS[r]]
    assert holders == [policy.AUDITOR]


@pytest.mark.parametrize(
    ("held", "new", "clash"),
    [
        ({policy.SYSADMIN}, policy.AUDITOR, policy.SYSADMIN),
        ({policy.AUDITOR}, policy.SECADMIN, policy.AUDITOR),
        ({policy.DOCTOR}, policy.SYSADMIN, policy.DOCTOR),
        ({policy.SECADMIN}, policy.NURSE, policy.SECADMIN),
        ({policy.DOCTOR}, policy.NURSE, None),
        (set(), policy.AUDITOR, None),
    ],
)
def test_separation_of_duties(held, new, clash):
    assert policy.exclusive_conflict(held, new) == clash
