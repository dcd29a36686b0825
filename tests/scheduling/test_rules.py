"""The pure booking rules (access.md §0, §1, §8), without a database."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from yilian.scheduling import rules


def local(y, m, d, hh=0, mm=0) -> datetime:
    return rules.local_datetime(date(y, m, d), time(hh, mm))


def test_release_is_seven_days_ahead_at_seven():
    assert rules.release_at(date(2026, 12, 10)) == local(2026, 12, 3, 7)


def test_release_honours_a_department_window():
    params = rules.BookingParameters(booking_window_days=14, release_time=time(8, 30))
    assert rules.release_at(date(2026, 12, 10), params) == local(2026, 11, 26, 8, 30)


def test_close_is_thirty_minutes_before_session_end():
    assert rules.close_at(local(2026, 12, 10, 12)) == local(2026, 12, 10, 11, 30)


def test_cancel_deadline_is_five_pm_the_day_before():
    assert rules.cancel_deadline(date(2026, 12, 10)) == local(2026, 12, 9, 17)


def test_quota_windows_are_iso_week_month_and_quarter():
    assert rules.week_bounds(date(2026, 12, 3)) == (date(2026, 11, 30), date(2026, 12, 7))
    assert rules.week_bounds(date(2026, 12, 6)) == (date(2026, 11, 30), date(2026, 12, 7))  # Sunday
    assert rules.month_bounds(date(2026, 12, 3)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert rules.quarter_bounds(date(2026, 11, 3)) == (date(2026, 10, 1), date(2027, 1, 1))
    assert rules.quarter_bounds(date(2026, 2, 28)) == (date(2026, 1, 1), date(2026, 4, 1))
    assert rules.quota_window(date(2026, 10, 1)) == (date(2026, 9, 28), date(2027, 1, 1))


def test_week_cap_is_eight():
    day = date(2026, 12, 3)
    assert rules.quota_exceeded(day, [day] * 7) is None
    assert rules.quota_exceeded(day, [day] * 8) == "week"


def test_month_cap_counts_only_the_calendar_month():
    day = date(2026, 12, 31)
    spread = [date(2026, 12, d) for d in (1, 2, 8, 9, 10, 15, 16, 17, 22, 23, 24)]  # 11 in December
    assert rules.quota_exceeded(day, [*spread, date(2026, 11, 30)]) is None
    assert rules.quota_exceeded(day, [*spread, date(2026, 12, 14)]) == "month"


def test_quarter_cap_is_twenty_four():
    day = date(2026, 12, 28)
    octnov = [date(2026, 10, 5 + i) for i in range(12)] + [date(2026, 11, 2 + i) for i in range(12)]
    assert rules.quota_exceeded(day, octnov[:23]) is None
    assert rules.quota_exceeded(day, octnov) == "quarter"


def test_three_no_shows_in_ninety_days_suspend_for_ninety_days():
    dates = [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 29)]  # 90 days inclusive
    assert rules.no_show_suspension_until(dates) == date(2026, 11, 29) + timedelta(days=90)


def test_three_no_shows_over_more_than_ninety_days_do_not_suspend():
    dates = [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 30)]  # 91 days
    assert rules.no_show_suspension_until(dates) is None


def test_six_no_shows_within_a_year_escalate_to_one_eighty_days():
    dates = [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7), date(2026, 9, 1), date(2026, 9, 2)]
    assert rules.no_show_suspension_until(dates) == date(2026, 1, 7) + timedelta(days=90)
    sixth = date(2026, 9, 3)  # three within 90 days (90 days) and six within 365 days (180 days)
    assert rules.no_show_suspension_until([*dates, sixth]) == sixth + timedelta(days=180)
    # the same three in September without the January ones: 90 days only
    assert rules.no_show_suspension_until([*dates[3:], sixth]) == sixth + timedelta(days=90)


def test_suspension_end_is_exclusive_midnight():
    dates = [date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3)]
    end = local(2026, 12, 2)  # 3 September + 90 days
    assert rules.suspended_until(end - timedelta(seconds=1), dates, []) == end
    assert rules.suspended_until(end, dates, []) is None


def test_three_patient_cancellations_in_thirty_days_suspend_for_thirty_days():
    t = local(2026, 11, 1, 9)
    three = [t, t + timedelta(days=10), t + timedelta(days=30)]
    assert rules.cancellation_suspension_until(three) == three[-1] + timedelta(days=30)
    assert rules.cancellation_suspension_until([t, t + timedelta(days=10), t + timedelta(days=31)]) is None


def test_fee_class_follows_title():
    assert rules.fee_class_for_title("chief_physician") == rules.EXPERT
    assert rules.fee_class_for_title("assoc_chief_physician") == rules.EXPERT
    assert rules.fee_class_for_title("attending_physician") == rules.GENERAL
    assert rules.fee_class_for_title(None) == rules.GENERAL
    assert rules.fee_class_for_title("attending_physician", special=True) == rules.SPECIAL


def test_referral_reserve_is_thirty_percent_and_half_for_experts():
    assert rules.reserved_counts(10, rules.GENERAL) == (3, 0)
    assert rules.reserved_counts(11, rules.GENERAL) == (4, 0)  # at least 30%
    assert rules.reserved_counts(10, rules.EXPERT) == (5, 0)
    assert rules.reserved_counts(10, rules.GENERAL, rules.BookingParameters(onsite_reserved_ratio=0.2)) == (
        3,
        2,
    )


def test_reserved_numbers_are_spread_over_the_session():
    pools = rules.spread_pools(20, 6, 2)
    assert pools.count(rules.REFERRAL) == 6 and pools.count(rules.ONSITE) == 2
    assert rules.REFERRAL in pools[:10] and rules.REFERRAL in pools[10:]
    assert pools[0] == rules.PUBLIC


def test_reserved_referral_numbers_return_forty_eight_hours_before_start():
    start = local(2026, 12, 10, 8)
    assert rules.public_pools(start - timedelta(hours=48, seconds=1), start) == (rules.PUBLIC,)
    assert rules.public_pools(start - timedelta(hours=48), start) == (rules.PUBLIC, rules.REFERRAL)


def test_rerelease_delay_is_between_five_and_thirty_minutes():
    import random

    rng = random.Random(7)
    delays = [rules.rerelease_delay(rng=rng) for _ in range(200)]
    assert min(delays) >= timedelta(minutes=5)
    assert max(delays) <= timedelta(minutes=30)
    assert len(set(delays)) > 50


def test_fhir_mappings():
    now = local(2026, 12, 1, 8)
    assert rules.fhir_appointment_status(rules.HELD) == "pending"
    assert rules.fhir_appointment_status(rules.NO_SHOW) == "noshow"
    assert rules.fhir_appointment_status(rules.ENTERED_IN_ERROR) == "entered-in-error"
    assert rules.fhir_slot_status(rules.SLOT_FREE, None, now) == "free"
    assert rules.fhir_slot_status(rules.SLOT_FREE, now + timedelta(minutes=1), now) == "busy-unavailable"
    assert rules.fhir_slot_status(rules.SLOT_HELD, None, now) == "busy-tentative"
    assert rules.fhir_slot_status(rules.SLOT_BOOKED, None, now) == "busy"
    assert rules.fhir_slot_status(rules.SLOT_UNAVAILABLE, None, now) == "busy-unavailable"
    assert rules.fhir_schedule_active("open") and not rules.fhir_schedule_active("stopped")
    assert rules.fhir_slot_tags(rules.REFERRAL) == ["reserved-for=referral"]


def test_transitions_follow_the_project_graph():
    assert rules.can_transition(rules.BOOKED, rules.CANCELLED)
    assert rules.can_transition(rules.NO_SHOW, rules.ENTERED_IN_ERROR)
    assert not rules.can_transition(rules.CANCELLED, rules.BOOKED)
    assert not rules.can_transition(rules.FULFILLED, rules.NO_SHOW)
    assert not rules.can_transition(rules.HELD, rules.ARRIVED)
    assert set(rules.TRANSITIONS) == set(rules.APPOINTMENT_STATUSES)


def test_age_counts_the_birthday():
    assert rules.age_on(date(2012, 12, 3), date(2026, 12, 3)) == 14
    assert rules.age_on(date(2012, 12, 4), date(2026, 12, 3)) == 13
