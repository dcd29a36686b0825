"""The inbox: pages, HTMX mark-read, API; a user only ever touches their own messages."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories as f
from yilian.common import policy
from yilian.notifications.models import InboxMessage


def message_for(user, title="检查报告已出", read=False) -> InboxMessage:
    return InboxMessage.objects.create(
        recipient=user,
        title=title,
        body="您的血常规报告已出，请查看。",
        created_at=timezone.now(),
        read_at=timezone.now() if read else None,
    )


@pytest.fixture
def doctor(staff_of):
    return staff_of(policy.DOCTOR)


@pytest.fixture
def patient_account(db):
    return f.make_patient_account("13600002222")


# --- API ----------------------------------------------------------------------------------------


def test_api_lists_only_my_messages_newest_first(client, login, doctor, staff_of):
    other = staff_of(policy.NURSE)
    message_for(doctor.user, "第一条")
    message_for(doctor.user, "第二条", read=True)
    message_for(other.user, "别人的")
    login(doctor)
    response = client.get("/api/v1/notifications/inbox")
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["unread"]) == (2, 1)
    assert [m["title"] for m in body["items"]] == ["第二条", "第一条"]


def test_api_unread_filter(client, login, doctor):
    message_for(doctor.user, "未读")
    message_for(doctor.user, "已读", read=True)
    login(doctor)
    body = client.get("/api/v1/notifications/inbox?unread=true").json()
    assert [m["title"] for m in body["items"]] == ["未读"]


def test_api_mark_read(client, login, doctor):
    message = message_for(doctor.user)
    login(doctor)
    response = client.post(f"/api/v1/notifications/inbox/{message.pk}/read")
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    message.refresh_from_db()
    assert message.read_at is not None


def test_api_another_users_message_is_not_found(client, login, doctor, staff_of):
    other = staff_of(policy.NURSE)
    theirs = message_for(other.user)
    login(doctor)
    response = client.post(f"/api/v1/notifications/inbox/{theirs.pk}/read")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_api_anonymous_is_refused(client, db):
    assert client.get("/api/v1/notifications/inbox").status_code == 401


def test_api_patient_uses_own_endpoint(client, login, patient_account, doctor):
    mine = message_for(patient_account.user)
    staffs = message_for(doctor.user)
    login(patient_account.user)
    assert client.get("/api/v1/notifications/inbox").status_code == 403
    assert client.get("/api/v1/notifications/mine").json()["count"] == 1
    assert client.post(f"/api/v1/notifications/mine/{staffs.pk}/read").status_code == 404
    assert client.post(f"/api/v1/notifications/mine/{mine.pk}/read").status_code == 200


def test_api_mark_all_read_touches_only_mine(client, login, doctor, staff_of):
    other = staff_of(policy.NURSE)
    message_for(doctor.user)
    message_for(doctor.user)
    theirs = message_for(other.user)
    login(doctor)
    assert client.post("/api/v1/notifications/inbox/read-all").json() == {"marked": 2}
    theirs.refresh_from_db()
    assert theirs.read_at is None


# --- Pages --------------------------------------------------------------------------------------


def test_patient_inbox_page_shows_my_messages(client, login, patient_account, doctor):
    message_for(patient_account.user, "预约成功")
    message_for(doctor.user, "医生的消息")
    login(patient_account.user)
    response = client.get(reverse("notifications:patient-inbox"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "预约成功" in page and "医生的消息" not in page


def test_patient_inbox_sends_anonymous_visitor_to_patient_sign_in(client, db):
    response = client.get(reverse("notifications:patient-inbox"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:patient-login"))


def test_htmx_mark_read_returns_the_row_and_new_count(client, login, patient_account):
    message = message_for(patient_account.user)
    message_for(patient_account.user)
    login(patient_account.user)
    response = client.post(
        reverse("notifications:patient-mark-read", args=[message.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert f'id="msg-{message.pk}"' in fragment and "msg read" in fragment
    assert 'id="unread-count"' in fragment and ">1<" in fragment
    message.refresh_from_db()
    assert message.read_at is not None


def test_page_mark_read_of_another_users_message_is_404(client, login, patient_account):
    other = f.make_patient_account("13600003333")
    theirs = message_for(other.user)
    login(patient_account.user)
    response = client.post(reverse("notifications:patient-mark-read", args=[theirs.pk]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_staff_unread_badge(client, login, doctor):
    message_for(doctor.user)
    login(doctor)
    assert ">1<" in client.get(reverse("notifications:unread-badge")).content.decode()


def test_staff_mark_all_read_page(client, login, doctor):
    message_for(doctor.user)
    login(doctor)
    response = client.post(
        reverse("notifications:mark-all-read"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inbox-list"
    )
    assert response.status_code == 200
    assert "暂无消息" not in response.content.decode()
    assert not InboxMessage.objects.filter(read_at__isnull=True).exists()


def test_mark_read_needs_post(client, login, doctor):
    message = message_for(doctor.user)
    login(doctor)
    assert client.get(reverse("notifications:mark-read", args=[message.pk])).status_code == 405


def test_api_inbox_query_count_does_not_grow_with_messages(client, login, doctor):
    login(doctor)
    message_for(doctor.user)
    client.get("/api/v1/notifications/inbox")
    with CaptureQueriesContext(connection) as few:  # after a first call warmed the session
        client.get("/api/v1/notifications/inbox")
    for _ in range(15):
        message_for(doctor.user)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get("/api/v1/notifications/inbox").json()["items"]) == 16
    assert len(many) == len(few) <= 12


def test_mark_read_without_javascript_returns_to_the_inbox(client, login, patient_account):
    message = message_for(patient_account.user)
    login(patient_account.user)
    response = client.post(reverse("notifications:patient-mark-read", args=[message.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:patient-inbox")
