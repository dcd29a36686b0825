"""The per-registry year roll-up (RegistryYear): chronic.md §6 FF(r), R2.2, R2.3, R4.1/R4.2 last reading."""

from __future__ import annotations

from datetime import date

import pytest

from tests.chronic.factories import make_follow_up, make_referral, make_registry
from yilian.chronic.models import RegistryYear
from yilian.chronic.services.rollup import rebuild_all, refresh_registry_year

pytestmark = pytest.mark.django_db


def _both(registry, year):
    """The row from the per-registry refresh and the row from the set-based rebuild, as dicts."""
    fields = (
        "ff_dates",
        "ff_quarters",
        "last_bp_on",
        "last_bp_at_target",
        "last_fpg_on",
        "last_fpg_at_target",
        "referrals",
    )
    one = refresh_registry_year(registry=registry, year=year)
    single = {k: getattr(one, k) for k in fields}
    rebuild_all(year=year)
    row = RegistryYear.objects.filter(registry=registry, year=year).first()
    bulk = {k: getattr(row, k) for k in fields} if row else None
    return single, bulk


def test_same_day_visits_count_once_and_phone_is_excluded(community):
    registry = make_registry(org=community.village, registered_on=date(2024, 6, 1))
    make_follow_up(registry, visit_on=date(2025, 2, 3), sbp=150, dbp=95)
    make_follow_up(registry, visit_on=date(2025, 2, 3), mode="home", sbp=138, dbp=85)
    make_follow_up(registry, visit_on=date(2025, 5, 3), mode="phone")
    make_follow_up(registry, visit_on=date(2025, 11, 20), sbp=128, dbp=80)
    single, bulk = _both(registry, 2025)
    assert single == bulk
    assert single["ff_dates"] == 2
    assert single["ff_quarters"] == 0b1001
    assert single["last_bp_on"] == date(2025, 11, 20)
    assert single["last_bp_at_target"] is True


def test_visits_before_registration_and_other_years_are_excluded(community):
    registry = make_registry(org=community.village, registered_on=date(2025, 7, 15))
    make_follow_up(registry, visit_on=date(2025, 7, 1), sbp=120, dbp=70)  # before enrolment
    make_follow_up(registry, visit_on=date(2024, 12, 31), sbp=120, dbp=70)  # other year
    make_follow_up(registry, visit_on=date(2026, 1, 1), sbp=120, dbp=70)  # other year
    make_follow_up(registry, visit_on=date(2025, 7, 15), sbp=160, dbp=100)  # enrolment day counts
    make_follow_up(registry, visit_on=date(2025, 12, 31), sbp=170, dbp=100)  # year's last day counts
    single, bulk = _both(registry, 2025)
    assert single == bulk
    assert single["ff_dates"] == 2
    assert single["ff_quarters"] == 0b1100
    assert single["last_bp_on"] == date(2025, 12, 31)
    assert single["last_bp_at_target"] is False


def test_last_reading_is_the_last_measured_visit_and_the_latest_record_of_that_day(community):
    registry = make_registry(org=community.village, disease="t2dm", registered_on=date(2023, 1, 5))
    make_follow_up(registry, visit_on=date(2025, 3, 1), fpg_mmol="6.2")
    make_follow_up(registry, visit_on=date(2025, 9, 1), fpg_mmol="8.0")
    make_follow_up(registry, visit_on=date(2025, 9, 1), fpg_mmol="6.5")  # recorded later the same day
    make_follow_up(registry, visit_on=date(2025, 10, 1))  # face-to-face without FPG
    single, bulk = _both(registry, 2025)
    assert single == bulk
    assert single["ff_dates"] == 3
    assert single["last_fpg_on"] == date(2025, 9, 1)
    assert single["last_fpg_at_target"] is True
    assert single["last_bp_on"] is None


def test_age_adjusted_target_is_taken_from_the_stored_follow_up(community):
    registry = make_registry(org=community.village, registered_on=date(2023, 1, 5))
    make_follow_up(registry, visit_on=date(2025, 4, 1), sbp=148, dbp=85, bp_at_target=True)  # R4.1 ≥65
    single, bulk = _both(registry, 2025)
    assert single == bulk
    assert single["last_bp_at_target"] is True


def test_referrals_are_counted_in_their_year_even_without_visits(community):
    registry = make_registry(org=community.village, registered_on=date(2023, 1, 5))
    make_referral(registry, opened_on=date(2025, 1, 1))
    make_referral(registry, opened_on=date(2025, 12, 31))
    make_referral(registry, opened_on=date(2024, 12, 31))
    single, bulk = _both(registry, 2025)
    assert single == bulk
    assert single["referrals"] == 2
    assert single["ff_dates"] == 0


def test_refresh_updates_the_existing_row(community):
    registry = make_registry(org=community.village, registered_on=date(2023, 1, 5))
    make_follow_up(registry, visit_on=date(2025, 2, 1), sbp=150, dbp=95)
    refresh_registry_year(registry=registry, year=2025)
    make_follow_up(registry, visit_on=date(2025, 5, 1), sbp=130, dbp=80)
    row = refresh_registry_year(registry=registry, year=2025)
    assert RegistryYear.objects.filter(registry=registry).count() == 1
    assert (row.ff_dates, row.last_bp_at_target) == (2, True)


def test_rebuild_all_without_a_year_covers_every_year_and_replaces_stale_rows(community):
    registry = make_registry(org=community.village, registered_on=date(2023, 1, 5))
    make_follow_up(registry, visit_on=date(2024, 2, 1), sbp=150, dbp=95)
    make_follow_up(registry, visit_on=date(2025, 2, 1), sbp=130, dbp=80)
    RegistryYear.objects.create(registry=registry, year=2019, ff_dates=9)
    assert rebuild_all() == 2
    assert sorted(RegistryYear.objects.values_list("year", "ff_dates")) == [(2024, 1), (2025, 1)]


def test_the_follow_up_service_keeps_the_roll_up_and_the_indicators_current(community, staff_of):
    """Contract with services.followups: every recorded visit refreshes RegistryYear in the same
    transaction, so the year's indicators move without a rebuild (chronic.md §6)."""
    from tests.chronic.conftest import actor_of
    from yilian.chronic.selectors import indicators as ind
    from yilian.chronic.services.followups import FollowUpData, record_follow_up

    patient = make_registry(org=community.village, registered_on=date(2026, 1, 5)).patient
    actor = actor_of(staff_of("village_doctor", community.village))
    year = ind.Period(date(2026, 1, 1), date(2026, 12, 31))
    before = ind.national_indicators(community.county, year).diseases["htn"]
    assert (before["managed"], before["controlled"]) == (1, 0)
    for day, sbp in ((date(2026, 2, 2), 150), (date(2026, 2, 2), 136), (date(2026, 5, 6), 132)):
        record_follow_up(
            actor=actor,
            patient_id=patient.pk,
            data=FollowUpData(visit_on=day, mode="clinic", sbp=sbp, dbp=84),
            today=date(2026, 9, 30),
        )
    row = RegistryYear.objects.get(registry__patient=patient, year=2026)
    assert (row.ff_dates, row.ff_quarters, row.last_bp_at_target) == (2, 0b0011, True)
    after = ind.national_indicators(community.county, year).diseases["htn"]
    assert (after["managed"], after["normative"], after["controlled"]) == (1, 0, 1)
