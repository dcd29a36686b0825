"""E-5 planner properties on random small instances (hypothesis): every proposed plan obeys E-3/E-4,
and it uses exactly the fewest visit days that a brute force over all choices finds."""

from __future__ import annotations

import itertools
from datetime import date, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.exams import rules

DAY = date(2026, 12, 1)
SPECS = [
    rules.ExamSpec(
        "US-ABD", "腹部超声", fasting=True, gi_contrast_sensitive=True, must_precede=frozenset({"ES-GAS"})
    ),
    rules.ExamSpec("GI-BA", "钡餐", fasting=True, breaks_fast=True, gi_contrast=True),
    rules.ExamSpec("ES-GAS", "胃镜", fasting=True, sedation=True, recovery_minutes=60),
    rules.ExamSpec("CT", "CT"),
    rules.ExamSpec("LAB-OGTT", "糖耐量", fasting=True, breaks_fast=True),
    rules.ExamSpec("ECG", "心电图"),
]
HOURS = [8, 9, 10, 11, 14, 15]
SITES = ["门诊楼", "医技楼"]

candidate = st.builds(
    lambda d, h, s: rules.Candidate(
        SITES.index(s) + 1,
        s,
        rules.local_datetime(DAY + timedelta(days=d), time(h)),
        rules.local_datetime(DAY + timedelta(days=d), time(h)) + timedelta(minutes=30),
    ),
    st.integers(0, 2),
    st.sampled_from(HOURS),
    st.sampled_from(SITES),
)
instance = st.lists(
    st.tuples(st.sampled_from(range(len(SPECS))), st.lists(candidate, min_size=1, max_size=4, unique=True)),
    min_size=1,
    max_size=3,
)


def _placed(items):
    return [rules.Placed(i.key, i.spec, i.candidate.start, i.candidate.end, i.candidate.site) for i in items]


def _brute_force_best(requests, fixed) -> tuple[int, int] | None:
    """(new trips, visit days) of the best plan over every combination of segments."""
    best = None
    fixed_days = {p.day for p in fixed}
    for combo in itertools.product(*(r.candidates for r in requests)):
        placed = [
            rules.Placed(r.key, r.spec, c.start, c.end, c.site) for r, c in zip(requests, combo, strict=True)
        ]
        if not rules.violations(placed + list(fixed)):
            days = {c.day for c in combo}
            score = (len(days - fixed_days), len(days))
            best = score if best is None else min(best, score)
    return best


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance, st.lists(candidate, max_size=1))
def test_planner_is_valid_and_uses_the_fewest_days(raw, existing):
    requests = [rules.Request(i + 1, SPECS[s], tuple(cands)) for i, (s, cands) in enumerate(raw)]
    fixed = [rules.Placed("old", SPECS[3], c.start, c.end, c.site) for c in existing]
    plan = rules.plan_visits(requests, fixed)
    assert rules.violations(_placed(plan.items) + fixed) == []
    best = _brute_force_best(requests, fixed)
    if best is None:
        assert not plan.optimal or plan.unplanned
    else:
        assert plan.optimal and not plan.unplanned
        days = {d.day for d in plan.days}
        assert (len(days - {p.day for p in fixed}), len(days)) == best
        assert {i.key for i in plan.items} == {r.key for r in requests}
