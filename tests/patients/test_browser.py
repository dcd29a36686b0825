"""The search desk and the profile in a real browser: live results, audited reveal, live form checks."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories as f
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("flushable_db")]


def _sign_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "Yilian-test-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_live_search_then_reveal_the_id(live_server, browser, artifacts, community):
    number = f.valid_id(date(1962, 8, 3), "M")
    patient = f.make_patient(community.village, name="张三丰", id_number=number, phone="13912345678")
    f.make_patient(community.village, name="李四")
    doctor = f.make_staff(policy.DOCTOR, community.township, username="zhangyi", name="张医生")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, doctor.user.username)
        page.goto(f"{live_server.url}/patients/")
        page.fill("#q", "zsf")
        page.locator("#results table tbody tr").first.wait_for()
        rows = page.locator("#results table tbody tr")
        assert rows.count() == 1
        assert number not in page.content() and number[:6] + "********" + number[-4:] in page.content()
        page.screenshot(path=str(artifacts / "patients-search.png"), full_page=True)
        rows.first.locator("a").first.click()
        page.wait_for_url(f"{live_server.url}/patients/{patient.pk}/")
        assert number not in page.inner_text("main")
        page.get_by_role("button", name="显示完整证件号").click()
        page.locator("#id-number [data-revealed]").wait_for()
        assert page.inner_text("#id-number") == number
        page.screenshot(path=str(artifacts / "patients-profile.png"), full_page=True)
    finally:
        context.close()
    assert (
        AuditEvent.objects.filter(action="patient.view", reason="reveal_id", patient_id=patient.pk).count()
        == 1
    )


def test_registration_form_checks_as_one_types(live_server, browser, artifacts, community):
    nurse = f.make_staff(policy.NURSE, community.village, username="hushi", name="刘护士")
    good = f.valid_id(date(1975, 3, 9), "F")
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    context = browser.new_context(viewport={"width": 1366, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, nurse.user.username)
        page.goto(f"{live_server.url}/patients/new/")
        page.fill("#id_name", "李秀英")
        page.fill("#id_id_number", bad)
        page.locator("#err-id_number", has_text="校验位").wait_for()
        page.fill("#id_id_number", good)
        page.locator("[data-derived]").wait_for()
        assert "1975-03-09" in page.inner_text("#checks")
        assert page.inner_text("#err-id_number") == ""
        page.screenshot(path=str(artifacts / "patients-register.png"), full_page=True)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/patients/*/")
        assert "建档成功" in page.content() and "李秀英" in page.inner_text("h1")
    finally:
        context.close()


def test_coordinator_merges_a_duplicate(live_server, browser, artifacts, community):
    from yilian.patients.models import Contact, Patient

    keep = f.make_patient(community.village, name="王秀兰", birth=date(1950, 2, 1), sex="F")
    drop = f.make_patient(community.township, name="王秀兰", birth=date(1950, 2, 1), sex="F")
    Contact.objects.create(patient=drop, name="王强", relationship="儿子", phone="13800000009")
    coordinator = f.make_staff(policy.COORDINATOR, community.county, username="xietiao", name="周协调")
    context = browser.new_context(viewport={"width": 1366, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, coordinator.user.username)
        page.goto(f"{live_server.url}/patients/merge/")
        page.fill("#mq", "wxl")
        page.locator(f"[data-pick=survivor_id][data-id='{keep.pk}']").click()
        page.locator(f"[data-pick=duplicate_id][data-id='{drop.pk}']").click()
        page.locator("#preview .pt-merge").wait_for()
        assert "联系人 1" in page.inner_text("#preview")
        page.fill("#reason", "同一人在村卫生室和镇卫生院各建一档，已核对身份证原件")
        page.screenshot(path=str(artifacts / "patients-merge.png"), full_page=True)
        page.click("#merge-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/patients/{keep.pk}/")
    finally:
        context.close()
    assert Patient.objects.get(pk=drop.pk).merged_into_id == keep.pk
    assert Contact.objects.get().patient_id == keep.pk
