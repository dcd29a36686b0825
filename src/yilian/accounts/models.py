"""Sign-in identities: staff users (password), patient accounts (phone + one-time code), API keys."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from yilian.common.crypto import EncryptedTextField


class User(AbstractUser):
    """A login. Staff sign in with username + password; patient accounts have no usable password."""

    class Kind(models.TextChoices):
        STAFF = "staff", _("工作人员")
        PATIENT = "patient", _("患者账号")

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STAFF)
    failed_logins = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    preferred_language = models.CharField(max_length=10, blank=True)

    class Meta(AbstractUser.Meta):
        verbose_name = _("用户")
        verbose_name_plural = _("用户")


class PatientAccount(models.Model):
    """A patient-side login (患者账号) that manages one or more patients (就诊人)."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="patient_account")
    phone = EncryptedTextField(_("手机号"))
    phone_hash = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("患者账号")
        verbose_name_plural = _("患者账号")

    def __str__(self) -> str:
        return f"PatientAccount {self.pk}"


class OneTimeCode(models.Model):
    """An SMS sign-in code (短信验证码). Only its hash is stored; rows double as the rate-limit log."""

    phone_hash = models.CharField(max_length=40, db_index=True)
    code_hash = models.CharField(max_length=64)
    ip = models.CharField(max_length=45, blank=True, db_index=True)
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["phone_hash", "created_at"]),
            models.Index(fields=["ip", "created_at"]),
        ]


class ApiKey(models.Model):
    """A key for an integrating system (HIS/LIS/PACS), scoped to an organisation subtree.

    Only a SHA-256 of the secret is stored; the full key is shown once at creation.
    """

    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("名称"), max_length=80)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("接口密钥")
        verbose_name_plural = _("接口密钥")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
