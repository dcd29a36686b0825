"""Indicators over HTTP: the API (/api/v1/chronic/indicators…), the dashboard pages and the Excel export."""

from __future__ import annotations

from datetime import date
from io import BytesIO

import pytest
from openpyxl import load_workbook

from tests.chronic.factories import make_follow_up, make_registry
from yilian.chronic.services.rollup import rebuild_all
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_trend():
    """The trend caches past months for an hour; every test starts from an empty cache."""
    from django.core.cache import cache

    cache.clear()


API = "/api/v1/chronic/indicators"


@pytest.fixture
def data(community):
    """Township: 3 HTN (1 normative + controlled, 1 controlled only, 1 失访), 1 T2DM; other township: 2 HTN."""
    good = make_registry(org=community.village, registered_on=date(2024, 1, 1))
    for month in (1, 4, 7, 10):
        make_follow_up(good, visit_on=date(2025, month, 8), sbp=128, dbp=80)
    once = make_registry(org=community.village, registered_on=date(2024, 1, 1))
    make_follow_up(once, visit_on=date(2025, 6, 1), sbp=130, dbp=82)
    make_registry(org=community.township, registered_on=date(2024, 1, 1))
    dm = make_registry(org=community.village, registered_on=date(2024, 1, 1), disease="t2dm")
    make_follow_up(dm, visit_on=date(2025, 6, 1), fpg_mmol="7.0")
    make_registry(org=community.other_village, registered_on=date(2024, 1, 1))
    make_registry(org=community.other_village, registered_on=date(2024, 1, 1))
    rebuild_all()
    return community


def test_indicator_set_for_a_township_excludes_other_townships(data, staff_of, login, client):
    login(staff_of("doctor", data.township))
    body = client.get(API, {"year": "2025"}).json()
    assert body["organisation"]["id"] == data.township.pk
    htn = body["diseases"]["htn"]
    assert (htn["managed"], htn["normative"], htn["controlled"]) == (3, 1, 2)
    assert htn["normative_rate"] == "33.3" and htn["control_rate"] == "66.7"
    assert htn["codes"] == {"normative_rate": "IND-1", "control_rate": "IND-2"}
    dm = body["diseases"]["t2dm"]
    assert (dm["managed"], dm["controlled"]) == (1, 0)  # FPG exactly 7.0 is not at target (R4.2)
    assert body["source"] == "rollup"
    county = client.get(API, {"year": "2025", "org_id": data.county.pk})
    assert county.status_code == 404


def test_a_custom_period_is_computed_from_follow_ups(data, staff_of, login, client):
    login(staff_of("coordinator", data.county))
    body = client.get(API, {"start": "2025-01-01", "end": "2025-06-30"}).json()
    assert body["source"] == "follow_ups"
    htn = body["diseases"]["htn"]
    assert (htn["managed"], htn["normative"]) == (5, 1)  # 2 quarters required: only "good" has 2 visits


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2025-05-01", "end": "2025-04-30"},
        {"start": "2019-01-01", "end": "2025-01-01"},
        {"start": "2025-13-01", "end": "2025-12-31"},
        {"start": "2025-01-01"},
        {"year": "abcd"},
        {"year": "1999"},
    ],
)
def test_bad_periods_are_422(data, staff_of, login, client, params):
    login(staff_of("coordinator", data.county))
    response = client.get(API, params)
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_PERIOD"


def test_unknown_or_out_of_scope_org_is_404_and_a_nurse_is_refused(data, staff_of, login, client):
    login(staff_of("village_doctor", data.village))
    assert client.get(API, {"org_id": 999999}).status_code == 404
    assert client.get(API, {"org_id": data.township.pk}).status_code == 404
    assert client.get(f"{API}/breakdown", {"org_id": data.other_village.pk}).status_code == 404
    assert client.get(API).json()["organisation"]["id"] == data.village.pk
    client.logout()
    login(staff_of("nurse", data.village))
    assert client.get(API).status_code == 403


def test_breakdown_has_one_row_per_child(data, staff_of, login, client):
    login(staff_of("coordinator", data.county))
    body = client.get(f"{API}/breakdown", {"year": "2025"}).json()
    by_name = {r["organisation"]["name"]: r["diseases"]["htn"]["managed"] for r in body["rows"]}
    assert by_name == {data.township.name: 3, data.other_township.name: 2}


