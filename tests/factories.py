"""Test factories (factory-boy) and a small medical community: county → township → village."""

from __future__ import annotations

import itertools
from datetime import date

import factory
from django.utils import timezone

from yilian.accounts.models import PatientAccount, User
from yilian.common import crypto, pinyin, resident_id
from yilian.community.models import Department, Organisation, RoleAssignment, Staff
from yilian.patients.models import FamilyLink, HealthCard, Patient

_seq = itertools.count(1)


def make_org(
    name: str, kind: str, parent: Organisation | None = None, code: str | None = None
) -> Organisation:
    """Create an organisation with its materialised path (what community.services does)."""
    n = next(_seq)
    path = (parent.path if parent else "") + f"{n:04d}."
    return Organisation.objects.create(
        code=code or f"ORG{n:05d}",
        name=name,
        kind=kind,
        parent=parent,
        path=path,
        depth=0 if parent is None else parent.depth + 1,
        province="山东省",
        city="烟台市",
        county="海阳县",
        township="" if parent is None else name[:4],
    )


def make_staff(
    role: str,
    org: Organisation,
    *,
    username: str | None = None,
    name: str = "王医生",
    password: str = "Yilian-test-2026",
    department: Department | None = None,
    title: str = Staff.Title.ATTENDING_PHYSICIAN,
) -> Staff:
    n = next(_seq)
    user = User.objects.create_user(
        username=username or f"{role}{n}", password=password, kind=User.Kind.STAFF
    )
    staff = Staff.objects.create(
        user=user,
        name=name,
        organisation=org,
        department=department,
        title=title,
        licence_number=f"1103{n:011d}",
        practice_start_date=date(2010, 7, 1),
    )
    RoleAssignment.objects.create(staff=staff, role=role, organisation=org)
    return staff


def valid_id(
    birth: date = date(1980, 5, 17), sex: str = "M", area: str = "370687", seq: int | None = None
) -> str:
    return resident_id.build(area, birth, seq if seq is not None else next(_seq), sex)


def make_patient(
    home_org: Organisation,
    *,
    name: str = "张三",
    birth: date = date(1980, 5, 17),
    sex: str = "M",
    id_number: str | None = None,
    phone: str = "",
    verified: bool = True,
) -> Patient:
    number = id_number or valid_id(birth, sex)
    return Patient.objects.create(
        name=name,
        name_initials=pinyin.initials(name),
        sex=sex,
        birth_date=birth,
        id_type=Patient.IdType.RESIDENT_ID,
        id_number=number,
        id_hash=crypto.blind_index("id", number),
        id_last4=number[-4:],
        id_head=number[:6],
        phone=phone,
        phone_hash=crypto.blind_index("phone", phone) if phone else "",
        phone_last4=phone[-4:] if phone else "",
        home_org=home_org,
        realname_verified=verified,
    )


def make_patient_account(phone: str = "13800138000") -> PatientAccount:
    n = next(_seq)
    user = User.objects.create_user(username=f"pa{n}", kind=User.Kind.PATIENT)
    user.set_unusable_password()
    user.save()
    return PatientAccount.objects.create(
        user=user, phone=phone, phone_hash=crypto.blind_index("phone", phone)
    )


def link(account: PatientAccount, patient: Patient, relationship: str = "self") -> FamilyLink:
    return FamilyLink.objects.create(
        account=account,
        patient=patient,
        relationship=relationship,
        consent_version="2026-01",
        consent_at=timezone.now(),
    )


def issue_card(patient: Patient) -> HealthCard:
    return HealthCard.objects.create(
        patient=patient, card_no=f"YL{next(_seq):012d}", issued_at=timezone.now()
    )


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    code = factory.Sequence(lambda n: f"D{n:03d}")
    name = factory.Sequence(lambda n: f"内科{n}")
