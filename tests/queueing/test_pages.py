"""Queueing pages: desk scan, doctor buttons, display board (token, masking, 304) and the ticket."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories as f
from yilian.patients import card
from yilian.queueing import services
from yilian.queueing.models import Queue, QueueEntry

pytestmark = pytest.mark.django_db


def queue_of(clinic) -> Queue:
    return Queue.objects.get(session=clinic.session)


def sign_in_now(clinic, name="张三丰"):
    booker, appointment = clinic.book(name=name)
    return booker, services.check_in(actor=clinic.nurse_actor, appointment_id=appointment.pk).entry


def test_desk_scan_signs_the_patient_in(today_clinic, login):
    booker, appointment = today_clinic.book(name="张三丰")
    token = card.make_token(f.issue_card(booker.patient))
    client = login(today_clinic.nurse)
    response = client.post(reverse("queueing:desk"), {"token": token}, follow=True)
    assert response.status_code == 200
    assert "签到成功" in response.content.decode()
    assert QueueEntry.objects.get().appointment_id == appointment.pk


def test_desk_queue_page_lists_waiting_in_predicted_order(today_clinic, login):
    sign_in_now(today_clinic, "张三丰")
    sign_in_now(today_clinic, "李四")
    client = login(today_clinic.nurse)
    page = client.get(reverse("queueing:desk-queue", args=[queue_of(today_clinic).pk])).content.decode()
    assert page.index("张三丰") < page.index("李四")
    assert "重新签到" not in page or "过号患者" in page


def test_doctor_presses_next_and_the_panel_shows_the_patient(today_clinic, login):
    sign_in_now(today_clinic, "张三丰")
    client = login(today_clinic.doctor)
    url = reverse("queueing:doctor-action", args=[queue_of(today_clinic).pk, "next"])
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="current-seq">1号' in html and "张三丰" in html


def test_display_board_needs_its_secret_and_masks_names(today_clinic, client):
    sign_in_now(today_clinic, "张三丰")
    services.call_next(actor=today_clinic.doctor_actor, queue_id=queue_of(today_clinic).pk)
    _display, token = services.create_display(
        actor=today_clinic.nurse_actor,
        name="3诊室屏",
        room_id=today_clinic.room.pk,
        organisation_id=today_clinic.org.pk,
    )
    assert client.get("/queueing/display/not-the-secret/board.json").status_code == 404
    response = client.get(f"/queueing/display/{token}/board.json")
    assert response.status_code == 200
    data = response.json()
    assert data["queues"][0]["current"]["name"] == "张*丰"
    assert data["last_call"]["screen_text"] == "请1号张*丰到3诊室就诊"
    assert data["last_call"]["text"] == "请1号张三丰到3诊室就诊"  # spoken, never shown
    etag = response["ETag"]
    assert client.get(f"/queueing/display/{token}/board.json", HTTP_IF_NONE_MATCH=etag).status_code == 304
    services.recall(actor=today_clinic.doctor_actor, queue_id=queue_of(today_clinic).pk)
    assert client.get(f"/queueing/display/{token}/board.json", HTTP_IF_NONE_MATCH=etag).status_code == 200
    page = client.get(f"/queueing/display/{token}/").content.decode()
    assert "speechSynthesis" in page and "张三丰" not in page.split("board-initial")[0]


def test_patient_ticket_page_shows_ahead_and_only_own(today_clinic, client):
    sign_in_now(today_clinic, "李四")
    booker, entry = sign_in_now(today_clinic, "张三丰")
    _other, other_entry = sign_in_now(today_clinic, "王五")
    client.force_login(booker.account.user)
    page = client.get(reverse("queueing:ticket", args=[entry.pk])).content.decode()
    assert "前面还有<b>1</b>人" in page and "预计等待 8 分钟" in page
    assert client.get(reverse("queueing:ticket", args=[other_entry.pk])).status_code == 404


def test_patient_signs_in_on_the_phone_and_lands_on_the_ticket(today_clinic, client):
    booker, appointment = today_clinic.book(name="张三丰")
    _other, other_appointment = today_clinic.book(name="李四")
    client.force_login(booker.account.user)
    page = client.get(reverse("queueing:my-tickets")).content.decode()
    assert "我已到院，签到" in page and "李四" not in page
    response = client.post(reverse("queueing:phone-sign-in", args=[appointment.pk]))
    entry = QueueEntry.objects.get(appointment=appointment)
    assert response.status_code == 302 and response["Location"] == reverse("queueing:ticket", args=[entry.pk])
    assert client.post(reverse("queueing:phone-sign-in", args=[other_appointment.pk])).status_code == 404
    assert not QueueEntry.objects.filter(appointment=other_appointment).exists()
