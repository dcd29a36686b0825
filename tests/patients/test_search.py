"""The search desk: ID/phone by blind index, pinyin initials, name prefix; scoped, masked, audited."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories as f
from tests.patients.factories import actor_of
from yilian.common.models import AuditEvent
from yilian.patients import selectors, services


@pytest.fixture
def doctor(staff_of):
    return actor_of(staff_of("doctor"))


def _names(actor, q) -> list[str]:
    return [r.name for r in selectors.search_patients(actor, q).rows]


def test_pinyin_initials_find_chinese_names(doctor, community):
    for name in ("张三", "张三丰", "王五", "李四"):
        f.make_patient(community.village, name=name)
    assert _names(doctor, "zs") == ["张三", "张三丰"]
    assert _names(doctor, "ZSF") == ["张三丰"]
    assert _names(doctor, "ls") == ["李四"]


def test_name_prefix_search(doctor, community):
    for name in ("张三", "张三丰", "章四", "李张"):
        f.make_patient(community.village, name=name)
    assert _names(doctor, "张") == ["张三", "张三丰"]
    assert _names(doctor, "张三丰") == ["张三丰"]


def test_resident_id_search_is_exact_and_case_insensitive(doctor, community):
    number = f.valid_id(date(1970, 1, 1), "M")
    f.make_patient(community.village, name="张三", id_number=number)
    f.make_patient(community.village, name="张四")
    assert _names(doctor, number) == ["张三"]
    assert _names(doctor, number.lower()) == ["张三"]
    assert _names(doctor, number[:-1]) == []


def test_passport_search(doctor, community):
    services.register_patient(
        actor=doctor,
        name="John Smith",
        id_type="passport",
        id_number="E12345678",
        sex="M",
        birth_date=date(1980, 1, 1),
    )
    assert _names(doctor, "e12345678") == ["John Smith"]
    assert _names(doctor, "john") == ["John Smith"]


def test_mobile_search(doctor, community):
    f.make_patient(community.village, name="张三", phone="13912345678")
    f.make_patient(community.village, name="张四", phone="13912345679")
    assert _names(doctor, "13912345678") == ["张三"]
    assert _names(doctor, "139 1234 5678") == ["张三"]


def test_search_is_scoped(staff_of, community):
    f.make_patient(community.village, name="张三")
    f.make_patient(community.other_village, name="张四")
    village_doctor = actor_of(staff_of("village_doctor", community.village))
    assert _names(village_doctor, "zs") == ["张三"]


def test_merged_records_are_not_listed(doctor, community):
    keep = f.make_patient(community.village, name="张三")
    drop = f.make_patient(community.village, name="张三")
    coordinator = actor_of(f.make_staff("coordinator", community.county))
    services.merge_patients(actor=coordinator, survivor_id=keep.pk, duplicate_id=drop.pk, reason="重复建档")
    assert [r.id for r in selectors.search_patients(doctor, "zs").rows] == [keep.pk]


def test_list_rows_are_masked(doctor, community):
    number = f.valid_id()
    f.make_patient(community.village, name="张三", id_number=number, phone="13912345678")
    row = selectors.search_patients(doctor, "zs").rows[0]
    assert row.id_masked == number[:6] + "********" + number[-4:]
    assert row.phone_masked == "*******5678"


def test_search_audit_records_the_kind_never_the_query(doctor, community):
    number = f.valid_id()
    f.make_patient(community.village, name="张三", id_number=number)
    selectors.search_patients(doctor, number)
    event = AuditEvent.objects.get(action="patient.search")
    assert event.detail == {"kind": "id", "count": 1}
    assert number not in str(event.detail) + event.reason + event.object_id


def test_unsupported_query_returns_nothing(doctor, community):
    f.make_patient(community.village, name="张三")
    result = selectors.search_patients(doctor, "%")
    assert (result.kind, result.rows) == ("unsupported", [])


def test_like_wildcards_are_literal(doctor, community):
    f.make_patient(community.village, name="张三")
    assert _names(doctor, "张%") == []


def test_an_old_15_digit_id_finds_the_patient(doctor, community):
    number = f.valid_id(date(1965, 4, 30), "M")
    f.make_patient(community.village, name="张三", id_number=number)
    assert _names(doctor, number[:6] + number[8:17]) == ["张三"]
