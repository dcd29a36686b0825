"""Every write of accounts: staff sign-in with lockout, patient sign-in by SMS code, API keys, unlock.

Rules:
* Staff sign-in (MLPS 2.0, GB/T 22239-2019 §8.1.4.1 a/b "login-failure handling"): after
  ``STAFF_LOCKOUT_THRESHOLD`` consecutive failures the account is locked for
  ``STAFF_LOCKOUT_MINUTES``; counters move with ``F()`` expressions and conditional updates, so
  concurrent attempts cannot dodge the count; one message for unknown user and wrong password.
* Patient sign-in by SMS code (短信验证码): 6 digits from ``secrets``, stored only as a keyed hash,
  ``OTP_TTL_SECONDS`` to live, single use, ``OTP_MAX_ATTEMPTS`` wrong tries, limits per phone, per
  address and between two codes, counted from the ``OneTimeCode`` table so that every process
  sees the same counts.
* API keys (接口密钥) for integrating systems, scoped to an organisation subtree; only a SHA-256
  is stored and the full key is shown once.
* Every success, failure and lock is audited (access.md L-1); a failure's audit row is committed
  even though the caller gets an error (the error is raised after the transaction).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from yilian.accounts import rules
from yilian.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    CodeAttemptsExceeded,
    CodeExpired,
    CodeInvalid,
    CodeRateLimited,
    InvalidCredentials,
)
from yilian.accounts.models import ApiKey, OneTimeCode, PatientAccount, User
from yilian.accounts.selectors import actor_for_user, hash_api_key
from yilian.common import access, audit, crypto, policy
from yilian.common.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import ANONYMOUS, Actor

HOUR = timedelta(hours=1)


# --- staff sign-in -------------------------------------------------------------------------


def _user_target(user: User) -> audit.Target:
    return audit.Target("accounts.user", user.pk)


def _locked_error(locked_until: datetime) -> AccountLocked:
    local = timezone.localtime(locked_until)
    return AccountLocked(
        _("账号因连续多次登录失败已被锁定，请于 %(time)s 之后再试，或联系安全管理员解锁。")
        % {"time": formats.date_format(local, "Y-m-d H:i")},
        locked_until=local.isoformat(),
    )


def sign_in_staff(*, username: str, password: str) -> User:
    """Check a staff member's password; return the user, or raise (after auditing) a refusal.

    Unknown user, wrong password, a disabled account, a member of staff who has left (在职 off)
    and a patient account all get
    ``InvalidCredentials`` (no user enumeration); the password hasher runs in every case so that
    the answer takes as long either way. A locked account is refused even with the right password.
    """
    username = (username or "").strip()[:150]
    password = password or ""
    now = timezone.now()
    # NUL cannot be in any username (and PostgreSQL refuses it in a query): just a failed sign-in.
    user = (
        User.objects.select_related("staff").filter(username=username).first()
        if username and "\x00" not in username
        else None
    )
    username = username.replace("\x00", "\ufffd")  # safe for the audit row's JSON
    staff = getattr(user, "staff", None) if user is not None else None
    if user is None or user.kind != User.Kind.STAFF or not user.is_active or (staff and not staff.is_active):
        User().set_password(password)  # same cost as a real check (Django's ModelBackend does this)
        with transaction.atomic():
            audit.record(
                ANONYMOUS,
                "auth.login_failed",
                target=_user_target(user) if user else None,
                outcome="refused",
                detail={"username": username, "reason": "unknown_user" if user is None else "not_allowed"},
            )
        raise InvalidCredentials()

    if not rules.lock_expired(user.locked_until, now):
        with transaction.atomic():
            audit.record(
                ANONYMOUS,
                "auth.login_failed",
                target=_user_target(user),
                outcome="refused",
                detail={"username": username, "reason": "locked"},
            )
        raise _locked_error(user.locked_until)

    if user.check_password(password):
        with transaction.atomic():
            # Conditional: a concurrent failure may have locked the account since we read it.
            unlocked = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
            if User.objects.filter(unlocked, pk=user.pk).update(failed_logins=0, locked_until=None):
                audit.record(actor_for_user(user), "auth.login", target=_user_target(user))
                user.failed_logins, user.locked_until = 0, None
                return user
        user.refresh_from_db(fields=["locked_until"])
        raise _locked_error(user.locked_until or now)

    threshold = settings.STAFF_LOCKOUT_THRESHOLD
    until = now + timedelta(minutes=settings.STAFF_LOCKOUT_MINUTES)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
        # Only the attempt that reaches the threshold locks (and resets the count for next time).
        locked = User.objects.filter(pk=user.pk, failed_logins__gte=threshold).update(
            failed_logins=0, locked_until=until
        )
        audit.record(
            ANONYMOUS,
            "auth.login_failed",
            target=_user_target(user),
            outcome="refused",
            detail={"username": username, "reason": "bad_password"},
        )
        if locked:
            audit.record(
                None,
                "auth.locked",
                target=_user_target(user),
                detail={"username": username, "until": until.isoformat(), "threshold": threshold},
            )
    if locked:
        raise _locked_error(until)
    raise InvalidCredentials()


@transaction.atomic
def record_sign_out(*, actor: Actor) -> None:
    if actor.is_authenticated:
        audit.record(actor, "auth.logout")


@transaction.atomic
def record_session_timeout(*, user: User) -> None:
    """The idle timeout signed ``user`` out (written by ``accounts.middleware``)."""
    audit.record(actor_for_user(user), "auth.session_timeout", target=_user_target(user))


def change_password(*, actor: Actor, current: str, new: str, confirm: str) -> User:
    """A member of staff changes their own password (MLPS 2.0: passwords changed by their holder,
    checked against ``AUTH_PASSWORD_VALIDATORS``). Audited either way; the hasher is Argon2."""
    access.check(actor, access.STAFF)
    user = User.objects.get(pk=actor.user_id, kind=User.Kind.STAFF)
    error: DomainError | None = None
    if not user.check_password(current or ""):
        error = InvalidInput(_("当前密码不正确。"), field="current")
    elif (new or "") != (confirm or ""):
        error = InvalidInput(_("两次输入的新密码不一致。"), field="confirm")
    elif new == current:
        error = InvalidInput(_("新密码不能与当前密码相同。"), field="new")
    else:
        try:
            password_validation.validate_password(new, user)
        except ValidationError as exc:
            error = InvalidInput(" ".join(exc.messages), field="new")
    with transaction.atomic():
        if error is not None:
            audit.record(
                actor,
                "auth.password_change_refused",
                target=_user_target(user),
                outcome="refused",
                detail={"field": error.field},
            )
        else:
            user.set_password(new)
            user.save(update_fields=["password"])
            audit.record(actor, "auth.password_changed", target=_user_target(user))
    if error is not None:
        raise error
    return user


@transaction.atomic
def unlock_user(*, actor: Actor, user_id: int) -> User:
    """A security administrator lifts a lockout early (and clears the failure count)."""
    access.check(actor, policy.SECURITY_MANAGE)
    user = (
        User.objects.select_for_update(of=("self",))
        .select_related("staff__organisation")
        .filter(pk=user_id, kind=User.Kind.STAFF)
        .first()
    )
    staff = getattr(user, "staff", None) if user else None
    if (
        user is None
        or staff is None
        or not policy.covers(actor, policy.SECURITY_MANAGE, staff.organisation.path)
    ):
        raise NotFound()
    if rules.lock_expired(user.locked_until, timezone.now()) and not user.failed_logins:
        raise Conflict(_("该账号当前未被锁定。"))
    was = user.locked_until
    User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
    user.failed_logins, user.locked_until = 0, None
    audit.record(
        actor,
        "auth.unlocked",
        target=_user_target(user),
        detail={"username": user.username, "was_locked_until": was.isoformat() if was else None},
    )
    return user


# --- patient sign-in by SMS code -----------------------------------------------------------


def clean_phone(raw: str) -> str:
    phone = rules.normalise_phone(raw)
    if not rules.is_mainland_mobile(phone):
        raise InvalidInput(
            _("手机号格式不正确：请输入 11 位中国大陆手机号（以 1 开头，第二位为 3–9）。"), field="phone"
        )
    return phone


def _code_hash(phone_hash: str, code: str) -> str:
    """Keyed hash (HMAC-SHA256 under SECRET_KEY) bound to the phone: a 6-digit code needs a key."""
    key = hashlib.sha256(f"yilian.accounts.otp:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{phone_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def _serialise_on(*keys: str) -> None:
    """Serialise concurrent requests for the same phone / address until the transaction ends.

    PostgreSQL: transaction-level advisory locks (taken in a fixed order). SQLite: the project's
    ``transaction_mode=IMMEDIATE`` already serialises write transactions.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in keys:
            lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return gettext("%(n)d 秒") % {"n": seconds}
    return gettext("%(n)d 分钟") % {"n": (seconds + 59) // 60}


def _check_code_limits(*, phone_hash: str, ip: str, now: datetime) -> None:
    """Raise ``CodeRateLimited`` if another code may not be sent now (brief: OTP limits)."""
    interval = timedelta(seconds=settings.OTP_MIN_INTERVAL_SECONDS)
    per_phone = settings.OTP_MAX_PER_PHONE_PER_HOUR
    by_phone = list(
        OneTimeCode.objects.filter(phone_hash=phone_hash, created_at__gt=now - HOUR)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:per_phone]
    )
    wait = rules.interval_retry_after(by_phone[0] if by_phone else None, interval=interval, now=now)
    if wait:
        raise CodeRateLimited(
            _("获取验证码过于频繁，请 %(wait)s 后再试。") % {"wait": _wait_text(wait)},
            retry_after=wait,
            limit="interval",
        )
    wait = rules.window_retry_after(by_phone, limit=per_phone, window=HOUR, now=now)
    if wait:
        raise CodeRateLimited(
            _("该手机号 1 小时内获取验证码已达 %(n)d 次上限，请 %(wait)s 后再试。")
            % {"n": per_phone, "wait": _wait_text(wait)},
            retry_after=wait,
            limit="phone",
        )
    if ip:
        per_ip = settings.OTP_MAX_PER_IP_PER_HOUR
        by_ip = list(
            OneTimeCode.objects.filter(ip=ip, created_at__gt=now - HOUR)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[:per_ip]
        )
        wait = rules.window_retry_after(by_ip, limit=per_ip, window=HOUR, now=now)
        if wait:
            raise CodeRateLimited(
                _("当前网络获取验证码次数过多，请 %(wait)s 后再试。") % {"wait": _wait_text(wait)},
                retry_after=wait,
                limit="ip",
            )


