"""Sign-in in a real browser: the patient's two-step phone + code page (HTMX) on a phone-sized
screen, and the staff page with a wrong password then the right one."""

from __future__ import annotations

import re

import pytest

from tests import factories as f
from tests.accounts.conftest import PASSWORD
from yilian.accounts.models import PatientAccount
from yilian.common.policy import DOCTOR, SECADMIN
from yilian.notifications.senders import ConsoleSmsSender

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("flushable_db")]

PHONE = "13812345678"


def test_patient_signs_in_with_phone_and_code(live_server, browser, artifacts, immediate_tasks):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/patient/login/")
        page.fill("#id_phone", "12345")
        page.click("button:has-text('获取验证码')")
        page.wait_for_selector("[data-code='INVALID_INPUT']")  # the 422 is shown in place
        page.fill("#id_phone", PHONE)
        page.screenshot(path=str(artifacts / "accounts-patient-login-phone.png"))
        page.click("button:has-text('获取验证码')")
        page.wait_for_selector("#id_code")
        page.wait_for_selector("[data-resend]:disabled", timeout=3000)  # the resend button counts down
        assert "138****5678" in page.content()
        code = re.search(r"\d{6}", ConsoleSmsSender.outbox[-1][1]).group(0)
        page.fill("#id_code", f"{(int(code) + 1) % 10**6:06d}")
        page.click("button:has-text('登录')")
        page.wait_for_selector("[data-code='OTP_INVALID']")
        page.screenshot(path=str(artifacts / "accounts-patient-login-code.png"))
        page.fill("#id_code", code)
        page.click("button:has-text('登录')")
        page.wait_for_url(re.compile(r".*/h5/$"))
        assert PatientAccount.objects.count() == 1
    finally:
        context.close()


def test_staff_signs_in_after_a_wrong_password(live_server, browser, artifacts):
    org = f.make_org("海阳县人民医院", "county_hospital", code="COUNTY01")
    f.make_staff(DOCTOR, org, username="lidoc", name="李医生")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/community/")
        page.fill("#id_username", "lidoc")
        page.fill("#id_password", "wrong-password")
        page.click("button:has-text('登录')")
        page.wait_for_selector("[data-code='INVALID_CREDENTIALS']")
        page.screenshot(path=str(artifacts / "accounts-staff-login-error.png"))
        page.fill("#id_password", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_url(re.compile(r".*/community/$"))
    finally:
        context.close()


def test_secadmin_issues_a_key_on_the_security_page(live_server, browser, artifacts):
    org = f.make_org("海阳县人民医院", "county_hospital", code="COUNTY01")
    f.make_org("留格庄镇卫生院", "township_centre", org, code="TS01")
    f.make_staff(SECADMIN, org, username="secadm", name="安全员")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/accounts/security/")
        page.fill("#id_username", "secadm")
        page.fill("#id_password", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_url(re.compile(r".*/accounts/security/$"))
        page.fill("#id_key_name", "检验 LIS")
        page.select_option("#id_key_org", "TS01")
        page.click("button:has-text('签发密钥')")
        secret = page.text_content("#new-key-secret", timeout=5000)
        assert re.fullmatch(r"yl_[0-9a-f]{8}_[0-9a-f]{48}", secret.strip())
        page.screenshot(path=str(artifacts / "accounts-security.png"), full_page=True)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('吊销')")
        page.wait_for_selector("text=已吊销")
    finally:
        context.close()
