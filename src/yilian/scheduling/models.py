"""Outpatient schedules and booking (出诊排班, 号源, 预约挂号): access.md §1 (B-1..B-20), §8 F-Slot,
F-Appointment, F-Schedule.

Concurrency is carried by the schema: one row per numbered slot (号源) so that concurrent bookings
lock different rows (``SKIP LOCKED``), a partial unique index so a slot never has two occupying
appointments (B-10), a partial unique index for one active booking per patient × date × period ×
department (B-5), and a unique idempotency key per booking account.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from yilian.scheduling import rules


class BookingPolicy(models.Model):
    """A department's booking policy (预约规则): the configurable access.md §0 defaults.

    A department without a row uses ``rules.DEFAULTS``. Quotas and suspension thresholds are
    per hospital (``rules.BookingParameters``), not per department.
    """

    department = models.OneToOneField(
        "community.Department", on_delete=models.CASCADE, related_name="booking_policy"
    )
    booking_window_days = models.PositiveSmallIntegerField(_("提前放号天数"), default=7)
    release_time = models.TimeField(_("放号时间"), default=rules.DEFAULTS.release_time)
    close_minutes_before_end = models.PositiveSmallIntegerField(
        _("停止线上预约（出诊结束前分钟）"), default=30
    )
    cancel_deadline_days_before = models.PositiveSmallIntegerField(_("退号截止（就诊前天数）"), default=1)
    cancel_deadline_time = models.TimeField(_("退号截止时间"), default=rules.DEFAULTS.cancel_deadline_time)
    rerelease_delay_min_minutes = models.PositiveSmallIntegerField(_("退号回池最短延迟（分钟）"), default=5)
    rerelease_delay_max_minutes = models.PositiveSmallIntegerField(_("退号回池最长延迟（分钟）"), default=30)
    referral_reserved_ratio = models.DecimalField(
        _("转诊预留比例（普通号）"), max_digits=3, decimal_places=2, default=0.30
    )
    expert_referral_reserved_ratio = models.DecimalField(
        _("转诊预留比例（专家号）"), max_digits=3, decimal_places=2, default=0.50
    )
    onsite_reserved_ratio = models.DecimalField(
        _("现场号预留比例"), max_digits=3, decimal_places=2, default=0
    )
    referral_lead_days = models.PositiveSmallIntegerField(_("转诊号提前开放天数"), default=14)
    referral_return_hours = models.PositiveSmallIntegerField(_("转诊预留号回池（开诊前小时）"), default=48)

    class Meta:
        verbose_name = _("预约规则")
        verbose_name_plural = _("预约规则")
        constraints = [
            models.CheckConstraint(
                condition=Q(rerelease_delay_min_minutes__gte=1)
                & Q(rerelease_delay_max_minutes__gte=models.F("rerelease_delay_min_minutes")),
                name="booking_policy_rerelease_delay_valid",
            ),
            models.CheckConstraint(
                condition=Q(referral_reserved_ratio__gte=0, referral_reserved_ratio__lte=1)
                & Q(expert_referral_reserved_ratio__gte=0, expert_referral_reserved_ratio__lte=1)
                & Q(onsite_reserved_ratio__gte=0, onsite_reserved_ratio__lte=1),
                name="booking_policy_ratios_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"BookingPolicy({self.department_id})"


class ClinicSession(models.Model):
    """An outpatient session (出诊单元): one doctor (or a general clinic) × department × date × period.

    ``release_at`` is computed once at creation from the department's policy (B-3) so that the
    booking path reads it from the row it already has. A stopped session (停诊, B-15) is FHIR
    Schedule ``active = false``.
    """

    class Period(models.TextChoices):
        AM = rules.AM, _("上午")
        PM = rules.PM, _("下午")
        EVENING = rules.EVENING, _("夜间")

    class FeeClass(models.TextChoices):
        GENERAL = rules.GENERAL, _("普通号")
        EXPERT = rules.EXPERT, _("专家号")
        SPECIAL = rules.SPECIAL, _("特需号")

    class Status(models.TextChoices):
        OPEN = "open", _("正常出诊")
        STOPPED = "stopped", _("停诊")

    department = models.ForeignKey("community.Department", on_delete=models.PROTECT, related_name="sessions")
    doctor = models.ForeignKey(
        "community.Staff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clinic_sessions",
        verbose_name=_("出诊医生"),
        help_text=_("普通门诊（不指定医生）留空。"),
    )
    service_date = models.DateField(_("出诊日期"))
    period = models.CharField(_("时段"), max_length=8, choices=Period.choices)
    starts_at = models.DateTimeField(_("开诊时间"))
    ends_at = models.DateTimeField(_("停诊时间"))
    fee_class = models.CharField(_("号别"), max_length=8, choices=FeeClass.choices)
    capacity = models.PositiveIntegerField(_("号源总数"))
    release_at = models.DateTimeField(_("放号时间"))
    status = models.CharField(_("状态"), max_length=8, choices=Status.choices, default=Status.OPEN)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(_("停诊原因"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service_date", "starts_at", "id"]
        verbose_name = _("出诊单元")
        verbose_name_plural = _("出诊单元")
        constraints = [
            models.UniqueConstraint(
                fields=["doctor", "service_date", "period"],
                condition=Q(doctor__isnull=False),
                name="session_one_per_doctor_period",
            ),
            models.UniqueConstraint(
                fields=["department", "service_date", "period"],
                condition=Q(doctor__isnull=True),
                name="session_one_general_clinic_per_period",
            ),
            models.CheckConstraint(condition=Q(period__in=rules.PERIODS), name="session_period_valid"),
            models.CheckConstraint(
                condition=Q(fee_class__in=rules.FEE_CLASSES), name="session_fee_class_valid"
            ),
            models.CheckConstraint(condition=Q(status__in=["open", "stopped"]), name="session_status_valid"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="session_times_ordered"
            ),
            models.CheckConstraint(
                condition=Q(status="open", stopped_at__isnull=True)
                | Q(status="stopped", stopped_at__isnull=False),
                name="session_stop_consistent",
            ),
        ]
        indexes = [models.Index(fields=["department", "service_date"], name="session_dept_date_idx")]

    def __str__(self) -> str:
        return f"{self.service_date} {self.get_period_display()} {self.department_id}/{self.doctor_id or '-'}"

    @property
    def fhir_active(self) -> bool:
        return rules.fhir_schedule_active(self.status)


class Slot(models.Model):
    """One numbered slot (号源), the unit of booking: sequence number (号序), time segment (分时段,
    B-19), pool (public / on-site / referral reserve, B-17) and status (F-Slot).

    ``available_from`` carries the re-release delay (B-9): a freed number is ``free`` again but the
    booking query ignores it until then, so no job has to flip it back.
    """

    class Pool(models.TextChoices):
        PUBLIC = rules.PUBLIC, _("公开号")
        ONSITE = rules.ONSITE, _("现场号")
        REFERRAL = rules.REFERRAL, _("转诊预留号")

    class Status(models.TextChoices):
        FREE = rules.SLOT_FREE, _("可预约")
        HELD = rules.SLOT_HELD, _("锁定待支付")
        BOOKED = rules.SLOT_BOOKED, _("已预约")
        UNAVAILABLE = rules.SLOT_UNAVAILABLE, _("不可用")

    session = models.ForeignKey(ClinicSession, on_delete=models.CASCADE, related_name="slots")
    seq = models.PositiveIntegerField(_("号序"))
    starts_at = models.DateTimeField(_("时段开始"))
    ends_at = models.DateTimeField(_("时段结束"))
    pool = models.CharField(_("号池"), max_length=8, choices=Pool.choices, default=Pool.PUBLIC)
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.FREE)
    available_from = models.DateTimeField(_("重新放号时间"), null=True, blank=True)
    # B-20: a number freed in a session with a waitlist is offered to the waitlist first; the
    # public booking query ignores it until the offer step has placed it or given it up.
    for_waitlist = models.BooleanField(_("留给候补"), default=False)

    class Meta:
        ordering = ["session", "seq"]
        verbose_name = _("号源")
        verbose_name_plural = _("号源")
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="slot_seq_unique_per_session"),
            models.CheckConstraint(condition=Q(pool__in=rules.POOLS), name="slot_pool_valid"),
            models.CheckConstraint(condition=Q(status__in=rules.SLOT_STATUSES), name="slot_status_valid"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="slot_times_ordered"),
        ]
        indexes = [
            # The booking pick: free numbers of one session by pool, in number order.
            models.Index(
                fields=["session", "pool", "seq"], condition=Q(status="free"), name="slot_free_pick_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq}"

    def fhir_status(self, now) -> str:
        return rules.fhir_slot_status(self.status, self.available_from, now)


class Appointment(models.Model):
    """An outpatient appointment (预约挂号) of one patient on one numbered slot.

    ``service_date``, ``period`` and ``department`` are copied from the session so that B-5 can be a
    partial unique index. Status changes follow ``rules.TRANSITIONS`` and each writes an
    ``AppointmentStatusHistory`` row.
    """

    class Status(models.TextChoices):
        HELD = rules.HELD, _("待支付")
        BOOKED = rules.BOOKED, _("已预约")
        ARRIVED = rules.ARRIVED, _("已签到")
        FULFILLED = rules.FULFILLED, _("已就诊")
        NO_SHOW = rules.NO_SHOW, _("爽约")
        CANCELLED = rules.CANCELLED, _("已取消")
        ENTERED_IN_ERROR = rules.ENTERED_IN_ERROR, _("登记错误")

    class CancelReason(models.TextChoices):
        PATIENT = rules.REASON_PATIENT, _("患者取消")
        PROVIDER = rules.REASON_PROVIDER, _("医生停诊")
        MAINTENANCE = rules.REASON_MAINTENANCE, _("院方原因")
        HOLD_EXPIRED = rules.REASON_HOLD_EXPIRED, _("支付超时")
        MISSED_CALL = rules.REASON_MISSED_CALL, _("过号作废")

    class Channel(models.TextChoices):
        APP = rules.CHANNEL_APP, _("手机App/H5")
        WECHAT = rules.CHANNEL_WECHAT, _("微信")
        PHONE = rules.CHANNEL_PHONE, _("电话")
        KIOSK = rules.CHANNEL_KIOSK, _("自助机")
        COUNTER = rules.CHANNEL_COUNTER, _("窗口")
        REFERRAL = rules.CHANNEL_REFERRAL, _("医共体转诊")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="appointments")
    session = models.ForeignKey(ClinicSession, on_delete=models.PROTECT, related_name="appointments")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments")
    service_date = models.DateField()
    period = models.CharField(max_length=8, choices=ClinicSession.Period.choices)
    department = models.ForeignKey("community.Department", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices)
    cancel_reason = models.CharField(_("取消原因"), max_length=20, choices=CancelReason.choices, blank=True)
    channel = models.CharField(_("预约渠道"), max_length=8, choices=Channel.choices)
    idempotency_key = models.CharField(max_length=64, blank=True)
    # B-17: the referral order (转诊单号) a member institution booked a reserved number with.
    referral_ref = models.CharField(_("转诊单号"), max_length=rules.REFERRAL_REF_MAX, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    booked_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service_date", "id"]
        verbose_name = _("预约")
        verbose_name_plural = _("预约")
        constraints = [
            models.UniqueConstraint(
                fields=["slot"],
                condition=Q(status__in=rules.OCCUPYING_SLOT),
                name="appointment_one_per_slot",
            ),
            models.UniqueConstraint(
                fields=["patient", "service_date", "period", "department"],
                condition=Q(status__in=rules.ACTIVE_FOR_DUPLICATE),
                name="appointment_one_per_patient_session_dept",
            ),
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="appointment_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=rules.APPOINTMENT_STATUSES), name="appointment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(cancel_reason="") | Q(cancel_reason__in=rules.CANCEL_REASONS),
                name="appointment_cancel_reason_valid",
            ),
            # §8 invariant: a cancellation reason only on cancelled or no-show.
            models.CheckConstraint(
                condition=Q(cancel_reason="") | Q(status__in=[rules.CANCELLED, rules.NO_SHOW]),
                name="appointment_cancel_reason_only_when_cancelled",
            ),
            models.CheckConstraint(condition=Q(channel__in=rules.CHANNELS), name="appointment_channel_valid"),
        ]
        indexes = [
            models.Index(fields=["patient", "service_date"], name="appt_patient_date_idx"),
            models.Index(fields=["patient", "status", "cancelled_at"], name="appt_patient_cancel_idx"),
            models.Index(fields=["session", "status"], name="appt_session_status_idx"),
        ]

    def __str__(self) -> str:
        return f"Appointment {self.pk} ({self.status})"

    @property
    def fhir_status(self) -> str:
        return rules.fhir_appointment_status(self.status)


class AppointmentStatusHistory(models.Model):
    """Append-only history of an appointment's status (预约状态变更记录): from, to, at, by, reason."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("预约状态记录")
        verbose_name_plural = _("预约状态记录")


