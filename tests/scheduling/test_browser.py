"""Issue #3 in a real browser: on a 390×844 phone, a patient signs in with an SMS code, finds a
department, picks a time segment and a family member, books, and cancels. The schedule office's
week grid is captured on a desktop screen. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from tests.helpers import last_sms_code
from tests.scheduling.factories import make_department, make_doctor, make_session
from yilian.community.models import Staff
from yilian.scheduling import rules
from yilian.scheduling.models import Appointment

pytestmark = pytest.mark.browser

PHONE = "13812340001"


def _schedule(community):
    """心血管内科 with an expert and a general doctor over the next days."""
    department = make_department(community.county, "心血管内科")
    department.location = "内科楼8层"
    department.save()
    chief = make_doctor(community.county, department, title=Staff.Title.CHIEF_PHYSICIAN, name="王建国")
    attending = make_doctor(community.county, department, name="刘晓燕")
    day = timezone.localdate() + timedelta(days=3)
    windows = [(time(8, 0), time(8, 30), 4), (time(8, 30), time(9, 0), 4), (time(9, 0), time(9, 30), 4)]
    now = timezone.now()
    sessions = [
        make_session(community.county, department=department, doctor=chief, day=day, windows=windows, now=now)
    ]
    sessions.append(
        make_session(
            community.county,
            department=department,
            doctor=attending,
            day=day,
            period=rules.PM,
            windows=[(time(14), time(14, 30), 6), (time(14, 30), time(15), 6)],
            now=now,
        )
    )
    sessions.append(
        make_session(
            community.county,
            department=department,
            doctor=attending,
            day=day + timedelta(days=1),
            windows=windows,
            now=now,
        )
    )
    return department, sessions


def test_patient_books_and_cancels_on_a_phone(
    live_server,
    flushable_db,
    browser,
    artifacts,
    community,
    immediate_tasks,
):
    account = f.make_patient_account(PHONE)
    me = f.make_patient(community.village, name="王建军", phone=PHONE)
    f.link(account, me, "self")
    mother = f.make_patient(community.village, name="赵玉梅", sex="F")
    f.link(account, mother, "parent")
    department, sessions = _schedule(community)

    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        page.goto(f"{live_server.url}/accounts/patient/login/")
        page.fill("#id_phone", PHONE)
        page.click("button:has-text('获取验证码')")
        page.wait_for_selector("#id_code")
        page.fill("#id_code", last_sms_code(PHONE))
        page.click("button:has-text('登录')")
        page.wait_for_url(re.compile(r".*/h5/$"))

        page.goto(f"{live_server.url}/scheduling/h5/")
        page.fill("input[name=q]", "心血管")
        page.click("button:has-text('搜索')")
        page.screenshot(path=str(artifacts / "scheduling_h5_search.png"), full_page=True)
        page.click("a:has-text('心血管内科')")
        page.wait_for_url(re.compile(rf".*/scheduling/h5/departments/{department.pk}/.*"))
        page.click(f".bk-days a:has-text('{sessions[0].service_date:%m/%d}')")
        page.wait_for_selector(".bk-session:has-text('王建国')")
        page.screenshot(path=str(artifacts / "scheduling_h5_department.png"), full_page=True)

        page.click(".bk-session:has-text('王建国')")
        page.wait_for_url(re.compile(rf".*/scheduling/h5/sessions/{sessions[0].pk}/$"))
        page.click(".bk-slots label:has-text('08:30–')")
        page.click(".bk-members label:has-text('赵玉梅')")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        page.screenshot(path=str(artifacts / "scheduling_h5_confirm.png"), full_page=True)
        page.click("#book-submit")
        page.wait_for_url(re.compile(r".*/scheduling/h5/appointments/.*"))
        assert "预约成功" in page.locator(".flash").inner_text()
        appointment = Appointment.objects.get(patient=mother)
        assert timezone.localtime(appointment.slot.starts_at).time() == time(8, 30)
        card = page.locator(f"#appt-{appointment.pk}")
        assert "王建国" in card.inner_text() and "赵玉梅" in card.inner_text()
        page.screenshot(path=str(artifacts / "scheduling_h5_booked.png"), full_page=True)

        card.get_by_role("button", name="取消预约").click()
        page.wait_for_selector(".flash:has-text('预约已取消')")
        appointment.refresh_from_db()
        assert appointment.status == rules.CANCELLED
        page.screenshot(path=str(artifacts / "scheduling_h5_cancelled.png"), full_page=True)
    finally:
        context.close()


def test_schedule_office_week_grid_on_a_desktop(live_server, flushable_db, browser, artifacts, community):
    department, sessions = _schedule(community)
    office = f.make_staff("coordinator", community.county, username="sched.office", name="周主任")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", office.user.username)
        page.fill("#id_password", "Yilian-test-2026")
        page.click("button:has-text('登录')")
        page.wait_for_load_state()
        page.goto(
            f"{live_server.url}/scheduling/sessions/?department={department.pk}&week={sessions[0].service_date}"
        )
        assert page.locator(".sc-cell").count() == 3
        page.screenshot(path=str(artifacts / "scheduling_week_grid.png"), full_page=True)
        page.click(".sc-cell:has-text('王建国')")
        page.wait_for_selector("h1:has-text('王建国')")
        page.screenshot(path=str(artifacts / "scheduling_session_detail.png"), full_page=True)
        page.click("a:has-text('停诊')")
        page.wait_for_selector("text=确认停诊并通知 0 位患者")
        page.screenshot(path=str(artifacts / "scheduling_stop_confirm.png"), full_page=True)
    finally:
        context.close()
