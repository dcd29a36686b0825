"""Notifications every module uses: the in-app inbox (站内信) and SMS (短信) with delivery status."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from yilian.common.crypto import EncryptedTextField


def validate_template_syntax(value: str) -> None:
    """Refuse text that Django's template engine cannot compile (an admin typo must not break sending)."""
    from django.template import Engine, TemplateSyntaxError

    try:
        Engine.get_default().from_string(value)
    except TemplateSyntaxError as exc:
        raise ValidationError(_("模板语法错误：%(error)s"), params={"error": exc}) from exc


class MessageTemplate(models.Model):
    """An editable message template (消息模板); ``title`` and ``body`` use Django template syntax."""

    code = models.SlugField(_("模板编码"), max_length=60, unique=True)
    title = models.CharField(_("标题"), max_length=120, validators=[validate_template_syntax])
    body = models.TextField(_("内容"), validators=[validate_template_syntax])
    urgent = models.BooleanField(_("紧急（不受免打扰时段限制）"), default=False)
    sms_enabled = models.BooleanField(_("发送短信"), default=True)
    variables = models.CharField(
        _("可用变量"), max_length=300, blank=True, help_text=_("调用方提供的变量，供编辑模板时参考。")
    )

    class Meta:
        verbose_name = _("消息模板")
        verbose_name_plural = _("消息模板")

    def __str__(self) -> str:
        return self.code


class InboxMessage(models.Model):
    """A message in a user's in-app inbox (staff or patient account)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox")
    template_code = models.CharField(max_length=60, blank=True)
    title = models.CharField(max_length=120)
    body = models.TextField()
    link = models.CharField(max_length=200, blank=True)
    urgent = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]


class SmsMessage(models.Model):
    """An outgoing SMS and its delivery state (``rules.TRANSITIONS``).

    queued | deferred → sending → sent | queued (retry later) | failed. A delivery task claims the
    row by moving it to ``sending`` with a conditional update, so that a task run twice sends once.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("待发送")
        DEFERRED = "deferred", _("免打扰延后")
        SENDING = "sending", _("发送中")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("发送失败")

    phone = EncryptedTextField()
    template_code = models.CharField(max_length=60, blank=True)
    # Encrypted: bodies carry names, appointments and sign-in codes (PIPL; codes are also blanked
    # once delivery ends, see services.REDACTED_AFTER_DELIVERY).
    body = EncryptedTextField()
    urgent = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
