"""National and Simple/HEARTS indicators in SQL (selectors.indicators) against chronic.md §6/§8
and the pure reference (rules.national_indicators, rules.care_state, rules.outcome_last_3_months)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories as f
from tests.chronic.factories import make_follow_up, make_registry
from yilian.chronic import rules
from yilian.chronic.models import FollowUp, Registry
from yilian.chronic.selectors import indicators as ind
from yilian.chronic.services.rollup import rebuild_all, refresh_registry_year
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_trend():
    """The trend caches past months for an hour; every test starts from an empty cache."""
    from django.core.cache import cache

    cache.clear()


YEAR = ind.Period(date(2025, 1, 1), date(2025, 12, 31))


def _facts(period: ind.Period) -> list[rules.RegistryFacts]:
    """The reference inputs computed in Python from the stored rows (what the SQL must agree with)."""
    facts = []
    for r in Registry.objects.all():
        start = max(period.start, r.registered_on)
        visits = list(
            FollowUp.objects.filter(
                registry=r, mode__in=("clinic", "home"), visit_on__gte=start, visit_on__lte=period.end
            ).order_by("visit_on", "id")
        )
        bp = [v.bp_at_target for v in visits if v.bp_at_target is not None]
        fpg = [v.fpg_at_target for v in visits if v.fpg_at_target is not None]
        facts.append(
            rules.RegistryFacts(
                registered_on=r.registered_on,
                closed_on=r.closed_on,
                face_to_face_dates=frozenset(v.visit_on for v in visits),
                last_bp_at_target=bp[-1] if bp else None,
                last_fpg_at_target=fpg[-1] if fpg else None,
                disease=r.disease,
            )
        )
    return facts


def _sql(org, period) -> dict[str, tuple[int, int]]:
    got = ind.national_indicators(org, period, with_population=False).diseases
    return {
        "IND-1": (got["htn"]["normative"], got["htn"]["managed"]),
        "IND-2": (got["htn"]["controlled"], got["htn"]["managed"]),
        "IND-3": (got["t2dm"]["normative"], got["t2dm"]["managed"]),
        "IND-4": (got["t2dm"]["controlled"], got["t2dm"]["managed"]),
    }


def _reference(period) -> dict[str, tuple[int, int]]:
    ref = rules.national_indicators(_facts(period), period.start, period.end)
    return {k: (v.numerator, v.denominator) for k, v in ref.items()}


days = st.dates(min_value=date(2024, 6, 1), max_value=date(2026, 2, 28))
visit = st.tuples(days, st.sampled_from(["clinic", "home", "phone"]), st.sampled_from([None, True, False]))
registry_spec = st.tuples(
    st.sampled_from(["htn", "t2dm"]),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 1, 31)),
    st.one_of(st.none(), st.dates(min_value=date(2024, 6, 1), max_value=date(2026, 3, 1))),
    st.lists(visit, max_size=7),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(registry_spec, min_size=1, max_size=6),
    custom=st.tuples(
        st.dates(min_value=date(2024, 9, 1), max_value=date(2025, 8, 1)),
        st.integers(min_value=0, max_value=500),
    ),
)
def test_sql_indicators_agree_with_the_pure_reference(community, specs, custom):
    with transaction.atomic():
        for disease, registered_on, closed_on, visits in specs:
            closed = closed_on if closed_on and closed_on >= registered_on else None
            registry = make_registry(
                org=community.village, disease=disease, registered_on=registered_on, closed_on=closed
            )
            for day, mode, at_target in visits:
                if day < registered_on:
                    continue  # the services refuse visits before enrolment
                reading = {"bp_at_target": at_target} if disease == "htn" else {"fpg_at_target": at_target}
                if mode == "phone":
                    reading = {}
                make_follow_up(registry, visit_on=day, mode=mode, **reading)
        rebuild_all()
        assert _sql(community.county, YEAR) == _reference(YEAR)
        # the same through the per-registry refresh
        for r in Registry.objects.all():
            refresh_registry_year(registry=r, year=2025)
        assert _sql(community.county, YEAR) == _reference(YEAR)
        # any other period: computed from the follow-ups
        start, length = custom
        other = ind.Period(start, start + timedelta(days=length))
        assert other.year is None
        assert _sql(community.county, other) == _reference(other)
        # the drill-down lists (per-registry queryset) hold the same registries as the counts
        for period in (YEAR, other):
            figures = ind.national_indicators(community.county, period, with_population=False).diseases
            for disease in ("htn", "t2dm"):
                for figure in ("managed", "normative", "controlled"):
                    listed = ind.figure_queryset(
                        community.county, figure=figure, disease=disease, period=period
                    )
                    assert listed.count() == figures[disease][figure], (period, disease, figure)
        # the breakdown's rows add up to the whole
        rows = ind.breakdown(community.county, other)
        assert sum(r["diseases"]["htn"]["managed"] for r in rows) == _sql(community.county, other)["IND-1"][1]
        transaction.set_rollback(True)


def test_mid_year_enrolment_is_pro_rated_by_remaining_quarters(community):
    # enrolled in Q3 → required 2 (chronic.md §12.2)
    r = make_registry(org=community.village, registered_on=date(2025, 8, 20))
    make_follow_up(r, visit_on=date(2025, 8, 20), sbp=130, dbp=80)
    make_follow_up(r, visit_on=date(2025, 11, 3), sbp=130, dbp=80)
    # enrolled before the year with only 3 visits → not normative
    old = make_registry(org=community.village, registered_on=date(2023, 4, 1))
    for month in (2, 5, 8):
        make_follow_up(old, visit_on=date(2025, month, 10), sbp=150, dbp=95)
    rebuild_all(year=2025)
    htn = ind.national_indicators(community.county, YEAR).diseases["htn"]
    assert (htn["managed"], htn["normative"], htn["controlled"]) == (2, 1, 1)
    assert htn["normative_rate"] == rules.percent(1, 2)


def test_deaths_and_moves_before_the_period_end_leave_managed_after_it_stay(community):
    make_registry(
        org=community.village,
        registered_on=date(2024, 1, 1),
        closed_on=date(2025, 6, 1),
        close_reason="death",
    )
    make_registry(org=community.village, registered_on=date(2024, 1, 1), closed_on=date(2025, 12, 31))
    stays = make_registry(
        org=community.village,
        registered_on=date(2024, 1, 1),
        closed_on=date(2026, 1, 5),
        close_reason="death",
    )
    make_registry(org=community.village, registered_on=date(2026, 1, 2))  # registered after the period
    got = ind.national_indicators(community.county, YEAR).diseases["htn"]
    assert got["managed"] == 1
    rows = ind.figure_queryset(community.county, figure="managed", disease="htn", period=YEAR)
    assert list(rows.values_list("pk", flat=True)) == [stays.pk]


def test_lost_to_follow_up_counts_against_control(community):
    followed = make_registry(org=community.village, registered_on=date(2024, 1, 1))
    make_follow_up(followed, visit_on=date(2025, 3, 1), sbp=120, dbp=70)
    make_registry(org=community.village, registered_on=date(2024, 1, 1))  # 失访: no visit at all
    phone_only = make_registry(org=community.village, registered_on=date(2024, 1, 1))
    make_follow_up(phone_only, visit_on=date(2025, 3, 1), mode="phone", sbp=120, dbp=70, bp_at_target=True)
    rebuild_all(year=2025)
    got = ind.national_indicators(community.county, YEAR).diseases["htn"]
    assert (got["managed"], got["controlled"], got["control_rate"]) == (3, 1, rules.percent(1, 3))


def test_a_township_excludes_other_townships_and_breakdown_groups_children(community):
    here = make_registry(org=community.village, registered_on=date(2024, 1, 1))
    make_follow_up(here, visit_on=date(2025, 3, 1), sbp=120, dbp=70)
    make_registry(org=community.township, registered_on=date(2024, 1, 1))
    make_registry(org=community.other_village, registered_on=date(2024, 1, 1))
    make_registry(org=community.other_village, registered_on=date(2024, 1, 1), disease="t2dm")
    rebuild_all(year=2025)
    assert ind.national_indicators(community.township, YEAR).diseases["htn"]["managed"] == 2
    assert ind.national_indicators(community.county, YEAR).diseases["htn"]["managed"] == 3
    rows = {r["organisation"]["name"]: r for r in ind.breakdown(community.county, YEAR)}
    assert set(rows) == {community.township.name, community.other_township.name}
    assert rows[community.township.name]["diseases"]["htn"]["managed"] == 2
    assert rows[community.township.name]["diseases"]["htn"]["controlled"] == 1
    assert rows[community.other_township.name]["diseases"]["t2dm"]["managed"] == 1
    town = {r["organisation"]["name"]: r for r in ind.breakdown(community.township, YEAR)}
    assert town[community.township.name]["organisation"]["is_self"] is True  # its own 直管 registries
    assert town[community.village.name]["diseases"]["htn"]["managed"] == 1


def _actor_of(staff):
    from yilian.accounts.selectors import actor_for_user

    return actor_for_user(staff.user)


def test_report_org_is_scoped_by_chronic_report_paths(community, staff_of):
    doctor = _actor_of(staff_of("doctor", community.township))
    assert ind.report_org(doctor, None) == community.township
    assert ind.report_org(doctor, community.village.pk) == community.village
    for outside in (community.county.pk, community.other_village.pk, 999999, "x"):
        with pytest.raises(ind.NotFound):
            ind.report_org(doctor, outside)
    nurse = _actor_of(staff_of("nurse", community.township))  # chronic.manage only
    with pytest.raises(ind.NotFound):
        ind.report_org(nurse, None)


@pytest.mark.parametrize("figure", ["managed", "normative", "not_normative", "controlled", "not_controlled"])
def test_drill_down_lists_exactly_the_registries_of_the_figure(community, staff_of, figure):
    for k in range(7):
        r = make_registry(org=community.village, registered_on=date(2024, 1, 1), patient=None)
        for month in range(1, 1 + (k % 5) * 2, 2):
            make_follow_up(r, visit_on=date(2025, month, 5), sbp=120 + k * 5, dbp=70)
    rebuild_all(year=2025)
    actor = _actor_of(staff_of("doctor", community.county))
    figures = ind.national_indicators(community.county, YEAR).diseases["htn"]
    expected = {
        "managed": figures["managed"],
        "normative": figures["normative"],
        "not_normative": figures["managed"] - figures["normative"],
        "controlled": figures["controlled"],
        "not_controlled": figures["managed"] - figures["controlled"],
    }[figure]
    page = ind.drill_down(actor, community.county, figure=figure, disease="htn", period=YEAR, page_size=3)
    seen = [row for p in range(1, page["pages"] + 1) for row in ind.drill_down(
        actor, community.county, figure=figure, disease="htn", period=YEAR, page=p, page_size=3)["rows"]]  # fmt: skip
    assert page["total"] == expected == len({row["registry_id"] for row in seen})
    assert all("*" in row["name"] for row in seen)
    assert AuditEvent.objects.filter(action="chronic.indicator_list").count() >= 1


def test_period_validation():
    with pytest.raises(ind.InvalidPeriod):
        ind.period_from(start="2025-05-01", end="2025-04-30")
    with pytest.raises(ind.InvalidPeriod):
        ind.period_from(start="2020-01-01", end="2025-01-01")
    with pytest.raises(ind.InvalidPeriod):
        ind.period_from(start="2025-02-30", end="2025-03-01")
    with pytest.raises(ind.InvalidPeriod):
        ind.period_from(start="2025-02-01")
    with pytest.raises(ind.InvalidPeriod):
        ind.period_from(year="20x5")
    assert ind.period_from(start="2021-01-01", end="2025-12-31").year is None
    assert ind.period_from(year="2025").year == 2025
    assert ind.period_from(today=date(2026, 3, 1)).year == 2026


# ---------------------------------------------------------------- Simple / HEARTS (§8)


def _sim_reference(month: date) -> dict[str, int]:
    out = {"controlled": 0, "uncontrolled": 0, "visited_no_bp": 0, "missed_visit": 0, "den": 0, "ltfu": 0}
    m_end = (rules.add_months(month, 1)) - timedelta(days=1)
    for r in Registry.objects.filter(disease="htn"):
        if r.registered_on > m_end or (r.closed_on and r.closed_on <= m_end):
            continue
        visits = list(FollowUp.objects.filter(registry=r, visit_on__lte=m_end).order_by("visit_on", "id"))
        bps = [v for v in visits if v.sbp is not None]
        state = rules.care_state(
            dead=False, registered_on=r.registered_on, last_visit_on=visits[-1].visit_on if visits else None,
            month=month)  # fmt: skip
        if state == rules.LOST_TO_FOLLOW_UP:
            out["ltfu"] += 1
        if not rules.in_sim_denominator(state, r.registered_on, month):
            continue
        out["den"] += 1
        outcome = rules.outcome_last_3_months(
            last_visit_on=visits[-1].visit_on if visits else None,
            last_bp_on=bps[-1].visit_on if bps else None,
            sbp=bps[-1].sbp if bps else None,
            dbp=bps[-1].dbp if bps else None,
            month=month,
        )
        out[outcome] += 1
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(
        st.tuples(
            st.dates(min_value=date(2023, 6, 1), max_value=date(2025, 12, 31)),
            st.lists(
                st.tuples(days, st.sampled_from(["clinic", "phone"]), st.sampled_from([None, 120, 150])),
                max_size=5,
            ),
        ),
        min_size=1,
        max_size=6,
    ),
    month=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 2, 1)).map(lambda d: d.replace(day=1)),
)
def test_simple_monthly_shares_agree_with_the_reference(community, specs, month):
    with transaction.atomic():
        for registered_on, visits in specs:
            registry = make_registry(org=community.village, registered_on=registered_on)
            for day, mode, sbp in visits:
                if day >= registered_on:
                    make_follow_up(registry, visit_on=day, mode=mode, sbp=sbp, dbp=80 if sbp else None)
        got = ind.sim_month(community.county, month)
        ref = _sim_reference(month)
        assert (
            got["sim_controlled"],
            got["sim_uncontrolled"],
            got["sim_no_reading"],
            got["sim_missed"],
            got["sim_denominator"],
            got["sim_ltfu"],
        ) == (
            ref["controlled"],
            ref["uncontrolled"],
            ref["visited_no_bp"],
            ref["missed_visit"],
            ref["den"],
            ref["ltfu"],
        )
        # the drill-down lists (per-registry queryset) agree with the set-based counts
        for figure in ind.SIM_FIGURES:
            listed = ind.figure_queryset(community.county, figure=figure, disease="htn", month=month).count()
            assert listed == got[figure], figure
        transaction.set_rollback(True)


def test_sim_trend_has_twelve_months_oldest_first(community):
    registry = make_registry(org=community.village, registered_on=date(2024, 1, 1))
    make_follow_up(registry, visit_on=date(2025, 6, 10), sbp=130, dbp=80)
    trend = ind.sim_trend(community.county, date(2025, 12, 1))
    assert (trend[0]["month"], trend[-1]["month"], len(trend)) == ("2025-01", "2025-12", 12)
    by_month = {t["month"]: t for t in trend}
    assert by_month["2025-07"]["sim_controlled"] == 1
    assert by_month["2025-09"]["sim_missed"] == 1


def test_population_feeds_coverage(community):
    for k in range(8):
        f.make_patient(community.village, name="赵六", birth=date(1960, 1, 1 + k))
    f.make_patient(community.village, name="小明", birth=date(2015, 1, 1))  # a child: not an adult
    make_registry(org=community.village, registered_on=date(2024, 1, 1))
    got = ind.national_indicators(community.county, YEAR)
    assert got.population == 9  # 8 adults + the registry's own patient
    assert got.diseases["htn"]["expected_patients"] == 2  # 9 × 0.25 rounded
    assert got.diseases["htn"]["coverage_rate"] == rules.percent(1, 2)


def test_simple_shares_for_diabetes_use_the_latest_fpg(community):
    """SIM-9 in mmol/L: FBS <126 mg/dL = FPG <7.0; a visit without FPG is "visited, no reading"."""
    month = date(2025, 6, 1)
    ok = make_registry(org=community.village, disease="t2dm", registered_on=date(2024, 1, 1))
    make_follow_up(ok, visit_on=date(2025, 4, 2), fpg_mmol="8.1")
    make_follow_up(ok, visit_on=date(2025, 6, 2), fpg_mmol="6.9")  # the latest decides
    high = make_registry(org=community.village, disease="t2dm", registered_on=date(2024, 1, 1))
    make_follow_up(high, visit_on=date(2025, 5, 2), fpg_mmol="7.0")
    phone = make_registry(org=community.village, disease="t2dm", registered_on=date(2024, 1, 1))
    make_follow_up(phone, visit_on=date(2025, 5, 2), mode="phone")
    old = make_registry(org=community.village, disease="t2dm", registered_on=date(2024, 1, 1))
    make_follow_up(old, visit_on=date(2025, 1, 2), fpg_mmol="6.0")  # visited in 12 months, not in 3
    got = ind.sim_month(community.county, month, "t2dm")
    assert (
        got["sim_denominator"],
        got["sim_controlled"],
        got["sim_uncontrolled"],
        got["sim_no_reading"],
        got["sim_missed"],
    ) == (4, 1, 1, 1, 1)
    for figure in ("sim_controlled", "sim_uncontrolled", "sim_no_reading", "sim_missed"):
        assert ind.figure_queryset(community.county, figure=figure, disease="t2dm", month=month).count() == 1
    assert ind.sim_month(community.county, month, "htn")["sim_denominator"] == 0
