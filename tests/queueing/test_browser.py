"""Issue #3 in a real browser: a doctor presses 下一个 and the waiting-room board shows the called
patient's masked name within a couple of seconds, speaks the Q-11 call CALL_REPEAT times, and
survives a network blip."""

from __future__ import annotations

import pytest
from django.test import Client

from yilian.queueing import services
from yilian.queueing.models import Queue

pytestmark = pytest.mark.browser

# Record what the board speaks (headless Chromium has no voices to play).
CAPTURE_SPEECH = """
window.__spoken = [];
if (window.speechSynthesis) {
  window.speechSynthesis.speak = function (u) { window.__spoken.push(u.text); };
}
"""


def _staff_context(browser, live_server, user, **kwargs):
    client = Client()
    client.force_login(user)
    context = browser.new_context(locale="zh-CN", **kwargs)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context


def test_doctor_calls_next_and_the_display_board_shows_it(
    live_server, flushable_db, browser, artifacts, today_clinic
):
    clinic = today_clinic
    queue = Queue.objects.get(session=clinic.session)
    for name in ("张三丰", "欧阳娜娜", "李四"):
        _booker, appointment = clinic.book(name=name)
        services.check_in(actor=clinic.nurse_actor, appointment_id=appointment.pk)
    _display, token = services.create_display(
        actor=clinic.nurse_actor, name="二楼内科候诊区", zone="二楼候诊区", organisation_id=clinic.org.pk
    )

    board_context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    board_context.add_init_script(CAPTURE_SPEECH)
    board = board_context.new_page()
    board.goto(f"{live_server.url}/queueing/display/{token}/")
    board.locator(".d-q").first.wait_for()
    assert board.locator(".d-next li").first.inner_text().replace("\n", " ").startswith("1号")
    assert "张三丰" not in board.locator("#grid").inner_text()

    doctor_context = _staff_context(
        browser, live_server, clinic.doctor.user, viewport={"width": 1366, "height": 900}
    )
    doctor = doctor_context.new_page()
    doctor.goto(f"{live_server.url}/queueing/doctor/")
    assert doctor.url.endswith(f"/queueing/doctor/{queue.pk}/")
    doctor.get_by_role("button", name="下一个").click()
    doctor.locator('[data-testid="current-seq"]').filter(has_text="1号").wait_for(timeout=5000)
    doctor.screenshot(path=str(artifacts / "queueing-doctor-screen.png"))

    now = board.locator(".d-now .nm").first
    now.filter(has_text="张*丰").wait_for(timeout=3000)
    board.locator("#banner").filter(has_text="请1号张*丰到3诊室就诊").wait_for(timeout=1000)
    assert "张三丰" not in board.locator("body").inner_text()
    board.wait_for_function("window.__spoken.length >= 3", timeout=3000)
    spoken = board.evaluate("window.__spoken")
    assert spoken[:3] == ["请1号张三丰到3诊室就诊", "请1号张三丰到3诊室就诊", "请2号欧阳娜娜准备"]
    board.screenshot(path=str(artifacts / "queueing-display-board.png"))

    # A network blip: the board keeps the last good state, shows the mark, and catches up after.
    board_context.set_offline(True)
    board.locator("#net.on").wait_for(timeout=4000)
    assert "张*丰" in board.locator(".d-now").first.inner_text()
    board.screenshot(path=str(artifacts / "queueing-display-offline.png"))
    doctor.get_by_role("button", name="过号").click()
    doctor.locator('[data-testid="current-seq"]').wait_for(state="detached", timeout=5000)
    doctor.get_by_role("button", name="下一个").click()
    doctor.locator('[data-testid="current-seq"]').filter(has_text="2号").wait_for(timeout=5000)
    board_context.set_offline(False)
    board.locator(".d-now .nm").first.filter(has_text="欧**娜").wait_for(timeout=8000)
    board.locator("#net.on").wait_for(state="detached", timeout=3000)  # the mark goes away again
    assert "张*丰" in board.locator(".d-missed").first.inner_text()
    board.screenshot(path=str(artifacts / "queueing-display-after-blip.png"))
    board_context.close()
    doctor_context.close()


def test_nurse_sets_priority_at_the_desk_and_the_patient_phone_shows_the_wait(
    live_server, flushable_db, browser, artifacts, today_clinic
):
    clinic = today_clinic
    queue = Queue.objects.get(session=clinic.session)
    patients = []
    for name in ("张三丰", "欧阳娜娜", "李四"):
        booker, appointment = clinic.book(name=name)
        services.check_in(actor=clinic.nurse_actor, appointment_id=appointment.pk)
        patients.append(booker)

    desk_context = _staff_context(
        browser, live_server, clinic.nurse.user, viewport={"width": 1366, "height": 900}
    )
    desk = desk_context.new_page()
    desk.goto(f"{live_server.url}/queueing/desk/{queue.pk}/")
    row = desk.locator("tr", has_text="李四")
    row.locator("select[name=evidence]").select_option("disability")
    row.locator("input[name=certificate]").fill("残疾人证 37068719800517")
    row.get_by_role("button", name="优先").click()
    desk.locator(".flash").filter(has_text="已设为优先").wait_for(timeout=5000)
    first_row = desk.locator("table.data tbody tr").first
    assert "李四" in first_row.inner_text() and "残" in first_row.inner_text()
    desk.screenshot(path=str(artifacts / "queueing-desk-queue.png"), full_page=True)

    phone_context = _staff_context(
        browser, live_server, patients[2].account.user, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone = phone_context.new_page()
    entry_id = queue.entries.get(patient=patients[1].patient).pk
    phone.goto(f"{live_server.url}/queueing/ticket/{entry_id}/")
    assert phone.locator(".tk").count() == 0  # another account's patient: not found
    phone_context.close()

    phone_context = _staff_context(
        browser, live_server, patients[1].account.user, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone = phone_context.new_page()
    phone.goto(f"{live_server.url}/queueing/ticket/{entry_id}/")
    text = phone.locator(".tk").inner_text()
    assert "前面还有" in text and "2" in text and "预计等待 16 分钟" in text
    phone.screenshot(path=str(artifacts / "queueing-phone-ticket.png"), full_page=True)
    phone_context.close()
    desk_context.close()
