"""Patient sign-in by phone + SMS code (短信验证码): validation, expiry, single use, attempts,
rate limits, account creation on first sign-in, and the two-step H5 page."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from tests import factories as f
from yilian.accounts import services
from yilian.accounts.errors import CodeAttemptsExceeded, CodeExpired, CodeInvalid, CodeRateLimited
from yilian.accounts.models import OneTimeCode, PatientAccount, User
from yilian.common import crypto
from yilian.common.errors import InvalidInput
from yilian.common.models import AuditEvent

PHONE = "13800138000"
OTHER = "13900139000"
NO_INTERVAL = override_settings(OTP_MIN_INTERVAL_SECONDS=0)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- the services --------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["12800138000", "1380013800", "abc", "010-12345678", ""])
def test_non_mainland_mobile_number_is_refused_with_422(db, phone):
    with pytest.raises(InvalidInput) as exc:
        services.request_code(phone=phone, ip="10.0.0.1")
    assert exc.value.status == 422 and exc.value.field == "phone"
    assert "11 位" in str(exc.value.message)
    assert not OneTimeCode.objects.exists()


def test_code_is_six_digits_sent_by_sms_and_stored_only_hashed(db, send_code, outbox):
    code = send_code(PHONE)
    assert len(code) == 6 and code.isdigit()
    otp = OneTimeCode.objects.get()
    assert otp.phone_hash == crypto.blind_index("phone", PHONE)
    assert code not in otp.code_hash and len(otp.code_hash) == 64
    assert outbox == [(PHONE, outbox[0][1])]


def test_right_code_signs_in(db, send_code):
    code = send_code(PHONE)
    user = services.verify_code(phone=PHONE, code=code, ip="10.0.0.1")
    assert user.kind == User.Kind.PATIENT


def test_code_works_only_once(db, send_code):
    code = send_code(PHONE)
    services.verify_code(phone=PHONE, code=code, ip="10.0.0.1")
    with pytest.raises(CodeExpired):
        services.verify_code(phone=PHONE, code=code, ip="10.0.0.1")


@override_settings(OTP_TTL_SECONDS=300)
def test_code_expires(db, send_code, clock):
    code = send_code(PHONE)
    clock.advance(seconds=301)
    with pytest.raises(CodeExpired):
        services.verify_code(phone=PHONE, code=code, ip="10.0.0.1")
    assert not PatientAccount.objects.exists()


@override_settings(OTP_TTL_SECONDS=300)
def test_code_still_works_just_before_expiry(db, send_code, clock):
    code = send_code(PHONE)
    clock.advance(seconds=290)
    assert services.verify_code(phone=PHONE, code=code, ip="10.0.0.1")


@override_settings(OTP_MAX_ATTEMPTS=3)
def test_wrong_codes_use_up_the_attempts_then_even_the_right_code_fails(db, send_code):
    code = send_code(PHONE)
    with pytest.raises(CodeInvalid) as first:
        services.verify_code(phone=PHONE, code=wrong(code), ip="10.0.0.1")
    assert first.value.extra["attempts_left"] == 2
    with pytest.raises(CodeInvalid):
        services.verify_code(phone=PHONE, code=wrong(code), ip="10.0.0.1")
    with pytest.raises(CodeAttemptsExceeded):
        services.verify_code(phone=PHONE, code=wrong(code), ip="10.0.0.1")
    with pytest.raises(CodeAttemptsExceeded):
        services.verify_code(phone=PHONE, code=code, ip="10.0.0.1")
    assert OneTimeCode.objects.get().attempts == 3
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 4


def test_a_newer_code_supersedes_the_older(db, send_code, clock):
    old = send_code(PHONE)
    clock.advance(seconds=61)
    new = send_code(PHONE)
    if old != new:
        with pytest.raises(CodeInvalid):
            services.verify_code(phone=PHONE, code=old, ip="10.0.0.1")
    assert services.verify_code(phone=PHONE, code=new, ip="10.0.0.1")


def test_malformed_code_is_a_422_and_costs_no_attempt(db, send_code):
    send_code(PHONE)
    with pytest.raises(InvalidInput) as exc:
        services.verify_code(phone=PHONE, code="12ab", ip="10.0.0.1")
    assert exc.value.field == "code"
    assert OneTimeCode.objects.get().attempts == 0


def test_no_code_requested_means_expired(db):
    with pytest.raises(CodeExpired):
        services.verify_code(phone=PHONE, code="123456", ip="10.0.0.1")


@override_settings(OTP_MIN_INTERVAL_SECONDS=60)
def test_second_code_within_the_interval_is_refused_with_the_wait(db, send_code, clock):
    send_code(PHONE)
    clock.advance(seconds=20)
    with pytest.raises(CodeRateLimited) as exc:
        services.request_code(phone=PHONE, ip="10.0.0.1")
    assert exc.value.status == 429 and exc.value.code == "RATE_LIMITED"
    assert 39 <= exc.value.extra["retry_after"] <= 40
    assert "秒" in str(exc.value.message)
    clock.advance(seconds=41)
    send_code(PHONE)  # allowed again
    assert OneTimeCode.objects.count() == 2


@NO_INTERVAL
@override_settings(OTP_MAX_PER_PHONE_PER_HOUR=3)
def test_per_phone_hourly_limit(db, send_code, clock):
    for _ in range(3):
        send_code(PHONE, ip="10.0.0.1")
        clock.advance(minutes=10)
    with pytest.raises(CodeRateLimited) as exc:
        services.request_code(phone=PHONE, ip="10.0.0.2")  # another address does not help
    assert exc.value.extra["limit"] == "phone"
    assert exc.value.extra["retry_after"] == 30 * 60  # until the first code is an hour old
    send_code(OTHER, ip="10.0.0.1")  # other phones are not affected
    clock.advance(minutes=30, seconds=1)
    send_code(PHONE)


@NO_INTERVAL
@override_settings(OTP_MAX_PER_IP_PER_HOUR=3)
def test_per_address_hourly_limit(db, send_code, clock):
    for n in range(3):
        send_code(f"1380013800{n}", ip="10.9.9.9")
    with pytest.raises(CodeRateLimited) as exc:
        services.request_code(phone="13800138009", ip="10.9.9.9")
    assert exc.value.extra["limit"] == "ip"
    send_code("13800138009", ip="10.9.9.8")  # another address is not affected
    clock.advance(hours=1, seconds=1)
    send_code("13800138008", ip="10.9.9.9")


def test_refused_request_sends_nothing(db, send_code, outbox):
    send_code(PHONE)
    with pytest.raises(CodeRateLimited):
        services.request_code(phone=PHONE, ip="10.0.0.1")
    assert len(outbox) == 1 and OneTimeCode.objects.count() == 1


def test_first_sign_in_creates_the_account_and_later_ones_reuse_it(db, send_code, clock):
    user = services.verify_code(phone=PHONE, code=send_code(PHONE), ip="10.0.0.1")
    account = PatientAccount.objects.get()
    assert account.user == user and account.phone == PHONE
    assert user.username.startswith("p-") and not user.has_usable_password()
    clock.advance(seconds=61)
    again = services.verify_code(phone=PHONE, code=send_code(PHONE), ip="10.0.0.1")
    assert again == user
    assert PatientAccount.objects.count() == 1 and User.objects.filter(kind="patient").count() == 1
    logins = AuditEvent.objects.filter(action="auth.login").order_by("id")
    assert [e.detail["new_account"] for e in logins] == [True, False]
    assert all(e.actor_id == user.pk for e in logins)


def test_existing_account_is_found_by_its_phone(db, send_code):
    account = f.make_patient_account(PHONE)
    user = services.verify_code(phone=f"+86 {PHONE}", code=send_code(PHONE), ip="10.0.0.1")
    assert user == account.user


def test_disabled_patient_account_cannot_sign_in(db, send_code):
    account = f.make_patient_account(PHONE)
    User.objects.filter(pk=account.user.pk).update(is_active=False)
    with pytest.raises(services.AccountDisabled):
        services.verify_code(phone=PHONE, code=send_code(PHONE), ip="10.0.0.1")


# --- the H5 pages --------------------------------------------------------------------------


HX = {"HTTP_HX_REQUEST": "true"}


def test_patient_login_url_and_first_step(client, db):
    assert reverse("accounts:patient-login") == "/accounts/patient/login/"
    response = client.get("/accounts/patient/login/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="phone"' in body and "获取验证码" in body
    assert 'name="viewport"' in body  # phone-sized page


def test_send_code_step_shows_the_code_form_fragment(client, db, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:patient-send-code"), {"phone": PHONE}, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="code"' in body and "138****8000" in body
    assert "<html" not in body  # a fragment for HTMX
    assert PHONE not in body.replace(f'value="{PHONE}"', "")  # shown masked (kept only in the form)
    assert len(outbox) == 1


def test_bad_phone_on_the_page_says_why(client, db):
    response = client.post(reverse("accounts:patient-send-code"), {"phone": "123"}, **HX)
    assert response.status_code == 422
    assert "11 位" in response.content.decode()


def test_rate_limited_resend_shows_the_wait(client, db, send_code):
    send_code(PHONE)
    response = client.post(reverse("accounts:patient-send-code"), {"phone": PHONE, "resend": "1"}, **HX)
    assert response.status_code == 429
    body = response.content.decode()
    assert 'data-code="RATE_LIMITED"' in body and 'name="code"' in body  # still on the code step


def test_verify_step_signs_in_and_goes_to_h5_home(client, db, send_code):
    code = send_code(PHONE)
    response = client.post(reverse("accounts:patient-verify"), {"phone": PHONE, "code": code}, **HX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/h5/"
    assert client.session["_auth_user_id"] == str(PatientAccount.objects.get().user_id)


def test_verify_step_without_htmx_redirects(client, db, send_code):
    code = send_code(PHONE)
    response = client.post(reverse("accounts:patient-verify"), {"phone": PHONE, "code": code})
    assert response.status_code == 302 and response["Location"] == "/h5/"


def test_wrong_code_on_the_page_says_how_many_tries_are_left(client, db, send_code):
    code = send_code(PHONE)
    response = client.post(reverse("accounts:patient-verify"), {"phone": PHONE, "code": wrong(code)}, **HX)
    assert response.status_code == 400
    assert "还可再试 4 次" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_patient_signs_out_to_the_patient_login(client, db, send_code):
    code = send_code(PHONE)
    client.post(reverse("accounts:patient-verify"), {"phone": PHONE, "code": code})
    response = client.post(reverse("accounts:logout"))
    assert response["Location"] == "/accounts/patient/login/"


def test_purge_forgets_codes_older_than_a_day_only(db, send_code, clock):
    send_code(PHONE)
    clock.advance(hours=23)
    send_code(OTHER)
    clock.advance(hours=1, seconds=1)
    call_command("purge_codes", stdout=io.StringIO())
    assert list(OneTimeCode.objects.values_list("phone_hash", flat=True)) == [
        crypto.blind_index("phone", OTHER)
    ]


def test_asking_again_right_after_a_code_goes_to_the_code_step(client, db, send_code):
    """A reloaded page must not strand the patient: the code already sent is still the one to enter."""
    send_code(PHONE)
    response = client.post(reverse("accounts:patient-send-code"), {"phone": PHONE}, **HX)
    assert response.status_code == 429
    body = response.content.decode()
    assert 'name="code"' in body and 'data-code="RATE_LIMITED"' in body


def test_patient_sent_to_sign_in_from_a_page_goes_back_to_it(client, db, send_code):
    page = client.get("/accounts/patient/login/?next=/h5/card/").content.decode()
    assert 'name="next" value="/h5/card/"' in page
    with override_settings(
        TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    ):
        step = client.post(reverse("accounts:patient-send-code"), {"phone": PHONE, "next": "/h5/card/"}, **HX)
    assert step.content.decode().count('name="next" value="/h5/card/"') == 2  # verify and resend forms
    code = send_code(OTHER)
    response = client.post(
        reverse("accounts:patient-verify"), {"phone": OTHER, "code": code, "next": "/h5/card/"}, **HX
    )
    assert response["HX-Redirect"] == "/h5/card/"


def test_offsite_next_is_ignored_for_patients(client, db, send_code):
    code = send_code(PHONE)
    response = client.post(
        reverse("accounts:patient-verify"), {"phone": PHONE, "code": code, "next": "//evil.example/"}
    )
    assert response["Location"] == "/h5/"