@transaction.atomic
def request_code(*, phone: str, ip: str | None) -> OneTimeCode:
    """Issue a sign-in code to ``phone`` by SMS, within the limits; return the (hashed) row.

    The row doubles as the rate-limit log; it and the queued SMS commit together.
    """
    from yilian.notifications import services as notification_services

    phone = clean_phone(phone)
    phone_hash = crypto.blind_index("phone", phone)
    ip = (ip or "")[:45]
    _serialise_on(f"otp-phone:{phone_hash}", *([f"otp-ip:{ip}"] if ip else []))
    now = timezone.now()
    _check_code_limits(phone_hash=phone_hash, ip=ip, now=now)

    code = f"{secrets.randbelow(10**rules.OTP_DIGITS):0{rules.OTP_DIGITS}d}"
    ttl = settings.OTP_TTL_SECONDS
    otp = OneTimeCode.objects.create(
        phone_hash=phone_hash,
        code_hash=_code_hash(phone_hash, code),
        ip=ip,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    body = gettext("【医联】您的登录验证码是 %(code)s，%(minutes)d 分钟内有效。请勿将验证码告诉他人。") % {
        "code": code,
        "minutes": max(1, ttl // 60),
    }
    notification_services.send_sms(phone=phone, body=body, template_code="otp", urgent=True)
    return otp


def verify_code(*, phone: str, code: str, ip: str | None) -> User:
    """Check a sign-in code; return the patient user (creating the account on first sign-in).

    Only the newest code sent to the phone counts (a new code supersedes the old one). A wrong code
    costs one of the code's ``OTP_MAX_ATTEMPTS`` tries; the right one is claimed with a conditional
    update, so it works once even under concurrent submissions. (``ip`` is part of the interface;
    the audit rows take the caller's address from the request context, ``common.audit``.)
    """
    phone = clean_phone(phone)
    code = rules.normalise_code(code)
    if not rules.is_code_shaped(code):
        raise InvalidInput(_("请输入短信中的 6 位数字验证码。"), field="code")
    phone_hash = crypto.blind_index("phone", phone)
    max_attempts = settings.OTP_MAX_ATTEMPTS
    failure: DomainError
    with transaction.atomic():
        now = timezone.now()
        otp = (
            OneTimeCode.objects.select_for_update()
            .filter(phone_hash=phone_hash)
            .order_by("-created_at", "-id")
            .first()
        )
        if otp is None or otp.used_at is not None or otp.expires_at <= now:
            failure, reason = CodeExpired(), "expired"
        elif otp.attempts >= max_attempts:
            failure, reason = CodeAttemptsExceeded(), "attempts"
        elif not hmac.compare_digest(otp.code_hash, _code_hash(phone_hash, code)):
            OneTimeCode.objects.filter(pk=otp.pk, attempts__lt=max_attempts).update(
                attempts=F("attempts") + 1
            )
            left = max_attempts - otp.attempts - 1
            if left > 0:
                failure = CodeInvalid(
                    _("验证码不正确，还可再试 %(n)d 次。") % {"n": left}, field="code", attempts_left=left
                )
            else:
                failure = CodeAttemptsExceeded()
            reason = "wrong_code"
        else:
            claimed = OneTimeCode.objects.filter(
                pk=otp.pk, used_at__isnull=True, attempts__lt=max_attempts, expires_at__gt=now
            ).update(used_at=now)
            if claimed:
                return _sign_in_patient(phone=phone, phone_hash=phone_hash)
            failure, reason = CodeExpired(), "expired"
        audit.record(
            ANONYMOUS,
            "auth.login_failed",
            target=audit.Target("accounts.onetimecode", otp.pk) if otp else None,
            outcome="refused",
            detail={"method": "otp", "reason": reason},
        )
    raise failure


def _sign_in_patient(*, phone: str, phone_hash: str) -> User:
    account = PatientAccount.objects.select_related("user").filter(phone_hash=phone_hash).first()
    created = False
    if account is None:
        try:
            with transaction.atomic():  # savepoint: a concurrent first sign-in may win the race
                account = _create_patient_account(phone=phone, phone_hash=phone_hash)
                created = True
        except IntegrityError:
            account = PatientAccount.objects.select_related("user").get(phone_hash=phone_hash)
    user = account.user
    if not user.is_active:
        raise AccountDisabled()
    audit.record(
        actor_for_user(user),
        "auth.login",
        target=audit.Target("accounts.patientaccount", account.pk),
        detail={"method": "otp", "new_account": created},
    )
    return user


def _create_patient_account(*, phone: str, phone_hash: str) -> PatientAccount:
    user = User(username=f"p-{secrets.token_hex(8)}", kind=User.Kind.PATIENT)
    user.set_unusable_password()
    user.full_clean()
    user.save()
    account = PatientAccount(user=user, phone=phone, phone_hash=phone_hash)
    account.full_clean(validate_unique=False)  # uniqueness is the database's job (race above)
    account.save()
    return account


# --- API keys ------------------------------------------------------------------------------


def _require_scope(actor: Actor, org_path: str) -> None:
    access.check(actor, policy.SECURITY_MANAGE)
    if not policy.covers(actor, policy.SECURITY_MANAGE, org_path):
        raise PermissionDenied(_("该机构不在您的管理范围内。"), field="organisation")


@transaction.atomic
def create_api_key(*, actor: Actor, organisation, name: str) -> tuple[ApiKey, str]:
    """Issue a key ``yl_<prefix>_<secret>`` for ``organisation``; return the row and the full key.

    The full key exists only in this return value: the table keeps the prefix and a SHA-256.
    """
    _require_scope(actor, organisation.path)
    name = (name or "").strip()
    if "\x00" in name:
        raise InvalidInput(_("密钥名称含有无效字符。"), field="name")
    if not name:
        raise InvalidInput(_("请填写密钥名称（如对接系统的名称）。"), field="name")
    prefix = secrets.token_hex(4)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = secrets.token_hex(4)
    full = f"yl_{prefix}_{secrets.token_hex(24)}"
    key = ApiKey(
        organisation=organisation,
        name=name,
        prefix=prefix,
        key_hash=hash_api_key(full),
        created_by_id=actor.user_id,
    )
    try:
        key.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(
            _("%(field)s：%(message)s") % {"field": field, "message": messages[0]}, field=field
        ) from exc
    key.save()
    audit.record(
        actor,
        "apikey.created",
        target=audit.Target("accounts.apikey", key.pk),
        detail={"prefix": prefix, "name": name, "organisation": organisation.code},
    )
    return key, full


@transaction.atomic
def revoke_api_key(*, actor: Actor, key_id: int) -> ApiKey:
    """Revoke a key at once: the next request carrying it gets 401."""
    access.check(actor, policy.SECURITY_MANAGE)
    key = (
        ApiKey.objects.select_for_update(of=("self",))
        .select_related("organisation")
        .filter(pk=key_id)
        .first()
    )
    if key is None or not policy.covers(actor, policy.SECURITY_MANAGE, key.organisation.path):
        raise NotFound()
    if key.revoked_at is not None:
        raise Conflict(_("该密钥已于此前吊销。"))
    key.revoked_at = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=key.revoked_at)
    audit.record(
        actor,
        "apikey.revoked",
        target=audit.Target("accounts.apikey", key.pk),
        detail={"prefix": key.prefix, "name": key.name, "organisation": key.organisation.code},
    )
    return key


CODE_RETENTION = timedelta(days=1)


def purge_spent_codes(*, now: datetime | None = None) -> int:
    """Delete sign-in code rows older than ``CODE_RETENTION``; return how many. Meant for a daily job.

    Safe: the longest rate-limit window is an hour and codes live minutes; who signed in, and every
    failed attempt, stays in the audit log.
    """
    cutoff = (now or timezone.now()) - max(CODE_RETENTION, HOUR, timedelta(seconds=settings.OTP_TTL_SECONDS))
    deleted, _by_model = OneTimeCode.objects.filter(created_at__lt=cutoff).delete()
    return deleted
