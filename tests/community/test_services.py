"""community.services: paths, hierarchy, codes, staff, 三员分立, audit."""

from __future__ import annotations

import pytest

from tests.community.conftest import ORG_FIELDS
from yilian.accounts.selectors import actor_for_user
from yilian.common import policy
from yilian.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from yilian.common.models import AuditEvent
from yilian.community import services
from yilian.community.errors import (
    DuplicateCode,
    HierarchyViolation,
    SelfAssignment,
    SeparationOfDuties,
    UnknownOrganisation,
    WeakPassword,
)
from yilian.community.models import Organisation, RoleAssignment, Staff


def _org(actor, code, kind, parent_code, **extra):
    return services.create_organisation(
        actor=actor, code=code, name=f"机构{code}", kind=kind, parent_code=parent_code, **ORG_FIELDS, **extra
    )


# --- organisations -----------------------------------------------------------------------------


def test_new_child_gets_the_next_path_under_its_parent(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    last = Organisation.objects.filter(parent=community.township).order_by("-path").first().path
    org = _org(sysadmin, "VC0102", "village_clinic", "TS01")
    assert org.path.startswith(community.township.path)
    assert org.path > last
    assert len(org.path) == len(community.township.path) + 5
    assert org.depth == community.township.depth + 1
    second = _org(sysadmin, "VC0103", "village_clinic", "ts01")  # parent codes are case-insensitive
    assert second.path > org.path
    assert second.parent == community.township


def test_creation_is_audited(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    org = _org(sysadmin, "CC01", "community_centre", "COUNTY01")
    event = AuditEvent.objects.get(action="community.organisation.create")
    assert event.object_id == str(org.pk)
    assert event.detail["parent"] == "COUNTY01"


def test_unknown_parent_code_is_422_naming_the_code(community, actor_of):
    with pytest.raises(UnknownOrganisation) as exc:
        _org(actor_of(policy.SYSADMIN), "VC9", "village_clinic", "NOPE-42")
    assert exc.value.status == 422
    assert exc.value.code == "UNKNOWN_ORGANISATION"
    assert "NOPE-42" in str(exc.value.message)
    assert not Organisation.objects.filter(code="VC9").exists()


def test_duplicate_code_is_a_conflict(community, actor_of):
    with pytest.raises(DuplicateCode) as exc:
        _org(actor_of(policy.SYSADMIN), "vc0101", "village_clinic", "TS01")
    assert exc.value.status == 409


@pytest.mark.parametrize(
    ("kind", "parent"),
    [
        ("village_clinic", "COUNTY01"),
        ("township_centre", "TS01"),
        ("county_hospital", "COUNTY01"),
        ("community_centre", "VC0101"),
    ],
)
def test_wrong_hierarchy_is_refused(community, actor_of, kind, parent):
    with pytest.raises(HierarchyViolation) as exc:
        _org(actor_of(policy.SYSADMIN), "NEW01", kind, parent)
    assert exc.value.status == 422
    assert not Organisation.objects.filter(code="NEW01").exists()


def test_a_township_without_parent_is_refused(community, actor_of):
    with pytest.raises(HierarchyViolation):
        _org(actor_of(policy.SYSADMIN), "NEW01", "township_centre", None)


@pytest.mark.parametrize("code", ["a", "TS 9", "卫生院01", "X" * 33])
def test_malformed_code_is_refused(community, actor_of, code):
    with pytest.raises(InvalidInput) as exc:
        _org(actor_of(policy.SYSADMIN), code, "village_clinic", "TS01")
    assert exc.value.field == "code"


def test_bad_division_code_is_refused_and_good_one_kept(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    with pytest.raises(InvalidInput) as exc:
        _org(sysadmin, "VC0102", "village_clinic", "TS01", division_code="12345")
    assert exc.value.field == "division_code"
    org = _org(sysadmin, "VC0102", "village_clinic", "TS01", division_code="370687100201")
    assert org.division_code == "370687100201"


def test_only_the_system_administrator_creates_organisations(community, actor_of):
    for role in (policy.SECADMIN, policy.DOCTOR, policy.AUDITOR):
        with pytest.raises(PermissionDenied):
            _org(actor_of(role), "VC0102", "village_clinic", "TS01")


def test_township_sysadmin_cannot_create_outside_its_subtree(community, actor_of):
    township_admin = actor_of(policy.SYSADMIN, community.township)
    _org(township_admin, "VC0102", "village_clinic", "TS01")
    with pytest.raises(PermissionDenied):
        _org(township_admin, "VC0202", "village_clinic", "TS02")


def test_update_and_close(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    org = services.update_organisation(
        actor=sysadmin, code="VC0101", name="留格庄村卫生室（新址）", phone="0535-1234567"
    )
    assert org.name == "留格庄村卫生室（新址）"
    with pytest.raises(Conflict):  # a township with a running village clinic cannot close
        services.set_organisation_status(actor=sysadmin, code="TS01", status="closed")
    services.set_organisation_status(actor=sysadmin, code="VC0101", status="closed", reason="合并")
    assert Organisation.objects.get(code="VC0101").status == "closed"
    with pytest.raises(NotFound):
        services.update_organisation(actor=sysadmin, code="NOPE", name="x")


# --- departments and staff ----------------------------------------------------------------------


def test_department_codes_are_unique_per_organisation(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    services.create_department(actor=sysadmin, organisation_code="COUNTY01", code="CARD", name="心血管内科")
    services.create_department(actor=sysadmin, organisation_code="TS01", code="CARD", name="内科")
    with pytest.raises(DuplicateCode):
        services.create_department(actor=sysadmin, organisation_code="COUNTY01", code="card", name="心内科")


def _staff(actor, **overrides):
    data = {
        "username": "liwei",
        "password": "Haiyang-Card-2026",
        "name": "李伟",
        "organisation_code": "COUNTY01",
        "title": Staff.Title.ATTENDING_PHYSICIAN,
        "licence_number": "110370600012345",
    }
    data.update(overrides)
    return services.create_staff(actor=actor, **data)


def test_create_staff_with_a_strong_password(community, actor_of):
    staff = _staff(actor_of(policy.SYSADMIN))
    assert staff.user.check_password("Haiyang-Card-2026")
    assert staff.user.kind == "staff"
    assert not staff.roles.exists()  # roles come from the security administrator
    event = AuditEvent.objects.get(action="community.staff.create")
    assert "Haiyang" not in str(event.detail)


@pytest.mark.parametrize("password", ["short1", "12345678901234", "password123"])
def test_weak_passwords_are_refused_with_the_validator_messages(community, actor_of, password):
    with pytest.raises(WeakPassword) as exc:
        _staff(actor_of(policy.SYSADMIN), password=password)
    assert exc.value.status == 422
    assert exc.value.extra["reasons"]
    assert not Staff.objects.filter(name="李伟").exists()


def test_duplicate_username_and_licence_are_conflicts(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    _staff(sysadmin)
    with pytest.raises(Conflict):
        _staff(sysadmin, licence_number="")
    with pytest.raises(Conflict):
        _staff(sysadmin, username="liwei2")


def test_unknown_department_is_refused(community, actor_of):
    with pytest.raises(InvalidInput) as exc:
        _staff(actor_of(policy.SYSADMIN), department_code="NOPE")
    assert exc.value.field == "department_code"


def test_security_administrator_cannot_create_staff(community, actor_of):
    with pytest.raises(PermissionDenied):
        _staff(actor_of(policy.SECADMIN))


# --- roles and 三员分立 -----------------------------------------------------------------------------


def test_security_administrator_grants_and_revokes_roles(community, actor_of, staff_of):
    secadmin = actor_of(policy.SECADMIN)
    doctor = staff_of(policy.DOCTOR, community.township)
    assignment = services.assign_role(
        actor=secadmin, staff=doctor, role=policy.COORDINATOR, organisation="COUNTY01"
    )
    assert set(doctor.roles.values_list("role", flat=True)) == {policy.DOCTOR, policy.COORDINATOR}
    services.revoke_role(actor=secadmin, staff=doctor.pk, assignment_id=assignment.pk)
    assert set(doctor.roles.values_list("role", flat=True)) == {policy.DOCTOR}
    actions = AuditEvent.objects.filter(action__startswith="community.role").values_list("action", flat=True)
    assert sorted(actions) == ["community.role.assign", "community.role.revoke"]


def test_system_administrator_cannot_grant_roles(community, actor_of, staff_of):
    sysadmin = actor_of(policy.SYSADMIN)
    doctor = staff_of(policy.DOCTOR)
    with pytest.raises(PermissionDenied):
        services.assign_role(actor=sysadmin, staff=doctor, role=policy.NURSE, organisation="COUNTY01")
    with pytest.raises(PermissionDenied):
        services.assign_role(actor=sysadmin, staff=doctor, role=policy.SECADMIN, organisation="COUNTY01")
    assert doctor.roles.count() == 1


@pytest.mark.parametrize(
    ("held", "new"),
    [
        (policy.SYSADMIN, policy.SECADMIN),
        (policy.SYSADMIN, policy.AUDITOR),
        (policy.AUDITOR, policy.SECADMIN),
        (policy.AUDITOR, policy.SYSADMIN),
        (policy.SYSADMIN, policy.DOCTOR),
        (policy.DOCTOR, policy.AUDITOR),
        (policy.NURSE, policy.SYSADMIN),
    ],
)
def test_separation_of_duties_refuses_conflicting_roles(community, actor_of, staff_of, held, new):
    secadmin = actor_of(policy.SECADMIN)
    member = staff_of(held)
    with pytest.raises(SeparationOfDuties) as exc:
        services.assign_role(actor=secadmin, staff=member, role=new, organisation="COUNTY01")
    assert exc.value.status == 409
    assert exc.value.code == "SEPARATION_OF_DUTIES"
    assert list(member.roles.values_list("role", flat=True)) == [held]


def test_secadmin_cannot_grant_itself_a_role(community, staff_of):
    me = staff_of(policy.SECADMIN)
    with pytest.raises(SelfAssignment):
        services.assign_role(
            actor=actor_for_user(me.user), staff=me, role=policy.SECADMIN, organisation="TS01"
        )


def test_integration_role_is_not_for_people(community, actor_of, staff_of):
    with pytest.raises(InvalidInput):
        services.assign_role(
            actor=actor_of(policy.SECADMIN),
            staff=staff_of(policy.DOCTOR),
            role=policy.INTEGRATION,
            organisation="COUNTY01",
        )


def test_duplicate_assignment_is_a_conflict(community, actor_of, staff_of):
    with pytest.raises(Conflict):
        services.assign_role(
            actor=actor_of(policy.SECADMIN),
            staff=staff_of(policy.DOCTOR),
            role=policy.DOCTOR,
            organisation="COUNTY01",
        )
    assert RoleAssignment.objects.filter(role=policy.DOCTOR).count() == 1


def test_township_secadmin_cannot_reach_other_townships(community, actor_of, staff_of):
    secadmin = actor_of(policy.SECADMIN, community.township)
    other = staff_of(policy.DOCTOR, community.other_village)
    with pytest.raises(NotFound):
        services.assign_role(actor=secadmin, staff=other, role=policy.NURSE, organisation="VC0201")
    mine = staff_of(policy.DOCTOR, community.village)
    with pytest.raises(PermissionDenied):  # cannot grant a role reaching beyond its own subtree
        services.assign_role(actor=secadmin, staff=mine, role=policy.COORDINATOR, organisation="COUNTY01")


def test_bad_phone_is_refused(community, actor_of):
    with pytest.raises(InvalidInput) as exc:
        _org(actor_of(policy.SYSADMIN), "VC0102", "village_clinic", "TS01", phone="call me")
    assert exc.value.field == "phone"


def test_staff_who_left_cannot_sign_in_and_hold_nothing(community, actor_of, staff_of):
    sysadmin = actor_of(policy.SYSADMIN)
    doctor = staff_of(policy.DOCTOR)
    services.set_staff_active(actor=sysadmin, staff=doctor, active=False, reason="调离")
    doctor.refresh_from_db()
    doctor.user.refresh_from_db()
    assert not doctor.is_active and not doctor.user.is_active
    assert not actor_for_user(doctor.user).is_authenticated
    assert AuditEvent.objects.filter(action="community.staff.deactivate", reason="调离").exists()
    services.set_staff_active(actor=sysadmin, staff=doctor.pk, active=True)
    doctor.user.refresh_from_db()
    assert actor_for_user(doctor.user).roles == {policy.DOCTOR}


def test_only_the_system_administrator_marks_staff_as_left(community, actor_of, staff_of):
    doctor = staff_of(policy.DOCTOR)
    with pytest.raises(PermissionDenied):
        services.set_staff_active(actor=actor_of(policy.SECADMIN), staff=doctor, active=False)
    me = staff_of(policy.SYSADMIN)
    with pytest.raises(PermissionDenied):
        services.set_staff_active(actor=actor_for_user(me.user), staff=me, active=False)


def test_an_edit_with_a_refused_status_change_writes_nothing(community, actor_of):
    sysadmin = actor_of(policy.SYSADMIN)
    with pytest.raises(Conflict):
        services.update_organisation(actor=sysadmin, code="TS01", name="新名称", status="closed")
    township = Organisation.objects.get(code="TS01")
    assert (township.name, township.status) == ("留格庄镇卫生院", "active")
    assert not AuditEvent.objects.filter(action__startswith="community.organisation").exists()
