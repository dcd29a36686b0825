"""Every write of notifications: SMS (短信) with delivery state, and the in-app inbox (站内信).

Other apps call ``notify`` (a templated message to a user's inbox and, if the template says so, an
SMS) or ``send_sms`` (a raw SMS, e.g. a sign-in code), from inside their own transaction: nothing
leaves the building unless that transaction commits.

Rules applied here come from ``notifications.rules``: quiet hours (``settings.QUIET_HOURS``, local
time Asia/Shanghai) defer non-urgent SMS; failures retry with exponential backoff up to
``settings.SMS_MAX_ATTEMPTS``; a delivery claims its row with a conditional update so that a task
run twice (a retried worker, the ``dispatch_sms`` safety net) sends once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.template import Context, Engine, TemplateSyntaxError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.notifications import rules
from yilian.notifications.models import InboxMessage, MessageTemplate, SmsMessage
from yilian.notifications.senders import SmsSendError, get_sender

logger = logging.getLogger("yilian")

PHONE_MAX_LENGTH = 20
SMS_BODY_MAX_LENGTH = 500
# A row left in "sending" this long was interrupted mid-send (worker killed): its outcome is unknown.
STALE_SENDING_AFTER = timedelta(minutes=15)
# Messages whose body is a secret (sign-in codes): once delivery ends, the body is replaced, so that
# neither the admin nor a database copy shows a code that could still be tried.
REDACTED_AFTER_DELIVERY = frozenset({"otp"})
REDACTED_BODY = "（验证码短信：内容发送后不保留）"
# The safety net leaves a due message this long to the task queue before enqueueing it itself.
DISPATCH_GRACE = timedelta(minutes=2)


def _quiet_hours() -> tuple[int, int]:
    start, end = getattr(settings, "QUIET_HOURS", (22, 7))
    return int(start), int(end)


def _max_attempts() -> int:
    return max(int(getattr(settings, "SMS_MAX_ATTEMPTS", 3)), 1)


def _deferral_end(now: datetime, urgent: bool) -> datetime | None:
    """When a non-urgent message may go out if ``now`` is in quiet hours; ``None`` = now."""
    if urgent:
        return None
    return rules.quiet_hours_end(timezone.localtime(now), _quiet_hours())


def _enqueue_delivery(sms_id: int, run_after: datetime | None = None) -> None:
    """Hand the message to the task queue.

    A backend that cannot hold a task until ``run_after`` (e.g. the immediate backend) gets nothing:
    the ``dispatch_sms`` command, run periodically, enqueues the message once it is due.
    """
    from yilian.notifications import tasks

    job = tasks.deliver_sms
    if run_after is not None:
        if not job.get_backend().supports_defer:
            return
        job = job.using(run_after=run_after)
    job.enqueue(sms_id)


def _clean_phone(phone: str) -> str:
    """Digits with an optional leading ``+`` (international numbers are the gateway's business)."""
    phone = (phone or "").strip().replace(" ", "").replace("-", "")
    digits = phone[1:] if phone.startswith("+") else phone
    if not digits.isascii() or not digits.isdigit() or not 5 <= len(phone) <= PHONE_MAX_LENGTH:
        raise InvalidInput(_("短信接收号码无效：应为 5–20 位数字。"), field="phone")
    return phone


@transaction.atomic
def send_sms(*, phone: str, body: str, template_code: str = "", urgent: bool = False) -> SmsMessage:
    """Queue one SMS and deliver it once the surrounding transaction commits.

    Non-urgent messages written in quiet hours are ``deferred`` until the window ends; urgent ones
    (sign-in codes, clinic cancellations for today) go now.
    """
    now = timezone.now()
    not_before = _deferral_end(now, urgent)
    sms = SmsMessage.objects.create(
        phone=_clean_phone(phone),
        body=body[:SMS_BODY_MAX_LENGTH],
        template_code=template_code[:60],
        urgent=urgent,
        status=SmsMessage.Status.DEFERRED if not_before else SmsMessage.Status.QUEUED,
        not_before=not_before,
        created_at=now,
    )
    transaction.on_commit(lambda: _enqueue_delivery(sms.pk, not_before))
    return sms


def deliver_sms(*, sms_id: int) -> str:
    """Send one queued or deferred SMS if it is due; return its status afterwards.

    Not atomic on purpose: the gateway call happens between two short writes, so that a slow
    gateway holds no database lock. The first write claims the row (queued|deferred → sending,
    conditional on the status), so only one run can send it.
    """
    now = timezone.now()
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    waiting = [SmsMessage.Status.QUEUED, SmsMessage.Status.DEFERRED]

    later = SmsMessage.objects.filter(pk=sms_id, status__in=waiting, urgent=False).filter(due)
    quiet_end = _deferral_end(now, urgent=False)
    if quiet_end and later.update(status=SmsMessage.Status.DEFERRED, not_before=quiet_end):
        # Queued before quiet hours but reached only now (worker was down or retrying): wait.
        _enqueue_delivery(sms_id, quiet_end)
        return SmsMessage.Status.DEFERRED

    claimed = (
        SmsMessage.objects.filter(pk=sms_id, status__in=waiting)
        .filter(due)
        .update(status=SmsMessage.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        current = SmsMessage.objects.filter(pk=sms_id).values_list("status", flat=True).first()
        return current or "missing"

    sms = SmsMessage.objects.get(pk=sms_id)
    try:
        provider_id = get_sender().send(sms.phone, sms.body)
    except Exception as exc:  # a gateway adapter may raise anything; the row must not stay "sending"
        retryable = exc.retryable if isinstance(exc, SmsSendError) else True
        return _record_failure(sms, exc, retryable=retryable)

    SmsMessage.objects.filter(pk=sms_id, status=SmsMessage.Status.SENDING).update(
        status=SmsMessage.Status.SENT,
        sent_at=timezone.now(),
        provider_id=str(provider_id or "")[:64],
        last_error="",
        **_redaction(sms),
    )
    return SmsMessage.Status.SENT


def _redaction(sms: SmsMessage) -> dict[str, Any]:
    """The update that blanks a secret body once delivery has ended (sent or failed)."""
    if sms.template_code not in REDACTED_AFTER_DELIVERY:
        return {}
    return {"body": REDACTED_BODY}


def _record_failure(sms: SmsMessage, exc: Exception, *, retryable: bool) -> str:
    error = f"{type(exc).__name__}: {exc}"[:300]
    logger.warning("SMS %s attempt %s failed: %s", sms.pk, sms.attempts, type(exc).__name__)
    rows = SmsMessage.objects.filter(pk=sms.pk, status=SmsMessage.Status.SENDING)
    if retryable and rules.may_retry(sms.attempts, _max_attempts()):
        retry_at = timezone.now() + rules.retry_delay(sms.attempts)
        if not sms.urgent:
            retry_at = rules.quiet_hours_end(timezone.localtime(retry_at), _quiet_hours()) or retry_at
        rows.update(status=SmsMessage.Status.QUEUED, not_before=retry_at, last_error=error)
        transaction.on_commit(lambda: _enqueue_delivery(sms.pk, retry_at))
        return SmsMessage.Status.QUEUED
    rows.update(status=SmsMessage.Status.FAILED, last_error=error, **_redaction(sms))
    return SmsMessage.Status.FAILED


def dispatch_due_sms(*, limit: int = 500, grace: timedelta = DISPATCH_GRACE) -> int:
    """The periodic safety net (``yilian dispatch_sms``): enqueue every queued/deferred SMS that has
    been due for longer than ``grace`` (a lost task, a backend that cannot delay tasks, the end of
    quiet hours). ``grace`` leaves the normal path to the worker, so a healthy queue gets no copies;
    a copy would be harmless anyway, as delivery claims the row.

    Also closes rows stuck in ``sending`` (worker killed mid-send) as ``failed``: whether the
    gateway sent them is unknown, and sending again could duplicate a message.
    """
    now = timezone.now()
    stale = SmsMessage.objects.filter(
        status=SmsMessage.Status.SENDING, claimed_at__lt=now - STALE_SENDING_AFTER
    )
    closed = {"status": SmsMessage.Status.FAILED, "last_error": "发送中断，结果未知（未重发以免重复）"}
    stale.filter(template_code__in=REDACTED_AFTER_DELIVERY).update(**closed, body=REDACTED_BODY)
    stale.update(**closed)
    cutoff = now - grace
    due_ids = list(
        SmsMessage.objects.filter(status__in=[SmsMessage.Status.QUEUED, SmsMessage.Status.DEFERRED])
        .filter(Q(not_before__lte=cutoff) | Q(not_before__isnull=True, created_at__lte=cutoff))
        .order_by("-urgent", "created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for sms_id in due_ids:
        _enqueue_delivery(sms_id)
    return len(due_ids)


# --- Templated notifications and the inbox -----------------------------------------------------

GENERIC_TEMPLATE = "generic"


@dataclass(frozen=True)
class Notified:
    """What ``notify`` wrote: the inbox message (if there was a recipient) and the SMS (if any)."""

    inbox: InboxMessage | None
    sms: SmsMessage | None


def _render(source: str, context: dict[str, Any]) -> str:
    """Render template text as plain text (no HTML escaping: pages escape on display, SMS is text)."""
    return Engine.get_default().from_string(source).render(Context(context, autoescape=False)).strip()


def render_template(template: MessageTemplate, context: dict[str, Any]) -> tuple[str, str]:
    """``(title, body)`` of ``template`` filled with ``context``."""
    return _render(template.title, context), _render(template.body, context)


def _template_for(code: str) -> MessageTemplate | None:
    template = MessageTemplate.objects.filter(code=code).first()
    if template is None and code != GENERIC_TEMPLATE:
        logger.warning("Message template %r missing; using %r", code, GENERIC_TEMPLATE)
        template = MessageTemplate.objects.filter(code=GENERIC_TEMPLATE).first()
    return template


@transaction.atomic
def notify(
    *,
    recipient,
    template_code: str,
    context: dict[str, Any],
    phone: str | None = None,
    urgent: bool | None = None,
    link: str = "",
) -> Notified:
    """Tell someone something: an inbox message for ``recipient`` (a user, or ``None`` for a patient
    without an account) and, if the template sends SMS and ``phone`` is given, an SMS.

    ``urgent`` (default: the template's setting) lets the SMS through quiet hours. A missing or
    broken template, or an invalid phone number on file, never fails the caller's transaction (a clinic cancellation must not be undone
    by a typo in the admin): the ``generic`` template, then the context's own ``title``/``body``,
    stand in and a warning is logged.
    """
    template = _template_for(template_code)
    title = body = ""
    if template is not None:
        try:
            title, body = render_template(template, context)
        except TemplateSyntaxError:
            logger.warning("Message template %r does not compile", template.code)
    title = (title or str(context.get("title") or "医联通知"))[:120]
    body = body or str(context.get("body") or "")
    is_urgent = bool(template.urgent if urgent is None and template is not None else urgent)
    sends_sms = template.sms_enabled if template is not None else True

    inbox = None
    if recipient is not None:
        inbox = InboxMessage.objects.create(
            recipient_id=getattr(recipient, "pk", recipient),
            template_code=template_code[:60],
            title=title,
            body=body,
            link=link[:200],
            urgent=is_urgent,
            created_at=timezone.now(),
        )
    sms = None
    if sends_sms and phone and body:
        try:
            sms = send_sms(phone=phone, body=body, template_code=template_code, urgent=is_urgent)
        except InvalidInput:
            # A malformed number on file must not undo the caller's act (e.g. stopping a clinic).
            logger.warning("Notification %r: SMS skipped, the phone number on file is invalid", template_code)
    return Notified(inbox=inbox, sms=sms)


@transaction.atomic
def mark_read(*, actor: Actor, message_id: int) -> InboxMessage:
    """Mark one of the actor's own inbox messages read; someone else's looks missing (NotFound)."""
    message = (
        InboxMessage.objects.select_for_update().filter(pk=message_id, recipient_id=actor.user_id).first()
        if actor.user_id
        else None
    )
    if message is None:
        raise NotFound()
    if message.read_at is None:
        message.read_at = timezone.now()
        message.save(update_fields=["read_at"])
    return message


@transaction.atomic
def mark_all_read(*, actor: Actor) -> int:
    """Mark every unread message of the actor read; returns how many changed."""
    if not actor.user_id:
        return 0
    return InboxMessage.objects.filter(recipient_id=actor.user_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )
