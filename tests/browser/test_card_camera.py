"""The scan page's camera path: Chromium's fake camera films a health-card QR, the page decodes it
(``BarcodeDetector`` where the browser has one, else the vendored jsQR) and opens the profile.

Debian's headless Chromium on Linux has no ``BarcodeDetector``, so this exercises the jsQR path
served from ``/static/vendor/jsQR.js`` — the one hospital PCs without a scanner gun will use."""

from __future__ import annotations

import os
import re

import pytest
import segno

from tests import factories as f
from yilian.common import policy
from yilian.patients import card

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 640, 480


def write_y4m(path, text: str) -> None:
    """One 640×480 frame (YUV 4:2:0) showing ``text`` as a QR code, as a phone screen would."""
    matrix = [list(row) for row in segno.make(text, error="m", micro=False).matrix_iter(scale=1, border=4)]
    size = len(matrix)
    module = min(WIDTH, HEIGHT) * 8 // 10 // size
    left, top = (WIDTH - size * module) // 2, (HEIGHT - size * module) // 2
    luma = bytearray([200]) * (WIDTH * HEIGHT)  # a grey desk around the white code
    for y in range(size * module):
        row = matrix[y // module]
        base = (top + y) * WIDTH + left
        for x in range(size * module):
            luma[base + x] = 16 if row[x // module] else 235
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(3):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)


def test_the_camera_reads_a_health_card_and_opens_the_profile(
    live_server, flushable_db, artifacts, tmp_path, community
):
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    nurse = f.make_staff(policy.NURSE, community.village, username="camera.nurse", name="周护士")
    patient = f.make_patient(community.village, name="吴奶奶", sex="F")
    token = card.make_token(f.issue_card(patient))
    video = tmp_path / "card.y4m"
    write_y4m(video, token)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("YILIAN_CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
            context.grant_permissions(["camera"], origin=live_server.url)
            page = context.new_page()
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("#id_username", nurse.user.username)
            page.fill("#id_password", "Yilian-test-2026")
            page.click("button:has-text('登录')")
            page.wait_for_load_state()
            page.goto(f"{live_server.url}/patients/scan/")
            page.click("#camera-start")
            page.wait_for_url(re.compile(rf".*/patients/{patient.pk}/$"), timeout=20_000)
            page.screenshot(path=str(artifacts / "staff_scan_camera.png"))
        finally:
            browser.close()
