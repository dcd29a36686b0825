"""The audit-log search in a real browser: an auditor filters by patient (HTMX form)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from tests import factories as f
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("flushable_db")]


def test_auditor_searches_the_audit_log(live_server, browser, artifacts, community):
    auditor = f.make_staff(policy.AUDITOR, community.county, username="shenji", name="审计员")
    AuditEvent.objects.create(
        at=timezone.now(), actor_label="wangyisheng", action="patient.view", patient_id=77
    )
    AuditEvent.objects.create(
        at=timezone.now(), actor_label="wangyisheng", action="patient.merge", patient_id=78
    )
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", auditor.user.username)
        page.fill("#id_password", "Yilian-test-2026")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/audit/")
        page.fill("#id_patient_id", "77")
        page.click("button:has-text('查询')")
        page.wait_for_url(re.compile(r".*patient_id=77.*"))
        results = page.inner_text("#audit-results")
        assert "patient.view" in results and "patient.merge" not in results
        page.screenshot(path=str(artifacts / "common-audit-search.png"), full_page=True)
    finally:
        context.close()
    assert AuditEvent.objects.filter(
        action="audit.view", actor=auditor.user, detail__filters__patient_id=77
    ).exists()
