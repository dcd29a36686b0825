"""Real-name patients (实名就诊人), family links to patient accounts, contacts, and e-health cards.

Identifiers (ID numbers, phones) are stored encrypted (``common.crypto``) with a keyed hash for
exact look-up; names are stored in clear with their pinyin initials so that staff can search.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from yilian.common.crypto import EncryptedTextField


class OptionalEncryptedTextField(EncryptedTextField):
    """An encrypted column that may be empty: ``""`` is stored as ``""`` and must read back as ``""``.

    ``EncryptedTextField.from_db_value`` tries to decrypt the empty string and fails, which made
    every patient without a phone unreadable; this keeps the empty value as it is.
    """

    def from_db_value(self, value, expression, connection):
        if value == "":
            return ""
        return super().from_db_value(value, expression, connection)


class Patient(models.Model):
    """A real-name patient identity (就诊人), the subject of every clinical record."""

    class Sex(models.TextChoices):
        MALE = "M", _("男")
        FEMALE = "F", _("女")
        UNKNOWN = "U", _("未知")

    class IdType(models.TextChoices):
        RESIDENT_ID = "resident_id", _("居民身份证")
        PASSPORT = "passport", _("护照")
        HK_MACAO_PERMIT = "hk_macao_permit", _("港澳居民来往内地通行证")
        TAIWAN_PERMIT = "taiwan_permit", _("台湾居民来往大陆通行证")
        FOREIGN_PERMANENT = "foreign_permanent", _("外国人永久居留身份证")
        BIRTH_CERT = "birth_cert", _("出生医学证明")
        OTHER = "other", _("其他")

    class Status(models.TextChoices):
        ACTIVE = "active", _("有效")
        MERGED = "merged", _("已合并")

    name = models.CharField(_("姓名"), max_length=50)
    name_initials = models.CharField(max_length=32, db_index=True, editable=False)
    sex = models.CharField(_("性别"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("出生日期"))
    id_type = models.CharField(
        _("证件类型"), max_length=20, choices=IdType.choices, default=IdType.RESIDENT_ID
    )
    id_number = EncryptedTextField(_("证件号码"))
    id_hash = models.CharField(max_length=40, db_index=True, editable=False)
    id_last4 = models.CharField(max_length=4, editable=False)
    id_head = models.CharField(max_length=6, editable=False, blank=True)
    phone = OptionalEncryptedTextField(_("手机号"), blank=True)
    phone_hash = models.CharField(max_length=40, db_index=True, blank=True, editable=False)
    phone_last4 = models.CharField(max_length=4, blank=True, editable=False)
    nationality = models.CharField(_("国籍"), max_length=3, default="CHN")
    ethnicity = models.CharField(_("民族"), max_length=20, blank=True)
    province = models.CharField(_("省"), max_length=30, blank=True)
    city = models.CharField(_("市"), max_length=30, blank=True)
    county = models.CharField(_("县（区）"), max_length=30, blank=True)
    township = models.CharField(_("乡镇（街道）"), max_length=30, blank=True)
    village = models.CharField(_("村（社区）"), max_length=30, blank=True)
    address_detail = models.CharField(_("详细地址"), max_length=120, blank=True)
    home_org = models.ForeignKey(
        "community.Organisation", on_delete=models.PROTECT, related_name="+", verbose_name=_("签约/管理机构")
    )
    realname_verified = models.BooleanField(_("已实名认证"), default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("患者")
        verbose_name_plural = _("患者")
        constraints = [
            models.UniqueConstraint(
                fields=["id_type", "id_hash"],
                condition=Q(status="active"),
                name="patient_active_identity_unique",
            ),
            models.CheckConstraint(
                condition=Q(status="merged", merged_into__isnull=False)
                | Q(status="active", merged_into__isnull=True),
                name="patient_merge_consistent",
            ),
        ]
        indexes = [models.Index(fields=["name"], name="patient_name_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        return "".join(
            [self.province, self.city, self.county, self.township, self.village, self.address_detail]
        )


class Contact(models.Model):
    """An emergency or family contact (联系人) of a patient."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("联系人姓名"), max_length=50)
    relationship = models.CharField(_("关系"), max_length=20)
    phone = EncryptedTextField(_("联系电话"))

    class Meta:
        verbose_name = _("联系人")
        verbose_name_plural = _("联系人")


class FamilyLink(models.Model):
    """A patient managed by a patient account (家庭成员/就诊人绑定), with relationship and consent."""

    class Relationship(models.TextChoices):
        SELF = "self", _("本人")
        SPOUSE = "spouse", _("配偶")
        CHILD = "child", _("子女")
        PARENT = "parent", _("父母")
        GRANDPARENT = "grandparent", _("祖父母/外祖父母")
        SIBLING = "sibling", _("兄弟姐妹")
        OTHER = "other", _("其他")

    account = models.ForeignKey(
        "accounts.PatientAccount", on_delete=models.CASCADE, related_name="family_links"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="family_links")
    relationship = models.CharField(_("关系"), max_length=12, choices=Relationship.choices)
    is_guardian = models.BooleanField(_("监护人"), default=False)
    consent_version = models.CharField(max_length=20)
    consent_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "patient"], name="family_link_unique"),
            models.UniqueConstraint(
                fields=["account"], condition=Q(relationship="self"), name="family_link_one_self"
            ),
        ]
        verbose_name = _("就诊人绑定")
        verbose_name_plural = _("就诊人绑定")


class HealthCard(models.Model):
    """The e-health card (电子健康卡, 一码通用): one per active patient, identified by a public card number.

    The card number is random and carries no personal data; the QR shown on the phone is a
    short-lived signed token built from it (``patients.card``).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("正常")
        REVOKED = "revoked", _("已注销")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cards")
    card_no = models.CharField(_("卡号"), max_length=20, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    issued_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient"], condition=Q(status="active"), name="one_active_card")
        ]
        verbose_name = _("电子健康卡")
        verbose_name_plural = _("电子健康卡")


class CardTokenUse(models.Model):
    """A QR token that has been scanned: its nonce is unique, so a replayed code is refused."""

    nonce = models.CharField(max_length=32, unique=True)
    card = models.ForeignKey(HealthCard, on_delete=models.CASCADE, related_name="+")
    used_at = models.DateTimeField()
    used_by_id = models.BigIntegerField(null=True)
