"""The chronic profile page in a real browser on a 360 px phone: readable (no sideways page scroll),
the trend chart drawn from the local ECharts, and enrolment through the HTMX form."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.utils import timezone

from tests import factories as f
from tests.chronic.factories import make_chronic_patient, make_follow_up, make_registry
from yilian.chronic.models import Registry
from yilian.common import policy

pytestmark = pytest.mark.browser


def test_profile_on_a_phone_and_enrol_by_htmx(live_server, flushable_db, browser, artifacts):
    county = f.make_org("县医院", "county_hospital", code="BRC1")
    township = f.make_org("镇卫生院", "township_centre", county, code="BRT1")
    village = f.make_org("村卫生室", "village_clinic", township, code="BRV1")
    doctor = f.make_staff(policy.VILLAGE_DOCTOR, village, name="赵村医")
    patient = make_chronic_patient(village, name="周桂兰")
    htn = make_registry(patient=patient, registered_on=date(2025, 1, 10), responsible_doctor=doctor)
    for month, (sbp, dbp) in zip((2, 5, 8, 11), ((158, 96), (148, 92), (138, 86), (134, 82)), strict=True):
        make_follow_up(htn, visit_on=date(2025, month, 3), sbp=sbp, dbp=dbp)

    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", doctor.user.username)
        page.fill("#id_password", "Yilian-test-2026")
        page.click("button:has-text('登录')")
        page.wait_for_load_state()
        page.goto(f"{live_server.url}/chronic/patients/{patient.pk}/")
        page.wait_for_function("document.querySelector('#cr-trend canvas') !== null")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=str(artifacts / "chronic_profile_phone.png"), full_page=True)

        page.select_option("#id_disease", "t2dm")
        page.fill("#id_diagnosed_on", "2025-10-08")
        page.fill("#id_registered_on", timezone.localdate().isoformat())
        page.select_option("#id_diagnosis_source", "township")
        page.click("#enrol-form button[type=submit]")
        page.wait_for_url(re.compile(rf".*/chronic/patients/{patient.pk}/$"))
        page.wait_for_selector("article[data-disease='t2dm']")
        assert Registry.objects.filter(patient=patient, disease="t2dm", status="active").exists()
    finally:
        context.close()
