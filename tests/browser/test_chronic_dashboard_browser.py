"""The chronic-disease dashboard in a real browser (chronic.md §6, §8): the ECharts charts render,
a bar opens the child organisation, and a KPI tile opens its masked patient list — on a phone too."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from tests import factories as f
from tests.chronic.factories import make_follow_up, make_registry
from tests.helpers import phone_context
from yilian.chronic.services.rollup import rebuild_all
from yilian.common import policy

pytestmark = pytest.mark.browser


def _sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "Yilian-test-2026")
    page.click("button:has-text('登录')")
    page.wait_for_load_state()


def _history(community) -> None:
    year = timezone.localdate().year
    for k, org in enumerate([community.village, community.village, community.other_village]):
        r = make_registry(org=org, registered_on=date(year - 1, 3, 1))
        make_follow_up(r, visit_on=date(year, 1, 10 + k), sbp=128 + 10 * k, dbp=80)
    rebuild_all()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_dashboard_renders_charts_and_a_tile_opens_its_list(
    live_server, flushable_db, browser, artifacts, community, viewport
):
    _history(community)
    coordinator = f.make_staff(
        policy.COORDINATOR, community.county, username=f"dash.{viewport}", name="公卫科"
    )
    context = (
        phone_context(browser)
        if viewport == "phone"
        else browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    )
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, coordinator.user.username)
        page.goto(f"{live_server.url}/chronic/dashboard/")
        page.wait_for_selector("#breakdown-chart canvas")
        page.wait_for_selector("#trend-chart canvas")
        page.wait_for_selector("#simple-panel .sim-legend a")  # the Simple/HEARTS panel, loaded by HTMX
        page.screenshot(path=str(artifacts / f"chronic_dashboard_{viewport}.png"), full_page=True)
        managed = page.locator("a.kpi").first
        assert "3" in managed.inner_text()
        managed.click()
        page.wait_for_selector("#figure-list")
        assert page.locator("#figure-list tr[data-registry]").count() == 3
        assert "*" in page.locator("#figure-list tr[data-registry] td").first.inner_text()
        if viewport == "desktop":
            # a bar of the breakdown chart opens that township
            page.go_back()
            page.wait_for_selector("#breakdown-chart canvas")
            box = page.locator("#breakdown-chart canvas").bounding_box()
            page.evaluate(
                """() => { const c = echarts.getInstanceByDom(document.getElementById('breakdown-chart'));
                           c.dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0}); }"""
            )
            assert box["width"] > 100
            page.evaluate(
                """() => { const c = echarts.getInstanceByDom(document.getElementById('breakdown-chart'));
                           c.trigger('click', {dataIndex: 0}); }"""
            )
            page.wait_for_url(f"**/chronic/dashboard/?org={community.township.pk}*")
            assert community.township.name in page.locator("h1").inner_text()
    finally:
        context.close()