class WaitlistEntry(models.Model):
    """A place on a full session's waitlist (候补), access.md B-20.

    When a number is freed (after the re-release delay, B-9) the first waiting patient who still
    passes B-5, B-6 and B-12 gets a HELD appointment (``offered``) and must confirm (pay) within
    PAYMENT_HOLD_MIN (B-8), else the hold expires and the next one is offered.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("候补中")
        OFFERED = "offered", _("已分配，待支付")
        BOOKED = "booked", _("候补成功")
        EXPIRED = "expired", _("已失效")
        CANCELLED = "cancelled", _("已取消")

    session = models.ForeignKey(ClinicSession, on_delete=models.CASCADE, related_name="waitlist")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.WAITING)
    created_at = models.DateTimeField()
    offered_at = models.DateTimeField(null=True, blank=True)
    appointment = models.OneToOneField(
        Appointment, null=True, blank=True, on_delete=models.PROTECT, related_name="waitlist_entry"
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("候补")
        verbose_name_plural = _("候补")
        constraints = [
            models.UniqueConstraint(
                fields=["session", "patient"],
                condition=Q(status__in=["waiting", "offered"]),
                name="waitlist_one_open_entry_per_patient",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["waiting", "offered", "booked", "expired", "cancelled"]),
                name="waitlist_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["session", "status", "created_at"], name="waitlist_queue_idx")]
