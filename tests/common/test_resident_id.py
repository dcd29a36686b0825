"""GB 11643-1999 resident ID numbers: checksum, birth date, sex."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.common import resident_id

VALID = "11010519491231002X"  # the standard's own worked example


def test_standard_example_is_valid_and_decoded():
    parsed = resident_id.parse(VALID)
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.sex == "F"
    assert parsed.area_code == "110105"


def test_lowercase_x_and_spaces_are_normalised():
    assert resident_id.parse(" 11010519491231002x ").number == VALID


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("110105194912310021", "checksum"),
        ("11010519491231002", "format"),
        ("1101051949123100X2", "format"),
        ("110105198002300012", "birth_date"),  # 30 February
        ("110105189912310012", "birth_date"),  # before 1900
        ("990105194912310012", "area"),
    ],
)
def test_invalid_numbers_name_the_reason(raw, reason):
    with pytest.raises(resident_id.ResidentIdError) as caught:
        resident_id.parse(raw)
    assert caught.value.reason == reason


def test_future_birth_date_is_refused():
    number = resident_id.build("370687", date(2030, 1, 1), 3, "M")
    with pytest.raises(resident_id.ResidentIdError) as caught:
        resident_id.parse(number, today=date(2026, 11, 22))
    assert caught.value.reason == "birth_date"


@given(
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
    seq=st.integers(min_value=0, max_value=10_000),
    sex=st.sampled_from(["M", "F"]),
)
def test_built_numbers_round_trip(birth, seq, sex):
    number = resident_id.build("370687", birth, seq, sex)
    parsed = resident_id.parse(number, today=date(2026, 11, 22))
    assert (parsed.birth_date, parsed.sex) == (birth, sex)


@given(st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_breaks_the_checksum_or_the_date(position, delta):
    number = list(VALID)
    number[position] = str((int(number[position]) + delta) % 10)
    with pytest.raises(resident_id.ResidentIdError):
        resident_id.parse("".join(number))
