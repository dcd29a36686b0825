"""Staff change their own password: checked against the password rules, audited, session kept."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import PASSWORD
from yilian.accounts.models import User
from yilian.common.models import AuditEvent
from yilian.common.policy import DOCTOR

URL = "/accounts/password/"
NEW = "Haiyang-County-2027!"


@pytest.fixture
def doctor(staff_of):
    return staff_of(DOCTOR, username="wangyi")


def change(client, current=PASSWORD, new=NEW, confirm=None):
    return client.post(URL, {"current": current, "new": new, "confirm": NEW if confirm is None else confirm})


def test_password_is_changed_and_the_session_kept(login, doctor):
    client = login(doctor)
    assert client.get(URL).status_code == 200
    response = change(client)
    assert response.status_code == 302
    user = User.objects.get(pk=doctor.user.pk)
    assert user.check_password(NEW) and user.password.startswith("argon2")
    assert client.get("/api/v1/accounts/me").status_code == 200  # still signed in
    assert AuditEvent.objects.filter(action="auth.password_changed", actor_id=user.pk).exists()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"current": "wrong"}, "current"),
        ({"confirm": "Something-else-2027"}, "confirm"),
        ({"new": "1234567890123", "confirm": "1234567890123"}, "new"),  # all digits
        ({"new": "short", "confirm": "short"}, "new"),
        ({"new": PASSWORD, "confirm": PASSWORD}, "new"),  # unchanged
    ],
)
def test_bad_changes_are_refused_and_say_which_field(login, doctor, kwargs, field):
    response = change(login(doctor), **kwargs)
    assert response.status_code == 422
    assert response.context["error"].field == field
    assert User.objects.get(pk=doctor.user.pk).check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="auth.password_change_refused").count() == 1


def test_patients_and_anonymous_cannot_use_the_staff_password_page(client, db):
    from tests import factories as f

    assert client.get(URL).status_code == 302  # to sign in
    client.force_login(f.make_patient_account().user)
    assert client.get(URL).status_code == 403
