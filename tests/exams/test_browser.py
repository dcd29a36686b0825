"""Issue #3 part 3 in a real browser: the centre's nurse opens a patient's open orders on the
calendar, sees the one-stop plan with its preparation text, books it with 一键预约, and the
calendar's occupancy updates; screenshots in test-artifacts/."""

from __future__ import annotations

import pytest
from django.test import Client

from yilian.exams import rules
from yilian.exams.models import ExamAppointment

pytestmark = pytest.mark.browser


def _context(browser, live_server, user, **kwargs):
    client = Client()
    client.force_login(user)
    context = browser.new_context(locale="zh-CN", **kwargs)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context


def test_centre_books_a_patients_plan_in_one_click(live_server, flushable_db, browser, artifacts, centre):
    for code in ("US-ABD", "GI-BA", "ES-GAS", "ECG-12"):
        centre.order(code)
    context = _context(browser, live_server, centre.nurse.user, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(f"{live_server.url}/exams/?date={centre.day.isoformat()}")
    page.get_by_test_id(f"open-plan-{centre.patient.pk}").click()
    page.get_by_test_id("book-plan").wait_for()
    plan_text = page.locator("#plan").inner_text()
    assert "1 天内完成" in plan_text and "禁食" in plan_text and "钡餐" in plan_text
    page.screenshot(path=str(artifacts / "exams-centre-plan.png"), full_page=True)

    page.get_by_test_id("book-plan").click()
    page.get_by_test_id("booked").wait_for()
    assert ExamAppointment.objects.filter(patient=centre.patient, status=rules.BOOKED).count() == 4
    # The calendar refreshed itself: the booked ultrasound segment shows one place taken.
    page.wait_for_function("document.querySelector('#grid').innerText.includes('1/')")
    page.wait_for_function("document.querySelector('#waiting').innerText.includes('没有待预约')")
    page.screenshot(path=str(artifacts / "exams-centre-booked.png"), full_page=True)

    # HTMX day navigation.
    page.get_by_role("button", name="后一天").click()
    page.wait_for_function(
        f"!document.querySelector('[data-testid=grid-day]').innerText.includes('{centre.day.isoformat()}')"
    )
    context.close()

    phone = _context(
        browser, live_server, centre.account.user, viewport={"width": 390, "height": 844}, is_mobile=True
    ).new_page()
    phone.goto(f"{live_server.url}/exams/my/")
    assert "胃镜（无痛）" in phone.content() and "家属陪同" in phone.content()
    phone.screenshot(path=str(artifacts / "exams-patient-phone.png"), full_page=True)
