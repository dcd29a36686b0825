"""Exam appointment centre (医技检查集中预约) and physical-exam packages (体检套餐): access.md §2
E-1..E-5, PE-1, §8 (ServiceRequest, Appointment, Slot statuses).

Concurrency is carried by the schema, as in outpatient booking (B-10): one ``ExamSlot`` row per
place of a resource's time segment, claimed with ``SKIP LOCKED`` / a conditional update, and a
partial unique index so a place never holds two active appointments (E-2); a partial unique index
for one active appointment per order (E-1); package places are numbered and unique per package ×
day (PE-1 daily capacity), so no single row is hot for a whole day.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from yilian.exams import rules


class Modality(models.TextChoices):
    CT = "CT", _("CT")
    MR = "MR", _("磁共振")
    DR = "DR", _("DR/X线")
    US = "US", _("超声")
    ENDOSCOPY = "ES", _("内镜")
    ECG = "ECG", _("心电图")
    GI = "RF", _("消化道造影")
    LAB = "LAB", _("检验")
    OTHER = "OT", _("其他")


class ExamType(models.Model):
    """An exam in the catalogue (检查项目). Preparation rules are data (E-4): the hospital edits the
    flags and the plain-Chinese instructions, the checker reads them."""

    code = models.CharField(_("项目编码"), max_length=32, unique=True)
    name = models.CharField(_("项目名称"), max_length=60)
    modality = models.CharField(_("检查类别"), max_length=4, choices=Modality.choices)
    duration_minutes = models.PositiveSmallIntegerField(_("检查时长（分钟）"), default=15)
    requires_fasting = models.BooleanField(_("需空腹"), default=False)
    breaks_fast = models.BooleanField(
        _("破坏空腹"), default=False, help_text=_("检查中需饮水、进食或口服造影剂（如钡餐、糖耐量）。")
    )
    gi_contrast = models.BooleanField(_("钡剂/消化道造影"), default=False)
    gi_contrast_sensitive = models.BooleanField(
        _("受消化道造影影响"), default=False, help_text=_("如腹部超声：同日不能排在钡餐之后。")
    )
    iodinated_contrast = models.BooleanField(_("碘造影剂（增强）"), default=False)
    sedation = models.BooleanField(_("镇静/麻醉"), default=False)
    recovery_minutes = models.PositiveSmallIntegerField(_("检查后观察（分钟）"), default=0)
    must_precede = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="must_follow",
        verbose_name=_("同日须排在其前的项目之后"),
        help_text=_("同日安排时，本项目必须在这些项目之前完成。"),
    )
    preparation = models.TextField(_("检查前准备（患者须知）"), blank=True, max_length=500)
    price = models.DecimalField(_("价格（元）"), max_digits=8, decimal_places=2, default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["modality", "code"]
        verbose_name = _("检查项目")
        verbose_name_plural = _("检查项目")

    def __str__(self) -> str:
        return self.name

    def spec(self, must_precede: frozenset[str] | None = None) -> rules.ExamSpec:
        return rules.ExamSpec(
            code=self.code,
            name=self.name,
            fasting=self.requires_fasting,
            breaks_fast=self.breaks_fast,
            gi_contrast=self.gi_contrast,
            gi_contrast_sensitive=self.gi_contrast_sensitive,
            iodinated_contrast=self.iodinated_contrast,
            sedation=self.sedation,
            recovery_minutes=self.recovery_minutes,
            must_precede=must_precede
            if must_precede is not None
            else frozenset(self.must_precede.values_list("code", flat=True)),
            preparation=self.preparation,
        )


class ExamResource(models.Model):
    """A device or room (检查设备/检查室): CT 1, 超声 3 诊室, 胃镜室… at a site (院区/楼宇, for the
    E-3 gap between sites), with a capacity per time segment (E-2)."""

    organisation = models.ForeignKey(
        "community.Organisation", on_delete=models.PROTECT, related_name="exam_resources"
    )
    department = models.ForeignKey(
        "community.Department", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    code = models.CharField(_("设备编码"), max_length=32)
    name = models.CharField(_("名称"), max_length=60)
    modality = models.CharField(_("检查类别"), max_length=4, choices=Modality.choices)
    site = models.CharField(_("院区/楼宇"), max_length=40)
    location = models.CharField(_("位置"), max_length=60, blank=True)
    segment_minutes = models.PositiveSmallIntegerField(_("分时段（分钟）"), default=30)
    capacity_per_segment = models.PositiveSmallIntegerField(_("每时段容量"), default=2)
    exam_types = models.ManyToManyField(ExamType, related_name="resources", verbose_name=_("可做项目"))
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["organisation", "modality", "code"]
        verbose_name = _("检查设备")
        verbose_name_plural = _("检查设备")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="exam_resource_code_unique"),
            models.CheckConstraint(
                condition=Q(segment_minutes__gte=5, segment_minutes__lte=240),
                name="exam_resource_segment_valid",
            ),
            models.CheckConstraint(
                condition=Q(capacity_per_segment__gte=1, capacity_per_segment__lte=100),
                name="exam_resource_capacity_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ExamSlot(models.Model):
    """One place (号位) in a resource's time segment (F-Slot). A segment of capacity 3 is 3 rows,
    so concurrent bookings lock different rows (E-2, B-10)."""

    class Status(models.TextChoices):
        FREE = rules.SLOT_FREE, _("可预约")
        BOOKED = rules.SLOT_BOOKED, _("已预约")
        BLOCKED = rules.SLOT_BLOCKED, _("停用")

    resource = models.ForeignKey(ExamResource, on_delete=models.CASCADE, related_name="slots")
    service_date = models.DateField(_("日期"))
    starts_at = models.DateTimeField(_("时段开始"))
    ends_at = models.DateTimeField(_("时段结束"))
    place = models.PositiveSmallIntegerField(_("号位"))
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.FREE)

    class Meta:
        ordering = ["resource", "starts_at", "place"]
        verbose_name = _("检查号位")
        verbose_name_plural = _("检查号位")
        constraints = [
            models.UniqueConstraint(fields=["resource", "starts_at", "place"], name="exam_slot_place_unique"),
            models.CheckConstraint(
                condition=Q(status__in=rules.SLOT_STATUSES), name="exam_slot_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="exam_slot_times_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["service_date", "resource"], name="exam_slot_day_idx"),
            models.Index(
                fields=["resource", "starts_at", "place"],
                condition=Q(status="free"),
                name="exam_slot_free_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id}@{self.starts_at:%Y-%m-%d %H:%M}#{self.place}"

    @property
    def fhir_status(self) -> str:
        return rules.fhir_slot_status(self.status)


class ExamOrder(models.Model):
    """An exam order (检查申请, FHIR ServiceRequest) from a doctor or an integrating system (HIS).

    E-1: bookable only while ``active`` and ``paid_or_covered`` (paid, or covered for inpatients).
    ``placer_number`` is the ordering system's own number (申请单号), unique per organisation, so a
    retried API call never creates a second order.
    """

    class Status(models.TextChoices):
        DRAFT = rules.ORDER_DRAFT, _("草稿")
        ACTIVE = rules.ORDER_ACTIVE, _("待检查")
        COMPLETED = rules.ORDER_COMPLETED, _("已完成")
        REVOKED = rules.ORDER_REVOKED, pgettext_lazy("exam order", "已撤销")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="exam_orders")
    exam_type = models.ForeignKey(ExamType, on_delete=models.PROTECT, related_name="orders")
    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    ordered_by = models.ForeignKey(
        "community.Staff", null=True, blank=True, on_delete=models.PROTECT, related_name="exam_orders"
    )
    ordered_by_label = models.CharField(_("申请者"), max_length=120)
    placer_number = models.CharField(_("申请单号"), max_length=40, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    paid_or_covered = models.BooleanField(_("已缴费/住院记账"), default=False)
    clinical_note = models.CharField(_("临床说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("检查申请")
        verbose_name_plural = _("检查申请")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=rules.ORDER_STATUSES), name="exam_order_status_valid"
            ),
            models.UniqueConstraint(
                fields=["organisation", "placer_number"],
                condition=~Q(placer_number=""),
                name="exam_order_placer_number_unique",
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="exam_order_patient_idx")]

    def __str__(self) -> str:
        return f"ExamOrder {self.pk} {self.exam_type_id} ({self.status})"


class ExamAppointment(models.Model):
    """An exam appointment (检查预约, FHIR Appointment) of one order on one slot place.

    E-1: one active appointment per order (partial unique index); E-2: one per place.
    """

    class Status(models.TextChoices):
        BOOKED = rules.BOOKED, _("已预约")
        ARRIVED = rules.ARRIVED, _("已签到")
        FULFILLED = rules.FULFILLED, _("已检查")
        CANCELLED = rules.CANCELLED, _("已取消")
        NO_SHOW = rules.NO_SHOW, _("爽约")
        ENTERED_IN_ERROR = rules.ENTERED_IN_ERROR, _("登记错误")

    class CancelReason(models.TextChoices):
        PATIENT = rules.REASON_PATIENT, _("患者取消")
        PROVIDER = rules.REASON_PROVIDER, _("院方取消")
        RESCHEDULED = rules.REASON_RESCHEDULED, _("改约")

    order = models.ForeignKey(ExamOrder, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="exam_appointments"
    )
    resource = models.ForeignKey(ExamResource, on_delete=models.PROTECT, related_name="appointments")
    slot = models.ForeignKey(ExamSlot, on_delete=models.PROTECT, related_name="appointments")
    service_date = models.DateField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.BOOKED)
    cancel_reason = models.CharField(_("取消原因"), max_length=20, choices=CancelReason.choices, blank=True)
    preparation = models.TextField(_("检查前准备"), blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    booked_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("检查预约")
        verbose_name_plural = _("检查预约")
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(status__in=rules.ACTIVE), name="exam_appt_one_active_per_order"
            ),
            models.UniqueConstraint(
                fields=["slot"], condition=Q(status__in=rules.ACTIVE), name="exam_appt_one_per_slot"
            ),
            models.CheckConstraint(
                condition=Q(status__in=rules.APPOINTMENT_STATUSES), name="exam_appt_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(cancel_reason="") | Q(status__in=[rules.CANCELLED, rules.NO_SHOW]),
                name="exam_appt_cancel_reason_only_when_cancelled",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "service_date"], name="exam_appt_patient_day_idx"),
            models.Index(fields=["resource", "service_date"], name="exam_appt_resource_day_idx"),
        ]

    def __str__(self) -> str:
        return f"ExamAppointment {self.pk} ({self.status})"

    @property
    def fhir_status(self) -> str:
        return rules.fhir_appointment_status(self.status)


class ExamAppointmentHistory(models.Model):
    """Append-only status history of an exam appointment: from, to, at, by, reason."""

    appointment = models.ForeignKey(ExamAppointment, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]


class ExamPackage(models.Model):
    """A physical-exam package (体检套餐) with a daily capacity (PE-1)."""

    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(_("套餐编码"), max_length=32, unique=True)
    name = models.CharField(_("套餐名称"), max_length=60)
    description = models.CharField(_("简介"), max_length=300, blank=True)
    price = models.DecimalField(_("价格（元）"), max_digits=8, decimal_places=2)
    daily_capacity = models.PositiveSmallIntegerField(_("每日名额"))
    preparation = models.TextField(_("体检须知"), blank=True, max_length=500)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["price", "code"]
        verbose_name = _("体检套餐")
        verbose_name_plural = _("体检套餐")
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_capacity__gte=1, daily_capacity__lte=1000),
                name="exam_package_capacity_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name


class PackageItem(models.Model):
    """An item of a package with its sex and age constraints (PE-1, e.g. 妇科检查: female only)."""

    class Sex(models.TextChoices):
        ANY = "", _("不限")
        MALE = "M", _("男")
        FEMALE = "F", _("女")

    package = models.ForeignKey(ExamPackage, on_delete=models.CASCADE, related_name="items")
    name = models.CharField(_("项目"), max_length=60)
    sex = models.CharField(_("适用性别"), max_length=1, choices=Sex.choices, blank=True, default="")
    min_age = models.PositiveSmallIntegerField(_("最小年龄"), null=True, blank=True)
    max_age = models.PositiveSmallIntegerField(_("最大年龄"), null=True, blank=True)
    requires_fasting = models.BooleanField(_("需空腹"), default=False)

    class Meta:
        ordering = ["package", "id"]
        verbose_name = _("套餐项目")
        verbose_name_plural = _("套餐项目")

    def __str__(self) -> str:
        return self.name


class PackageOrder(models.Model):
    """A patient's physical-exam booking (体检预约) on a day, holding one numbered place of the
    package's daily capacity (``place`` 1..capacity, unique while booked)."""

    class Status(models.TextChoices):
        BOOKED = rules.PACKAGE_BOOKED, _("已预约")
        CANCELLED = rules.PACKAGE_CANCELLED, _("已取消")
        COMPLETED = rules.PACKAGE_COMPLETED, _("已体检")

    package = models.ForeignKey(ExamPackage, on_delete=models.PROTECT, related_name="orders")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="package_orders")
    service_date = models.DateField(_("体检日期"))
    place = models.PositiveSmallIntegerField()
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.BOOKED)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    booked_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-service_date", "-id"]
        verbose_name = _("体检预约")
        verbose_name_plural = _("体检预约")
        constraints = [
            models.UniqueConstraint(
                fields=["package", "service_date", "place"],
                condition=Q(status="booked"),
                name="package_order_place_unique",
            ),
            models.UniqueConstraint(
                fields=["patient", "service_date"],
                condition=Q(status="booked"),
                name="package_order_one_per_patient_day",
            ),
            models.CheckConstraint(
                condition=Q(status__in=rules.PACKAGE_STATUSES), name="package_order_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"PackageOrder {self.pk}"