def test_drill_down_membership_equals_the_numerator(data, staff_of, login, client):
    login(staff_of("doctor", data.township))
    figures = client.get(API, {"year": "2025"}).json()["diseases"]["htn"]
    for figure, expected in (("managed", 3), ("normative", 1), ("controlled", 2), ("not_controlled", 1)):
        body = client.get(f"{API}/registries", {"year": "2025", "figure": figure, "disease": "htn"}).json()
        assert body["total"] == expected == len(body["rows"])
        assert all("*" in row["name"] for row in body["rows"])
    assert figures["controlled"] == 2
    assert AuditEvent.objects.filter(action="chronic.indicator_list").count() == 4
    bad = client.get(f"{API}/registries", {"figure": "everything"})
    assert bad.status_code == 422


def test_simple_month_and_trend(data, staff_of, login, client):
    login(staff_of("coordinator", data.county))
    month = client.get(f"{API}/simple", {"month": "2025-06"}).json()
    # good (visited 2025-04) + once (2025-06-01): both controlled; the 3 never visited since their
    # registration 17 months ago are lost to follow-up (SIM-2), outside the SIM-4 denominator
    assert (month["sim_controlled"], month["sim_missed"], month["sim_denominator"]) == (2, 0, 2)
    assert (month["sim_ltfu"], month["ltfu_rate"]) == (3, "60.0")
    trend = client.get(f"{API}/trend", {"month": "2025-06", "months": 3}).json()
    assert [t["month"] for t in trend] == ["2025-04", "2025-05", "2025-06"]
    assert client.get(f"{API}/simple", {"month": "2025/6"}).status_code == 422


def test_excel_export_opens_and_lists_the_masked_patients(data, staff_of, login, client):
    login(staff_of("doctor", data.township))
    response = client.get(f"{API}/export.xlsx", {"year": "2025", "figure": "controlled", "disease": "htn"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="chronic-indicators-TS01-2025')
    wb = load_workbook(BytesIO(response.content))
    assert wb.sheetnames == ["指标", "下级机构", "患者清单"]
    rows = list(wb["指标"].iter_rows(values_only=True))
    assert ("高血压", "IND-1", "规范管理率", 1, 3, "33.3%", "≥80%") in rows
    patients = list(wb["患者清单"].iter_rows(min_row=3, values_only=True))
    assert len(patients) == 2
    assert all("*" in p[1] for p in patients)
    breakdown = [r[0] for r in wb["下级机构"].iter_rows(min_row=2, values_only=True)]
    assert data.village.name in breakdown
    assert AuditEvent.objects.filter(action="chronic.indicator_export").exists()


def test_dashboard_page_shows_tiles_linking_to_lists(data, staff_of, login, client):
    login(staff_of("doctor", data.township))
    page = client.get("/chronic/dashboard/", {"year": "2025"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "规范管理率" in html and "血压控制率" in html and "血糖控制率" in html
    assert "list/?org=" in html and "echarts.min.js" in html
    assert "33.3%" in html
    listing = client.get(
        "/chronic/dashboard/list/", {"org": data.township.pk, "year": "2025", "figure": "normative"}
    )
    assert listing.status_code == 200
    assert listing.content.decode().count("data-registry=") == 1
    sim = client.get("/chronic/dashboard/list/", {"figure": "sim_ltfu", "month": "2025-06"})
    assert sim.content.decode().count("data-registry=") == 1
    panel = client.get("/chronic/dashboard/simple/", {"month": "2025-06"})
    assert panel.status_code == 200
    assert "/chronic/dashboard/list/?org=" in panel.content.decode() and "100.0%" in panel.content.decode()
    assert client.get("/chronic/dashboard/simple/", {"month": "x"}).status_code == 422
    export = client.get("/chronic/dashboard/export.xlsx", {"year": "2025"})
    assert export.status_code == 200 and export["Content-Disposition"].startswith("attachment")
    assert client.get("/chronic/dashboard/", {"org": data.county.pk}).status_code == 404
    assert client.get("/chronic/dashboard/", {"start": "2025-02-01", "end": "2025-01-01"}).status_code == 422
