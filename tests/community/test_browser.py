"""The organisation tree in a real browser: villages load when a township opens (HTMX)."""

from __future__ import annotations

import pytest

from tests import factories as f
from yilian.common import policy
from yilian.community.models import Department

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("flushable_db")]


def _sign_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "Yilian-test-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_sysadmin_expands_the_tree_and_adds_a_department(live_server, browser, artifacts, community):
    for i in range(12):
        f.make_org(f"留格庄{i + 2}村卫生室", "village_clinic", community.township, code=f"VC01{i + 2:02d}")
    Department.objects.create(
        organisation=community.county, code="CARD", name="心血管内科", location="门诊楼3层"
    )
    f.make_staff(policy.DOCTOR, community.county, name="陈心")
    admin = f.make_staff(policy.SYSADMIN, community.county, username="xitong", name="系统管理员")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, admin.user.username)
        page.goto(f"{live_server.url}/community/")
        node = page.locator("li[data-org='TS01'] > details")
        assert page.locator("li[data-org='VC0101']").count() == 0
        node.locator("summary").click()
        page.locator("li[data-org='VC0101']").wait_for()
        assert page.locator("li[data-org='TS01'] li[data-org]").count() == 13
        page.screenshot(path=str(artifacts / "community-org-tree.png"), full_page=True)

        page.goto(f"{live_server.url}/community/orgs/COUNTY01/")
        page.locator("#departments details.add-panel > summary").click()
        page.fill("#dept-form input[name=code]", "card")
        page.fill("#dept-form input[name=name]", "心内二科")
        page.click("#dept-form button[type=submit]")
        page.locator("#dept-form .field-error").wait_for()
        assert "已被使用" in page.inner_text("#dept-form")
        page.fill("#dept-form input[name=code]", "CARD2")
        page.click("#dept-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/community/orgs/COUNTY01/")
        page.locator("text=心内二科").first.wait_for()
        page.locator("#add-org > summary").click()
        page.screenshot(path=str(artifacts / "community-org-detail.png"), full_page=True)
    finally:
        context.close()
    assert Department.objects.filter(organisation=community.county, code="CARD2").exists()


def test_secadmin_is_refused_a_conflicting_role_in_the_staff_row(live_server, browser, artifacts, community):
    admin = f.make_staff(policy.SYSADMIN, community.county, name="赵管理")
    secadmin = f.make_staff(policy.SECADMIN, community.county, username="anquan", name="钱安全")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, secadmin.user.username)
        page.goto(f"{live_server.url}/community/orgs/COUNTY01/")
        cell = page.locator(f"#staff-roles-{admin.pk}")
        cell.locator("select[name=role]").select_option("auditor")
        cell.locator("form.role-assign button[type=submit]").click()
        page.locator(f"#staff-roles-{admin.pk} .field-error").wait_for()
        assert "三员分立" in page.inner_text(f"#staff-roles-{admin.pk}")
        page.screenshot(path=str(artifacts / "community-role-refused.png"), full_page=True)
    finally:
        context.close()
    assert list(admin.roles.values_list("role", flat=True)) == [policy.SYSADMIN]
