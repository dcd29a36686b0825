"""Queueing API: the §0.1 error contract, who may do what, the board JSON and the ticket."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.queueing.conftest import at
from yilian.patients import card
from yilian.queueing import rules, services
from yilian.queueing.models import Queue, QueueEntry

pytestmark = pytest.mark.django_db

API = "/api/v1/queueing"


def queue_of(clinic) -> Queue:
    return Queue.objects.get(session=clinic.session)


def test_check_in_before_the_window_is_too_early_422(clinic, login):
    _booker, appointment = clinic.book()
    client = login(clinic.nurse)
    response = client.post(
        f"{API}/check-in", {"appointment_id": appointment.pk}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "TOO_EARLY"
    assert "opens_at" in response.json()


def test_check_in_with_another_patients_card_is_identity_mismatch_403(clinic, login):
    _b, appointment = clinic.book()
    token = card.make_token(f.issue_card(f.make_patient(clinic.org, name="李四")))
    client = login(clinic.nurse)
    response = client.post(
        f"{API}/check-in", {"appointment_id": appointment.pk, "token": token}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "IDENTITY_MISMATCH"
    assert not QueueEntry.objects.exists()


def test_patient_cannot_set_priority_403(clinic, client):
    booker, appointment = clinic.book()
    entry = clinic.sign_in(appointment).entry
    client.force_login(booker.account.user)
    response = client.post(
        f"{API}/tickets/{entry.pk}/priority",
        {"evidence": "pregnancy", "certificate": "母子健康手册"},
        content_type="application/json",
    )
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.lane == rules.NORMAL and entry.priority_level == 0


def test_priority_without_evidence_is_evidence_required_422(clinic, login):
    _b, appointment = clinic.book()
    entry = clinic.sign_in(appointment).entry
    client = login(clinic.nurse)
    response = client.post(
        f"{API}/tickets/{entry.pk}/priority", {"evidence": "disability"}, content_type="application/json"
    )
    assert response.status_code == 422 and response.json()["code"] == "EVIDENCE_REQUIRED"
    response = client.post(
        f"{API}/tickets/{entry.pk}/priority",
        {"evidence": "disability", "certificate": "残疾人证 37068719800517"},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["priority_tag"] == "残"


def test_voided_ticket_re_sign_in_is_ticket_voided_422(clinic, login):
    _b, appointment = clinic.book()
    entry = clinic.sign_in(appointment).entry
    QueueEntry.objects.filter(pk=entry.pk).update(state=rules.VOIDED, misses=4)
    client = login(clinic.nurse)
    response = client.post(f"{API}/tickets/{entry.pk}/re-sign-in")
    assert response.status_code == 422 and response.json()["code"] == "TICKET_VOIDED"


def test_doctor_calls_and_board_shows_masked_names(clinic, login):
    _b, appointment = clinic.book(name="张三丰")
    _b, appointment2 = clinic.book(name="李四")
    clinic.sign_in(appointment)
    clinic.sign_in(appointment2)
    client = login(clinic.doctor)
    response = client.post(f"{API}/queues/{queue_of(clinic).pk}/call-next")
    assert response.status_code == 200
    assert response.json()["called"]["name"] == "张三丰"  # the doctor's own screen: full names
    board = client.get(f"{API}/queues/{queue_of(clinic).pk}/board").json()
    assert board["current"]["name"] == "张*丰"
    assert board["next"][0]["name"] == "李*"
    assert board["last_call"]["text"] == "请1号张三丰到3诊室就诊"
    assert "张三丰" not in str(board["current"]) + str(board["next"]) + str(board["missed"])


def test_patient_sees_own_ticket_only(clinic, client):
    booker, appointment = clinic.book(name="张三丰")
    _other, appointment2 = clinic.book(name="李四")
    mine = clinic.sign_in(appointment).entry
    theirs = clinic.sign_in(appointment2).entry
    client.force_login(booker.account.user)
    response = client.get(f"{API}/tickets/{mine.pk}")
    assert response.status_code == 200
    assert response.json()["ahead"] == 0 and response.json()["seq"] == 1
    assert client.get(f"{API}/tickets/{theirs.pk}").status_code == 404


def test_nothing_to_call_answers_called_null(clinic, login):
    client = login(clinic.doctor)
    response = client.post(f"{API}/queues/{queue_of(clinic).pk}/call-next")
    assert response.status_code == 200 and response.json()["called"] is None


def test_recall_without_current_patient_is_a_conflict(clinic, login):
    client = login(clinic.doctor)
    response = client.post(f"{API}/queues/{queue_of(clinic).pk}/recall")
    assert response.status_code == 409 and response.json()["code"] == "NO_CURRENT_PATIENT"


def test_return_window_expired_via_api(clinic, login, monkeypatch):
    _b, appointment = clinic.book()
    entry = clinic.sign_in(appointment).entry
    services.call_next(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 0))
    services.send_for_exams(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 5))
    # The visit was on 3 December 2026; "now" in this run is long before, so move the visit back.
    QueueEntry.objects.filter(pk=entry.pk).update(visit_date="2020-01-01")
    client = login(clinic.nurse)
    response = client.post(f"{API}/tickets/{entry.pk}/return")
    assert response.status_code == 422 and response.json()["code"] == "RETURN_WINDOW_EXPIRED"
