"""Pure sign-in rules: mainland mobile numbers, code shape, sliding windows, key shape."""

from datetime import UTC, datetime, timedelta

import pytest

from yilian.accounts import rules

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13800138000", "13800138000"),
        (" 138 0013 8000 ", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 13800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
    ],
)
def test_phone_is_normalised_the_way_people_type_it(raw, expected):
    assert rules.normalise_phone(raw) == expected


@pytest.mark.parametrize("phone", ["13800138000", "19912345678", "15000000000"])
def test_mainland_mobile_numbers_are_accepted(phone):
    assert rules.is_mainland_mobile(phone)


@pytest.mark.parametrize(
    "phone", ["12800138000", "10800138000", "1380013800", "138001380001", "0535-1234567", "1380013800a", ""]
)
def test_other_numbers_are_not_mainland_mobiles(phone):
    assert not rules.is_mainland_mobile(phone)


def test_code_shape_is_six_digits():
    assert rules.is_code_shaped("012345")
    assert not rules.is_code_shaped("12345")
    assert not rules.is_code_shaped("1234567")
    assert not rules.is_code_shaped("12345a")


def test_window_has_room_below_the_limit():
    times = [NOW - timedelta(minutes=m) for m in (1, 2)]
    assert rules.window_retry_after(times, limit=3, window=HOUR, now=NOW) is None


def test_window_full_waits_until_the_oldest_leaves():
    times = [NOW - timedelta(minutes=m) for m in (50, 10, 5)]
    assert rules.window_retry_after(times, limit=3, window=HOUR, now=NOW) == 10 * 60


def test_events_older_than_the_window_do_not_count():
    times = [NOW - timedelta(minutes=m) for m in (61, 70, 5)]
    assert rules.window_retry_after(times, limit=3, window=HOUR, now=NOW) is None


def test_interval_waits_the_rest_of_the_interval():
    last = NOW - timedelta(seconds=45)
    assert rules.interval_retry_after(last, interval=timedelta(seconds=60), now=NOW) == 15
    assert rules.interval_retry_after(last, interval=timedelta(seconds=45), now=NOW) is None
    assert rules.interval_retry_after(None, interval=timedelta(seconds=60), now=NOW) is None


def test_api_key_shape():
    assert rules.is_api_key_shaped("yl_0123abcd_" + "a" * 48)
    assert not rules.is_api_key_shaped("yl_0123abcd_" + "a" * 47)
    assert not rules.is_api_key_shaped("xx_0123abcd_" + "a" * 48)
