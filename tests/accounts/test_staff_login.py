"""Staff sign-in: lockout (MLPS 2.0 login-failure handling), no user enumeration, audit, redirects,
sign-out and the session idle timeout."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests import factories as f
from tests.accounts.conftest import PASSWORD
from yilian.accounts import services
from yilian.accounts.errors import AccountLocked, InvalidCredentials
from yilian.accounts.models import User
from yilian.common.models import AuditEvent
from yilian.common.policy import DOCTOR, SECADMIN
from yilian.community.models import Staff

LOGIN = "/accounts/login/"


def post_login(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password, **extra})


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


@pytest.fixture
def doctor(staff_of):
    return staff_of(DOCTOR, username="wangyi")


def test_login_url_names():
    assert reverse("accounts:staff-login") == LOGIN
    assert reverse("accounts:logout") == "/accounts/logout/"


def test_login_page_renders_for_anonymous(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert "工作人员登录" in response.content.decode()


def test_right_password_signs_in_and_goes_to_patients(client, doctor):
    response = post_login(client, "wangyi", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/patients/"
    assert signed_in_user_id(client) == str(doctor.user.pk)
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor_id == doctor.user.pk


def test_login_goes_to_a_safe_next(client, doctor):
    response = post_login(client, "wangyi", PASSWORD, next="/community/")
    assert response["Location"] == "/community/"


def test_login_ignores_an_offsite_next(client, doctor):
    response = post_login(client, "wangyi", PASSWORD, next="https://evil.example/steal")
    assert response["Location"] == "/patients/"


def test_unknown_user_and_wrong_password_get_the_same_answer(client, doctor):
    unknown = post_login(client, "nobody", PASSWORD)
    wrong = post_login(client, "wangyi", "not-the-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.context["error"].code == wrong.context["error"].code == "INVALID_CREDENTIALS"
    assert str(unknown.context["error"].message) == str(wrong.context["error"].message)
    assert signed_in_user_id(client) is None


def test_every_failure_is_audited(client, doctor):
    post_login(client, "nobody", "x")
    post_login(client, "wangyi", "x")
    failures = AuditEvent.objects.filter(action="auth.login_failed").order_by("id")
    assert [e.detail["reason"] for e in failures] == ["unknown_user", "bad_password"]
    assert failures[1].object_id == str(doctor.user.pk)
    assert all(e.outcome == "refused" for e in failures)


def test_patient_accounts_cannot_sign_in_on_the_staff_page(client, db):
    account = f.make_patient_account()
    account.user.set_password(PASSWORD)  # even with a usable password
    account.user.save()
    response = post_login(client, account.user.username, PASSWORD)
    assert response.status_code == 401
    assert response.context["error"].code == "INVALID_CREDENTIALS"
    assert signed_in_user_id(client) is None


def test_disabled_staff_get_the_generic_answer(client, doctor):
    User.objects.filter(pk=doctor.user.pk).update(is_active=False)
    response = post_login(client, "wangyi", PASSWORD)
    assert response.context["error"].code == "INVALID_CREDENTIALS"


def test_staff_who_have_left_cannot_sign_in(client, doctor):
    Staff.objects.filter(pk=doctor.pk).update(is_active=False)
    response = post_login(client, "wangyi", PASSWORD)
    assert response.status_code == 401 and response.context["error"].code == "INVALID_CREDENTIALS"
    assert signed_in_user_id(client) is None


@override_settings(STAFF_LOCKOUT_THRESHOLD=3, STAFF_LOCKOUT_MINUTES=15)
def test_account_locks_at_the_threshold(doctor):
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            services.sign_in_staff(username="wangyi", password="wrong")
    doctor.user.refresh_from_db()
    assert doctor.user.failed_logins == 2 and doctor.user.locked_until is None

    with pytest.raises(AccountLocked) as exc:
        services.sign_in_staff(username="wangyi", password="wrong")
    doctor.user.refresh_from_db()
    assert doctor.user.locked_until > timezone.now() + timedelta(minutes=14)
    assert exc.value.extra["locked_until"]
    assert AuditEvent.objects.filter(action="auth.locked", object_id=str(doctor.user.pk)).count() == 1


@override_settings(STAFF_LOCKOUT_THRESHOLD=2)
def test_locked_account_is_refused_even_with_the_right_password(client, doctor):
    post_login(client, "wangyi", "wrong")
    post_login(client, "wangyi", "wrong")
    response = post_login(client, "wangyi", PASSWORD)
    assert response.status_code == 423
    error = response.context["error"]
    assert error.code == "ACCOUNT_LOCKED"
    until = timezone.localtime(User.objects.get(pk=doctor.user.pk).locked_until)
    assert until.strftime("%Y-%m-%d %H:%M") in str(error.message)  # says until when
    assert signed_in_user_id(client) is None
    refusal = AuditEvent.objects.filter(action="auth.login_failed").latest("id")
    assert refusal.detail["reason"] == "locked"


@override_settings(STAFF_LOCKOUT_THRESHOLD=2, STAFF_LOCKOUT_MINUTES=15)
def test_lock_ends_after_its_time(client, doctor, clock):
    post_login(client, "wangyi", "wrong")
    post_login(client, "wangyi", "wrong")
    assert post_login(client, "wangyi", PASSWORD).status_code == 423
    clock.advance(minutes=15, seconds=1)
    response = post_login(client, "wangyi", PASSWORD)
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(doctor.user.pk)


@override_settings(STAFF_LOCKOUT_THRESHOLD=3)
def test_success_resets_the_failure_count(doctor):
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            services.sign_in_staff(username="wangyi", password="wrong")
    services.sign_in_staff(username="wangyi", password=PASSWORD)
    doctor.user.refresh_from_db()
    assert doctor.user.failed_logins == 0
    # Two more failures do not lock: the count started again.
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            services.sign_in_staff(username="wangyi", password="wrong")
    doctor.user.refresh_from_db()
    assert doctor.user.locked_until is None


@override_settings(STAFF_LOCKOUT_THRESHOLD=3)
def test_failure_count_is_an_atomic_increment(doctor):
    """A stale in-memory count cannot be written back: the update is ``failed_logins + 1`` in SQL."""
    User.objects.filter(pk=doctor.user.pk).update(failed_logins=2)  # e.g. another worker's attempts
    with pytest.raises(AccountLocked):
        services.sign_in_staff(username="wangyi", password="wrong")


@override_settings(STAFF_LOCKOUT_THRESHOLD=1)
def test_failures_on_unknown_users_lock_nothing(doctor):
    with pytest.raises(InvalidCredentials):
        services.sign_in_staff(username="wangyi2", password="wrong")
    assert User.objects.filter(locked_until__isnull=False).count() == 0


def test_signed_in_staff_visiting_the_login_page_go_on(client, doctor):
    client.force_login(doctor.user)
    response = client.get(LOGIN)
    assert response.status_code == 302 and response["Location"] == "/patients/"


def test_logout_is_post_only(client, doctor):
    client.force_login(doctor.user)
    assert client.get("/accounts/logout/").status_code == 405
    assert signed_in_user_id(client) == str(doctor.user.pk)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.filter(action="auth.logout", actor_id=doctor.user.pk).exists()


def _age_session(client, seconds: float) -> None:
    session = client.session
    session["last_seen"] = time.time() - seconds
    session.save()


@override_settings(SESSION_IDLE_TIMEOUT=timedelta(minutes=30))
def test_session_idle_past_the_timeout_is_signed_out(client, doctor):
    client.force_login(doctor.user)
    client.get("/api/v1/accounts/me")  # stamps last_seen
    _age_session(client, 30 * 60 + 5)
    response = client.get("/api/v1/accounts/me")
    assert response.status_code == 401
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.filter(action="auth.session_timeout", actor_id=doctor.user.pk).exists()
    page = client.get(LOGIN)
    assert "自动退出" in page.content.decode()  # the sign-in page says why


@override_settings(SESSION_IDLE_TIMEOUT=timedelta(minutes=30))
def test_session_used_within_the_timeout_stays_signed_in(client, doctor):
    client.force_login(doctor.user)
    client.get("/api/v1/accounts/me")
    _age_session(client, 29 * 60)
    assert client.get("/api/v1/accounts/me").status_code == 200
    assert signed_in_user_id(client) == str(doctor.user.pk)


def test_security_administrator_lands_on_the_security_page(client, staff_of):
    """三员分立: the security administrator sees no patients, so starts on their own page."""
    staff_of(SECADMIN, username="secadm")
    response = post_login(client, "secadm", PASSWORD)
    assert response["Location"] == "/accounts/security/"


@override_settings(SESSION_IDLE_TIMEOUT=timedelta(minutes=30))
def test_background_requests_do_not_keep_an_idle_session_alive(client, doctor):
    """A page left open with a polling widget still signs out (X-Yilian-Background)."""
    client.force_login(doctor.user)
    client.get("/api/v1/accounts/me")
    _age_session(client, 20 * 60)
    assert client.get("/api/v1/accounts/me", HTTP_X_YILIAN_BACKGROUND="1").status_code == 200
    assert time.time() - client.session["last_seen"] >= 20 * 60  # the poll did not count
    client.get("/api/v1/accounts/me")
    assert time.time() - client.session["last_seen"] < 60  # a real request does
