"""Issue #4 in a real browser on a phone (360×740): a village doctor opens the work list, finds an
overdue hypertension patient, records a follow-up with an urgent reading (185/115), sees the
urgent referral to the township on the result, and the patient has left the overdue list."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from tests.chronic.factories import make_chronic_patient, make_registry
from yilian.chronic.models import FollowUp, Referral
from yilian.common import policy

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("flushable_db")]


def _phone(browser):
    return browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )


def test_village_doctor_records_an_urgent_follow_up_from_the_overdue_list(
    live_server, browser, artifacts, community
):
    today = timezone.localdate()
    f.make_staff(policy.VILLAGE_DOCTOR, community.village, username="cunyi", name="刘村医")
    patient = make_chronic_patient(
        community.village, name="王建国", birth=date(1956, 4, 2), phone="13900001234"
    )
    registry = make_registry(
        patient=patient,
        registered_on=today - timedelta(days=500),
        next_follow_up_on=today - timedelta(days=9),
        last_follow_up_on=today - timedelta(days=100),
    )
    make_registry(  # someone else's patient, in another village: never shown
        patient=make_chronic_patient(community.other_village, name="赵四海"),
        registered_on=today - timedelta(days=500),
        next_follow_up_on=today - timedelta(days=3),
    )

    context = _phone(browser)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/chronic/worklist/")
        page.fill("#id_username", "cunyi")
        page.fill("#id_password", "Yilian-test-2026")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/chronic/worklist/$"))

        overdue_tab = page.locator('.wl-tabs a[data-tab="overdue"]')
        assert overdue_tab.get_attribute("aria-current") == "page"
        row = page.locator(f"#reg-{registry.pk}")
        row.wait_for()
        assert "王*国" in row.inner_text() and "逾期 9 天" in row.inner_text()
        assert "王建国" not in page.content() and "赵" not in page.locator("#wl-list").inner_text()
        box = row.locator("a").bounding_box()
        assert box and box["height"] >= 44 and box["width"] <= 360  # a thumb-sized target, no sideways scroll
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(artifacts / "chronic_worklist_phone.png"), full_page=True)

        row.locator("a").click()
        page.wait_for_url(re.compile(rf".*/chronic/followup/{patient.pk}/$"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(artifacts / "chronic_followup_form_top_phone.png"))
        page.get_by_label("门诊").check()
        page.fill("#id_sbp", "185")
        page.fill("#id_dbp", "115")
        page.fill("#id_heart_rate", "88")
        page.locator("label", has_text="剧烈头痛或头晕").click()
        page.locator('input[name="med_name"]').first.fill("硝苯地平缓释片")
        page.screenshot(path=str(artifacts / "chronic_followup_form_phone.png"), full_page=True)
        page.get_by_role("button", name="保存随访").click()

        page.wait_for_url(re.compile(rf".*/chronic/followup/{patient.pk}/done/.+/$"))
        urgent = page.locator(".res-urgent")
        urgent.wait_for()
        referral = Referral.objects.get()
        due = referral.tracking_due_on
        assert referral.kind == "urgent" and referral.to_org_id == community.township.pk
        assert (
            f"紧急转诊：已转至{community.township.name}，请于{due.month}月{due.day}日前跟踪"
            in urgent.inner_text()
        )
        assert "控制不满意" in page.locator(".res-card").inner_text()
        assert FollowUp.objects.count() == 1
        page.screenshot(path=str(artifacts / "chronic_followup_urgent_phone.png"), full_page=True)

        page.get_by_role("link", name="返回随访清单").click()
        page.wait_for_url(re.compile(r".*/chronic/worklist/$"))
        page.locator("#wl-list").wait_for()
        assert page.locator(f"#reg-{registry.pk}").count() == 0
        assert "这个清单里暂时没有患者" in page.locator("#wl-list").inner_text()
        page.screenshot(path=str(artifacts / "chronic_worklist_after_phone.png"), full_page=True)
    finally:
        context.close()


def test_call_list_one_tap_outcome_on_the_phone(live_server, browser, artifacts, community):
    today = timezone.localdate()
    f.make_staff(policy.VILLAGE_DOCTOR, community.village, username="cunyi2", name="刘村医")
    registry = make_registry(
        patient=make_chronic_patient(community.village, name="孙桂兰", sex="F", phone="13900005678"),
        registered_on=today - timedelta(days=500),
        next_follow_up_on=today - timedelta(days=5),
    )
    context = _phone(browser)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/chronic/worklist/%3Ftab%3Dcall")
        page.fill("#id_username", "cunyi2")
        page.fill("#id_password", "Yilian-test-2026")
        page.click("button[type=submit]")
        row = page.locator(f"#reg-{registry.pk}")
        row.wait_for()
        row.locator("button.dial").click()
        row.locator('a[href="tel:13900005678"]').wait_for()
        row.locator('button[data-outcome="remind_later"]').click()
        row.locator(".wl-done").wait_for()
        assert "已记录：稍后再联系" in row.inner_text()
        page.screenshot(path=str(artifacts / "chronic_call_list_phone.png"), full_page=True)
        registry.refresh_from_db()
        assert registry.call_snoozed_until == today + timedelta(days=7)
    finally:
        context.close()
