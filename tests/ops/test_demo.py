"""``yilian demo``: a realistic, repeatable demo county (ops/demo)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests import factories as f
from yilian.accounts.models import PatientAccount, User
from yilian.common import crypto, pinyin, policy, resident_id
from yilian.community.models import Department, Organisation, RoleAssignment, Staff
from yilian.ops.demo import county as county_mod
from yilian.ops.demo.build import AS_OF
from yilian.patients import family
from yilian.patients.models import FamilyLink, HealthCard, Patient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    # The fixed demo sign-ins get real password hashes; Argon2 is needlessly slow for tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def demo(**options):
    options = {"patients": 60, "seed": 7, "villages": 20, "verbosity": 0, **options}
    call_command("demo", **options)


def snapshot() -> dict:
    return {
        "orgs": list(
            Organisation.objects.order_by("path").values_list("code", "name", "path", "division_code")
        ),
        "staff": sorted(Staff.objects.values_list("name", "title", "licence_number", "organisation__code")),
        "patients": sorted(
            (p.name, p.sex, p.birth_date, p.id_number, p.phone, p.home_org.code, p.address_detail)
            for p in Patient.objects.select_related("home_org")
        ),
        "cards": sorted(HealthCard.objects.values_list("card_no", flat=True)),
        "links": sorted(
            FamilyLink.objects.values_list("patient__name", "relationship", "account__user__username")
        ),
    }


def test_default_county_has_one_hospital_15_townships_and_400_villages():
    county = county_mod.build_organisations(random.Random(1), villages=400)
    assert Organisation.objects.filter(kind="county_hospital", parent=None).count() == 1
    assert Organisation.objects.filter(kind="township_centre", parent=county.hospital).count() == 15
    villages = Organisation.objects.filter(kind="village_clinic")
    assert villages.count() == 400
    assert len({v.village for v in villages}) == 400, "village names are distinct"
    for v in villages.select_related("parent"):
        assert v.parent.kind == "township_centre"
        assert v.path.startswith(v.parent.path) and v.depth == 2
        assert len(v.division_code) == 12 and v.division_code.startswith(v.parent.division_code[:9])
        assert v.name == f"{v.village}卫生室" and v.village.endswith("村")
    names = set(Department.objects.filter(organisation=county.hospital).values_list("name", flat=True))
    assert len(names) >= 20
    assert {"心血管内科", "呼吸与危重症医学科", "儿科", "急诊科", "药剂科", "超声医学科"} <= names


def test_demo_has_every_staff_role_at_the_right_organisation():
    demo()
    held = Counter(RoleAssignment.objects.values_list("role", flat=True))
    assert set(policy.STAFF_ROLES) <= set(held)
    for role in (policy.SYSADMIN, policy.SECADMIN, policy.AUDITOR):
        assert held[role] == 1
    admins = RoleAssignment.objects.filter(role__in=policy.EXCLUSIVE_ROLES)
    assert admins.values("staff").distinct().count() == 3, "三员分立: three different people"
    for ra in RoleAssignment.objects.select_related("staff", "organisation"):
        assert ra.organisation_id == ra.staff.organisation_id
        if ra.role == policy.VILLAGE_DOCTOR:
            assert ra.organisation.kind == "village_clinic"
        if ra.staff.title != Staff.Title.NONE:
            assert ra.staff.licence_number and ra.staff.practice_start_date < AS_OF
    kinds = {
        ra.organisation.kind
        for ra in RoleAssignment.objects.filter(role=policy.DOCTOR).select_related("organisation")
    }
    assert kinds == {"county_hospital", "township_centre"}


def test_fixed_demo_logins_sign_in_with_the_demo_password():
    demo(password="Demo-pass-12345")
    for login in county_mod.DEMO_LOGINS:
        user = User.objects.get(username=login.username)
        assert user.check_password("Demo-pass-12345"), login.username
        assert user.staff.roles.filter(role=login.role).exists()
    assert User.objects.get(username="village").staff.organisation.kind == "village_clinic"
    assert User.objects.get(username="township").staff.organisation.kind == "township_centre"
    other = Staff.objects.exclude(user__username__in=[x.username for x in county_mod.DEMO_LOGINS]).first()
    assert not other.user.has_usable_password()


def test_demo_patients_have_valid_resident_ids_matching_sex_and_birth():
    demo()
    patients = list(Patient.objects.select_related("home_org"))
    assert len(patients) == 60
    for p in patients:
        parsed = resident_id.parse(p.id_number)
        assert (parsed.sex, parsed.birth_date) == (p.sex, p.birth_date)
        assert p.home_org.kind == "village_clinic" and p.village == p.home_org.village
        assert p.address.startswith("山东省烟台市海阳县")
    assert len({p.id_number for p in patients}) == 60


def test_demo_identifiers_are_encrypted_at_rest_with_the_same_indexes_as_registration():
    demo()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, id_number, phone FROM patients_patient")
        raw = {row[0]: row[1:] for row in cursor.fetchall()}
    for p in Patient.objects.all():
        stored_id, stored_phone = raw[p.pk]
        assert p.id_number not in stored_id and crypto.decrypt(stored_id) == p.id_number
        assert p.id_hash == crypto.blind_index("id", p.id_number)
        assert (p.id_last4, p.id_head) == (p.id_number[-4:], p.id_number[:6])
        assert p.name_initials == pinyin.initials(p.name)
        if p.phone:
            assert p.phone not in stored_phone
            assert p.phone_hash == crypto.blind_index("phone", p.phone) and p.phone_last4 == p.phone[-4:]
        else:
            assert p.phone_hash == "" and p.phone_last4 == ""


def test_every_demo_patient_has_one_active_card_and_belongs_to_a_household_account():
    demo()
    assert HealthCard.objects.filter(status="active").count() == Patient.objects.count()
    assert not Patient.objects.exclude(cards__status="active").exists()
    assert FamilyLink.objects.values("patient").distinct().count() == Patient.objects.count()
    assert FamilyLink.objects.filter(relationship="self").count() == PatientAccount.objects.count()
    per_account = Counter(FamilyLink.objects.values_list("account_id", flat=True))
    assert max(per_account.values()) <= family.FAMILY_BIND_MAX, "B-16: an account binds at most 5 patients"
    relationships = set(FamilyLink.objects.values_list("relationship", flat=True))
    assert {"self", "spouse", "child"} <= relationships
    for card in HealthCard.objects.select_related("patient"):
        assert card.card_no.startswith("YL") and len(card.card_no) == 18
        # Timestamps are stored the ORM's way: readable, aware, in the same instant for one build.
        assert card.issued_at.tzinfo is not None
        assert abs((card.patient.created_at - card.issued_at).total_seconds()) < 60


def test_demo_patient_phone_manages_a_family_of_three_in_the_village_doctors_village():
    demo()
    account = PatientAccount.objects.get(
        phone_hash=crypto.blind_index("phone", county_mod.DEMO_PATIENT_PHONE)
    )
    links = FamilyLink.objects.filter(account=account).select_related("patient")
    assert sorted(link.relationship for link in links) == ["child", "self", "spouse"]
    village = User.objects.get(username="village").staff.organisation
    assert {link.patient.home_org_id for link in links} == {village.pk}
    assert [link.is_guardian for link in links if link.relationship == "child"] == [True]


def test_same_seed_builds_the_same_county_and_patients():
    demo()
    first = snapshot()
    demo(force=True)
    assert snapshot() == first
    demo(force=True, seed=8)
    assert snapshot()["patients"] != first["patients"]


def test_non_empty_database_is_refused_without_force(community):
    with pytest.raises(CommandError, match="--force"):
        demo()
    assert Patient.objects.count() == 0
    demo(force=True)
    assert not Organisation.objects.filter(code=community.county.code).exists()
    assert Patient.objects.count() == 60


def test_force_keeps_reference_data_seeded_by_migrations():
    from yilian.notifications.models import MessageTemplate

    templates = sorted(MessageTemplate.objects.values_list("pk", flat=True))
    assert templates, "the migrations seed default message templates"
    demo()
    demo(force=True)
    assert sorted(MessageTemplate.objects.values_list("pk", flat=True)) == templates


def test_force_refuses_when_the_audit_log_names_users(community, staff_of):
    from yilian.accounts.selectors import actor_for_user
    from yilian.common import audit

    doctor = staff_of(policy.DOCTOR)
    audit.record(actor_for_user(doctor.user), "test.event")
    with pytest.raises(CommandError, match="audit log"):
        demo(force=True)
    assert Organisation.objects.filter(pk=community.county.pk).exists()


def test_zero_patients_builds_only_the_county():
    demo(patients=0)
    assert Patient.objects.count() == 0
    assert Organisation.objects.filter(kind="village_clinic").count() == 20
    f.make_patient(Organisation.objects.filter(kind="village_clinic").first())


def test_demo_fills_the_exam_centre_calendar_with_planned_bookings():
    from yilian.exams.models import ExamAppointment, ExamOrder, ExamResource

    demo()
    assert ExamResource.objects.exists()
    assert ExamOrder.objects.filter(ordered_by_label="system:demo").exists()
    assert ExamAppointment.objects.exists()
