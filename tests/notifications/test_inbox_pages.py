"""Staff inbox pages that render the full staff layout (base.html)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.notifications.test_inbox import message_for
from yilian.common import policy


@pytest.fixture
def doctor(staff_of):
    return staff_of(policy.DOCTOR)


def test_staff_cannot_open_the_patient_inbox(client, login, doctor):
    login(doctor)
    assert client.get(reverse("notifications:patient-inbox")).status_code == 403


def test_staff_inbox_page_lists_my_messages(client, login, doctor):
    message_for(doctor.user, "会诊邀请")
    login(doctor)
    response = client.get(reverse("notifications:inbox"))
    assert response.status_code == 200
    assert "会诊邀请" in response.content.decode()
