"""Issue #2 in a real browser: the patient's self-refreshing e-health card, and the desk scan.

(a) A patient signs in with phone + SMS code on a phone-sized screen, opens the card, sees the QR,
    and watches it refresh on its own.
(b) A staff member signs in, opens the scan page, a "scanner" types the token and presses Enter,
    and the patient's profile opens.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests import factories as f
from tests.helpers import patient_signs_in, phone_context
from yilian.accounts.selectors import actor_for_user
from yilian.common import policy
from yilian.patients import card

pytestmark = pytest.mark.browser

PHONE = "13812345678"


DECODE_SVG = """async (svg) => {
  const img = new Image();
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 400;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, 400, 400);
  ctx.drawImage(img, 20, 20, 360, 360);
  const code = jsQR(ctx.getImageData(0, 0, 400, 400).data, 400, 400);
  return code ? code.data : null;
}"""


def _decode_qr_on_screen(page, base_url: str) -> str:
    """Read the QR the phone shows, as a camera would (jsQR, the scan page's own decoder)."""
    page.add_script_tag(url=f"{base_url}/static/vendor/jsQR.js")
    svg = page.locator("#qr-box .qr svg").evaluate("el => new XMLSerializer().serializeToString(el)")
    token = page.evaluate(DECODE_SVG, svg)
    assert token, "the QR on screen could not be decoded"
    return token


def test_patient_card_qr_refreshes_on_its_own(
    live_server, flushable_db, browser, artifacts, community, settings, immediate_tasks
):
    settings.CARD_TOKEN_REFRESH_SECONDS = 4
    account = f.make_patient_account(PHONE)
    me = f.make_patient(community.village, name="王建军", phone=PHONE)
    f.issue_card(me)
    f.link(account, me, "self")
    mother = f.make_patient(community.village, name="赵玉梅", sex="F")
    f.issue_card(mother)
    f.link(account, mother, "parent")

    context = phone_context(browser)
    page = context.new_page()
    try:
        patient_signs_in(page, live_server.url, PHONE)
        assert page.locator(".member-card").count() == 2
        page.screenshot(path=str(artifacts / "patient_home.png"), full_page=True)

        page.locator(".member-card", has_text="王*军").get_by_role("link", name="出示健康卡").click()
        page.wait_for_url(re.compile(rf".*/h5/card/{me.pk}/$"))
        qr = page.locator("#qr-box .qr svg")
        qr.wait_for(state="visible")
        box = qr.bounding_box()
        assert box and box["width"] >= 200  # big enough for a desk scanner
        first = page.locator("#qr-box .qr").get_attribute("data-nonce")
        page.wait_for_function(
            "n => { const q = document.querySelector('#qr-box .qr'); return q && q.dataset.nonce !== n; }",
            arg=first,
            timeout=20_000,
        )
        page.locator("#qr-box .qr svg").wait_for(state="visible")
        assert "秒后自动刷新" in page.locator(".countdown").inner_text()
        page.screenshot(path=str(artifacts / "patient_card.png"), full_page=True)

        # A desk scans the code on screen: the phone shows at once that it worked, with a new code.
        settings.CARD_TOKEN_REFRESH_SECONDS = 300
        before = page.locator("#qr-box .qr").get_attribute("data-nonce")  # read before the click races it
        page.click("#qr-box a:has-text('立即刷新')")
        page.wait_for_function(
            "n => { const q = document.querySelector('#qr-box .qr'); return q && q.dataset.nonce !== n; }",
            arg=before,
        )
        shown = page.locator("#qr-box .qr").get_attribute("data-nonce")
        token = _decode_qr_on_screen(page, live_server.url)
        assert card.token_parts(token)[2] == shown
        nurse = actor_for_user(f.make_staff(policy.NURSE, community.township).user)
        assert card.verify_token(token, actor=nurse) == me
        page.wait_for_selector("#qr-box .scanned", timeout=10_000)
        assert page.locator("#qr-box .qr").get_attribute("data-nonce") != shown
        page.screenshot(path=str(artifacts / "patient_card_scanned.png"))

        # Signed out meanwhile (here: the cookies are gone): the page goes to sign-in, not a dead code.
        context.clear_cookies()
        page.wait_for_url(re.compile(r".*/accounts/patient/login/.*"), timeout=10_000)
    finally:
        context.close()


def test_staff_scans_a_card_and_lands_on_the_profile(
    live_server, flushable_db, browser, artifacts, community
):
    nurse = f.make_staff(policy.NURSE, community.township, username="scan.nurse", name="李护士")
    patient = f.make_patient(community.village, name="钱多多")
    health_card = f.issue_card(patient)
    token = card.make_token(health_card)

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", nurse.user.username)
        page.fill("#id_password", "Yilian-test-2026")
        page.click("button:has-text('登录')")
        page.wait_for_load_state()
        page.goto(f"{live_server.url}/patients/scan/")
        field = page.locator("#scan-token")
        assert field.evaluate("el => el === document.activeElement")  # the scanner types here
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf".*/patients/{patient.pk}/$"))
        assert "钱" in page.content()
        page.screenshot(path=str(artifacts / "staff_scan.png"), full_page=True)

        # The same code again (a photo of the screen, a second scan) is refused in plain Chinese.
        page.goto(f"{live_server.url}/patients/scan/")
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        page.wait_for_selector("#scan-error")
        assert "已被扫描使用过" in page.locator("#scan-error").inner_text()
        page.screenshot(path=str(artifacts / "staff_scan_replayed.png"), full_page=True)
    finally:
        context.close()


def test_patient_adds_a_child_with_consent(
    live_server, flushable_db, browser, artifacts, community, immediate_tasks
):
    account = f.make_patient_account(PHONE)
    me = f.make_patient(community.village, name="孙红梅", sex="F", phone=PHONE)
    f.issue_card(me)
    f.link(account, me, "self")
    child_id = f.valid_id(date(2020, 9, 1), "M")

    context = phone_context(browser)
    page = context.new_page()
    try:
        patient_signs_in(page, live_server.url, PHONE)
        page.get_by_role("link", name="就诊人管理").click()
        page.wait_for_url(re.compile(r".*/h5/family/$"))
        page.click("summary:has-text('填写就诊人信息')")
        page.fill("#id_name", "孙小乐")
        page.fill("#id_id_number", child_id)
        page.select_option("#id_relationship", "child")
        assert page.locator("#non-resident-fields").is_hidden()  # sex and birth date come from the ID
        page.click("button:has-text('确认添加')")
        # Without consent the form stays, with the reason next to the checkbox.
        page.wait_for_selector(".field-error")
        assert "授权书" in page.locator(".field-error").first.inner_text()
        page.screenshot(path=str(artifacts / "patient_family_form.png"), full_page=True)
        page.fill("#id_id_number", child_id)
        page.check("#id_consent")
        page.click("button:has-text('确认添加')")
        page.wait_for_selector(".flash li")
        assert "已添加就诊人" in page.locator(".flash").inner_text()
        member = page.locator(".member-card", has_text="孙*乐")
        assert "子女" in member.inner_text() and "监护" in member.inner_text()
        page.screenshot(path=str(artifacts / "patient_family.png"), full_page=True)
    finally:
        context.close()
