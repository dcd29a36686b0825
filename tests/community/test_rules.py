"""community.rules: hierarchy, codes, division codes, paths (pure)."""

from __future__ import annotations

import pytest

from yilian.community import rules


@pytest.mark.parametrize(
    ("kind", "parent_kind", "allowed"),
    [
        ("county_hospital", None, True),
        ("county_hospital", "county_hospital", False),
        ("township_centre", "county_hospital", True),
        ("community_centre", "county_hospital", True),
        ("township_centre", None, False),
        ("township_centre", "township_centre", False),
        ("village_clinic", "township_centre", True),
        ("village_clinic", "county_hospital", False),
        ("village_clinic", "community_centre", False),
        ("village_clinic", None, False),
        ("community_centre", "township_centre", False),
        ("hospice", "county_hospital", False),
    ],
)
def test_hierarchy_places_each_kind_under_its_parent_kind(kind, parent_kind, allowed):
    assert rules.parent_allowed(kind, parent_kind) is allowed


def test_allowed_child_kinds_follow_the_hierarchy():
    assert rules.allowed_child_kinds(None) == ["county_hospital"]
    assert rules.allowed_child_kinds("county_hospital") == ["township_centre", "community_centre"]
    assert rules.allowed_child_kinds("township_centre") == ["village_clinic"]
    assert rules.allowed_child_kinds("village_clinic") == []


@pytest.mark.parametrize("code", ["TS01", "VC-0101", "AB", "A" * 32, "370687-01"])
def test_valid_codes(code):
    assert rules.code_is_valid(code)


@pytest.mark.parametrize("code", ["", "A", "A" * 33, "ts01", "TS 01", "TS_01", "卫生院", "TS01\n"])
def test_invalid_codes(code):
    assert not rules.code_is_valid(code)


def test_codes_are_normalised_to_upper_case_without_blanks():
    assert rules.normalise_code("  ts-01 ") == "TS-01"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("370687100000", None),
        ("370687100201", None),
        ("370000000000", None),
        ("37068710020", "shape"),
        ("3706871002011", "shape"),
        ("37068710020A", "shape"),
        ("990687100201", "province"),
        ("370087100201", "levels"),
        ("370600000201", "levels"),
    ],
)
def test_division_code_shape_province_and_levels(code, problem):
    assert rules.division_code_problem(code) == problem


def test_child_paths_count_up_from_the_last_child():
    assert rules.child_path("0001.", None) == "0001.0001."
    assert rules.child_path("0001.", "0001.0009.") == "0001.0010."
    assert rules.child_path("", "0003.") == "0004."
    assert rules.depth_of("0001.") == 0
    assert rules.depth_of("0001.0002.0003.") == 2


def test_a_full_level_is_refused():
    with pytest.raises(ValueError):
        rules.child_path("0001.", "0001.9999.")


@pytest.mark.parametrize(
    "phone", ["0535-3312345", "13800138000", "(0535) 331 2345", "+86-535-3312345", "120"]
)
def test_plausible_phones(phone):
    assert rules.phone_is_valid(phone)


@pytest.mark.parametrize("phone", ["", "12", "电话", "0535-331234x", "1" * 21])
def test_implausible_phones(phone):
    assert not rules.phone_is_valid(phone)
