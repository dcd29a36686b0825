"""The pure rules of the exam centre: access.md E-3, E-4 (constraint checker), E-5 (planner), PE-1."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from yilian.exams import rules

DAY = date(2026, 12, 1)
US_ABD = rules.ExamSpec("US-ABD", "腹部超声", fasting=True, gi_contrast_sensitive=True)
BARIUM = rules.ExamSpec("GI-BA", "钡餐", fasting=True, breaks_fast=True, gi_contrast=True)
OGTT = rules.ExamSpec("LAB-OGTT", "糖耐量", fasting=True, breaks_fast=True)
FBG = rules.ExamSpec("LAB-FBG", "空腹血糖", fasting=True)
GASTRO = rules.ExamSpec("ES-GAS", "胃镜", fasting=True, sedation=True, recovery_minutes=60)
CT = rules.ExamSpec("CT-HEAD", "头颅CT")
CT_C1 = rules.ExamSpec("CT-ABD-C", "腹部增强CT", iodinated_contrast=True)
CT_C2 = rules.ExamSpec("CT-CHEST-C", "胸部增强CT", iodinated_contrast=True)
ECG = rules.ExamSpec("ECG", "心电图")


def at(h: int, m: int = 0, day: date = DAY) -> datetime:
    return rules.local_datetime(day, time(h, m))


def placed(key, spec, h, m=0, minutes=30, site="门诊楼", day=DAY) -> rules.Placed:
    start = at(h, m, day)
    return rules.Placed(key, spec, start, start + timedelta(minutes=minutes), site)


def codes(found):
    return sorted(v.code for v in found)


def test_fasting_exam_only_in_the_morning():
    assert codes(rules.violations([placed(1, US_ABD, 9)])) == []
    assert codes(rules.violations([placed(1, US_ABD, 14)])) == ["fasting_pm"]
    # A segment running past noon is not a morning segment.
    assert codes(rules.violations([placed(1, US_ABD, 11, 45)])) == ["fasting_pm"]


def test_nothing_that_breaks_the_fast_before_a_fasting_exam_the_same_day():
    assert codes(rules.violations([placed(1, OGTT, 8), placed(2, FBG, 11)])) == ["fast_broken"]
    # After the fasting exam it is fine, and on another day too.
    assert codes(rules.violations([placed(1, FBG, 8), placed(2, OGTT, 9)])) == []
    other_day = DAY + timedelta(days=1)
    assert codes(rules.violations([placed(1, OGTT, 8), placed(2, FBG, 9, day=other_day)])) == []


def test_no_barium_before_abdominal_ultrasound_the_same_day():
    found = rules.violations([placed(1, BARIUM, 8), placed(2, US_ABD, 10)])
    assert "gi_contrast" in codes(found)
    assert codes(rules.violations([placed(1, US_ABD, 8), placed(2, BARIUM, 9)])) == []


def test_no_overlap_and_a_gap_between_sites():
    assert codes(rules.violations([placed(1, CT, 9), placed(2, ECG, 9, 15)])) == ["overlap"]
    # Back to back in the same building is fine; across buildings it needs 30 minutes.
    assert codes(rules.violations([placed(1, CT, 9), placed(2, ECG, 9, 30)])) == []
    assert codes(rules.violations([placed(1, CT, 9, site="医技楼"), placed(2, ECG, 9, 30)])) == ["site_gap"]
    assert codes(rules.violations([placed(1, CT, 9, site="医技楼"), placed(2, ECG, 10)])) == []
    params = rules.ExamParameters(site_gap_minutes=60)
    assert codes(rules.violations([placed(1, CT, 9, site="医技楼"), placed(2, ECG, 10)], params)) == [
        "site_gap"
    ]


def test_ordering_sedation_recovery_and_one_contrast_per_day():
    us_first = rules.ExamSpec("US-ABD", "腹部超声", must_precede=frozenset({"ES-GAS"}))
    assert "order" in codes(rules.violations([placed(1, GASTRO, 8), placed(2, us_first, 10)]))
    assert codes(rules.violations([placed(1, us_first, 8), placed(2, GASTRO, 9)])) == []
    assert codes(rules.violations([placed(1, GASTRO, 8), placed(2, ECG, 8, 30)])) == ["recovery"]
    assert codes(rules.violations([placed(1, CT_C1, 8), placed(2, CT_C2, 10)])) == ["contrast_twice"]


def cand(h, m=0, day=DAY, resource=1, site="门诊楼", minutes=30):
    start = at(h, m, day)
    return rules.Candidate(resource, site, start, start + timedelta(minutes=minutes))


def test_planner_finds_one_day_where_greedy_needs_two():
    """Greedy (orders in turn, earliest segment) puts the gastroscopy at 08:00, leaving the
    ultrasound (which must precede it) no morning segment that day; the planner finds 1 day."""
    day2 = DAY + timedelta(days=1)
    us = rules.ExamSpec("US-ABD", "腹部超声", fasting=True, must_precede=frozenset({"ES-GAS"}))
    gastro = rules.Request(
        1, GASTRO, (cand(8, resource=2), cand(9, resource=2), cand(8, day=day2, resource=2))
    )
    ultrasound = rules.Request(2, us, (cand(8, resource=3), cand(8, day=day2, resource=3)))
    greedy = rules._greedy([gastro, ultrasound], {}, rules.DEFAULTS, ())
    assert len(greedy.days) == 2  # the trap is real
    plan = rules.plan_visits([gastro, ultrasound])
    assert plan.optimal and len(plan.days) == 1
    assert [(i.key, i.candidate.start) for i in plan.items] == [(2, at(8)), (1, at(9))]
    assert not rules.violations(
        rules.Placed(i.key, i.spec, i.candidate.start, i.candidate.end, i.candidate.site) for i in plan.items
    )


def test_planner_splits_days_only_when_needed_and_respects_existing_appointments():
    day2 = DAY + timedelta(days=1)
    # Barium and abdominal ultrasound can share a day only ultrasound first; here the ultrasound
    # has only a 10:00 segment on day 1 after the only barium segment: two days are needed.
    barium = rules.Request(1, BARIUM, (cand(8, resource=5, site="医技楼"),))
    us = rules.Request(2, US_ABD, (cand(10, resource=3), cand(9, day=day2, resource=3)))
    plan = rules.plan_visits([barium, us])
    assert [d.day for d in plan.days] == [DAY, day2]
    # An existing CT at 08:00 day 2 in another building pushes a day-2-only ECG past the gap.
    ecg = rules.Request(3, ECG, (cand(8, 30, day=day2), cand(9, day=day2)))
    fixed = [placed("ct", CT, 8, day=day2, site="医技楼")]
    plan = rules.plan_visits([ecg], fixed)
    assert plan.items[0].candidate.start == at(9, day=day2)
    # No segment at all → unplanned, the rest still planned.
    plan = rules.plan_visits([ecg, rules.Request(4, CT, ())])
    assert plan.unplanned == (4,) and len(plan.items) == 1


def test_planner_is_deterministic_and_prefers_earliest_days():
    day2, day3 = DAY + timedelta(days=1), DAY + timedelta(days=2)
    reqs = [
        rules.Request(1, CT, (cand(9, day=day3), cand(9, day=day2))),
        rules.Request(2, ECG, (cand(10, day=day2), cand(10, day=day3))),
    ]
    first = rules.plan_visits(reqs)
    assert [d.day for d in first.days] == [day2]
    assert first == rules.plan_visits(list(reversed(reqs)))


def test_preparation_text_per_day_in_plain_chinese():
    lines = rules.preparation_for_day([US_ABD, BARIUM, GASTRO])
    text = "\n".join(lines)
    assert "禁食" in text and "钡餐" in text and "腹部超声" in text and "家属陪同" in text
    assert "禁食" not in "\n".join(rules.preparation_for_day([CT]))


def test_package_eligibility_by_sex_and_age():
    items = [rules.PackageItemSpec("妇科检查", sex="F", min_age=18), rules.PackageItemSpec("血常规")]
    assert rules.ineligible_items(items, sex="M", birth=date(1980, 1, 1), day=DAY) == [("妇科检查", "sex")]
    assert rules.ineligible_items(items, sex="F", birth=date(2010, 1, 1), day=DAY) == [
        ("妇科检查", "too_young")
    ]
    assert rules.ineligible_items(items, sex="F", birth=date(1980, 1, 1), day=DAY) == []


def test_planner_joins_a_day_the_patient_already_visits():
    """A day with an existing appointment costs no extra trip, even if an earlier day is free."""
    day2 = DAY + timedelta(days=1)
    ecg = rules.Request(1, ECG, (cand(9), cand(10, day=day2)))
    plan = rules.plan_visits([ecg], [placed("ct", CT, 8, day=day2)])
    assert [d.day for d in plan.days] == [day2]
    assert rules.plan_visits([ecg]).days[0].day == DAY
