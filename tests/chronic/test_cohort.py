"""The Simple/HEARTS quarterly registration cohort (chronic.md SIM-7), through the API."""

from __future__ import annotations

from datetime import date

import pytest

from tests.chronic.factories import make_follow_up, make_registry
from yilian.chronic.models import Registry
from yilian.chronic.selectors import indicators as ind

pytestmark = pytest.mark.django_db

API = "/api/v1/chronic/indicators"


@pytest.fixture
def cohort(community):
    """Registered in 2025-Q2 at the village: one controlled, one uncontrolled, one visited without
    a BP, one missed in Q3; one who died in Q3 (left out); one registered in Q1 (another cohort)."""
    v = community.village
    controlled = make_registry(org=v, registered_on=date(2025, 4, 10))
    make_follow_up(controlled, visit_on=date(2025, 7, 2), sbp=150, dbp=95)
    make_follow_up(controlled, visit_on=date(2025, 9, 20), sbp=132, dbp=84)  # the latest in Q3 counts
    uncontrolled = make_registry(org=v, registered_on=date(2025, 5, 1))
    make_follow_up(uncontrolled, visit_on=date(2025, 8, 1), sbp=146, dbp=88)
    make_follow_up(uncontrolled, visit_on=date(2025, 10, 3), sbp=120, dbp=80)  # Q4: not the outcome quarter
    no_bp = make_registry(org=v, registered_on=date(2025, 6, 30))
    make_follow_up(no_bp, visit_on=date(2025, 8, 5), mode="phone")
    make_registry(org=v, registered_on=date(2025, 4, 1))  # missed: no visit in Q3
    make_registry(
        org=v,
        registered_on=date(2025, 4, 2),
        status=Registry.Status.CLOSED,
        closed_on=date(2025, 8, 1),
        close_reason=Registry.CloseReason.DEATH,
    )
    make_registry(org=v, registered_on=date(2025, 3, 31))
    return community


def test_the_cohort_counts_each_outcome_in_the_following_quarter(cohort, staff_of, login, client):
    login(staff_of("doctor", cohort.township))
    r = client.get(f"{API}/cohort", {"quarter": "2025-Q2"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["quarter"], body["outcome_quarter"]) == ("2025-Q2", "2025-Q3")
    assert (
        body["cohort_registered"],
        body["cohort_controlled"],
        body["cohort_uncontrolled"],
        body["cohort_no_reading"],
        body["cohort_missed"],
    ) == (4, 1, 1, 1, 1)
    assert body["controlled_rate"] == "25.0" and body["missed_rate"] == "25.0"


def test_each_cohort_figure_drills_down_to_its_patients(cohort, staff_of, login, client):
    login(staff_of("doctor", cohort.township))
    totals = {
        figure: client.get(
            f"{API}/registries", {"figure": figure, "quarter": "2025Q2", "disease": "htn"}
        ).json()["total"]
        for figure in ind.COHORT_FIGURES
    }
    assert totals == {
        "cohort_registered": 4,
        "cohort_controlled": 1,
        "cohort_uncontrolled": 1,
        "cohort_no_reading": 1,
        "cohort_missed": 1,
    }


@pytest.mark.parametrize("quarter", ["2025-Q5", "2025", "Q2-2025", "1999-Q1", "2999-Q1"])
def test_a_bad_quarter_is_422(cohort, staff_of, login, client, quarter):
    login(staff_of("doctor", cohort.township))
    r = client.get(f"{API}/cohort", {"quarter": quarter})
    assert r.status_code == 422 and r.json()["field"] == "quarter", r.content


def test_the_default_quarter_is_the_latest_with_a_finished_outcome():
    assert ind.quarter_from(today=date(2026, 11, 22)) == date(2026, 4, 1)  # Q2: outcome Q3 has ended
    assert ind.quarter_from(today=date(2026, 1, 5)) == date(2025, 7, 1)


def test_the_dashboard_panel_shows_the_cohort_and_its_lists(cohort, staff_of, login, client):
    login(staff_of("doctor", cohort.township))
    panel = client.get("/chronic/dashboard/simple/", {"org": cohort.township.pk})
    assert panel.status_code == 200, panel.content
    html = panel.content.decode()
    assert "SIM-7" in html and "figure=cohort_missed" in html
    listing = client.get(
        "/chronic/dashboard/list/",
        {"org": cohort.township.pk, "figure": "cohort_registered", "quarter": "2025-Q2"},
    )
    assert listing.status_code == 200 and "2025-Q2" in listing.content.decode()
