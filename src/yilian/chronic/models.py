"""Chronic-disease management tables (慢病管理): chronic.md §1 (minimal data model).

A patient has one *active* registry (建档) per disease; follow-ups (随访) belong to a registry and
carry the readings plus the evaluation the rules gave them (R3–R5), stored so that indicators
(IND-1..IND-4, SIM-1..SIM-10) and work lists (R7.3) read plain columns instead of re-running the
rules. ``RegistryYear`` is the per-registry, per-assessment-year roll-up that the follow-up service
keeps in the same transaction, so that county-wide indicators aggregate one row per registry.

Derived columns (``classification``, ``next_due_on``, ``bp_at_target`` …) are written only by
``chronic.services``; nothing here computes in ``save()``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Disease(models.TextChoices):
    HTN = "htn", _("高血压")
    T2DM = "t2dm", _("2型糖尿病")
    CHD = "chd", _("冠心病")
    STROKE = "stroke", _("脑卒中")
    COPD = "copd", _("慢阻肺")
    CANCER = "cancer", _("恶性肿瘤")


class FamilyDoctorTeam(models.Model):
    """A family-doctor team (家庭医生团队) of a clinic: a lead doctor and members."""

    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("团队名称"), max_length=60)
    leader = models.ForeignKey("community.Staff", on_delete=models.PROTECT, related_name="+")
    members = models.ManyToManyField("community.Staff", related_name="family_doctor_teams", blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("家庭医生团队")
        verbose_name_plural = _("家庭医生团队")
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="fd_team_unique_name")]

    def __str__(self) -> str:
        return self.name


class FamilyDoctorContract(models.Model):
    """A family-doctor service contract (家庭医生签约) with its term and team."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("履约中")
        ENDED = "ended", _("已到期")
        TERMINATED = "terminated", _("已解约")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(FamilyDoctorTeam, on_delete=models.PROTECT, related_name="contracts")
    signed_on = models.DateField(_("签约日期"))
    starts_on = models.DateField(_("生效日期"))
    ends_on = models.DateField(_("到期日期"))
    package = models.CharField(_("服务包"), max_length=40, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    terminated_on = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("家庭医生签约")
        verbose_name_plural = _("家庭医生签约")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gt=models.F("starts_on")), name="fd_contract_term_valid"
            ),
            models.UniqueConstraint(
                fields=["patient"], condition=Q(status="active"), name="fd_contract_one_active_per_patient"
            ),
        ]


class Registry(models.Model):
    """A patient's disease registry record (专病档案, 建档): chronic.md §1 ``Registry``, R2.1.

    Closed only for death, moving out or a revoked diagnosis; "lost to follow-up" (失访) is derived
    from being overdue (R7.3), never stored as a status.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("在管")
        CLOSED = "closed", _("已结案")

    class CloseReason(models.TextChoices):
        DEATH = "death", _("死亡")
        MOVED_OUT = "moved_out", _("迁出")
        DIAGNOSIS_REVOKED = "diagnosis_revoked", _("排除诊断")

    class DiagnosisSource(models.TextChoices):
        COUNTY_HOSPITAL = "county_hospital", _("县级医院确诊")
        HIGHER_HOSPITAL = "higher_hospital", _("上级医院确诊")
        TOWNSHIP = "township", _("乡镇卫生院确诊")
        SCREENING = "screening", _("筛查后确诊")
        TRANSFER_IN = "transfer_in", _("外地转入")
        OTHER = "other", _("其他")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    disease = models.CharField(_("病种"), max_length=8, choices=Disease.choices)
    status = models.CharField(_("管理状态"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    registered_on = models.DateField(_("建档日期"))
    diagnosed_on = models.DateField(_("确诊日期"))
    diagnosis_source = models.CharField(_("确诊来源"), max_length=20, choices=DiagnosisSource.choices)
    managing_org = models.ForeignKey(
        "community.Organisation", on_delete=models.PROTECT, related_name="+", verbose_name=_("管理机构")
    )
    responsible_doctor = models.ForeignKey(
        "community.Staff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("责任医生"),
    )
    high_risk = models.BooleanField(_("高危"), default=False)
    prior_cvd = models.BooleanField(_("既往心梗/卒中"), default=False)
    reminder_consent = models.BooleanField(_("同意短信提醒"), default=False)
    closed_on = models.DateField(_("结案日期"), null=True, blank=True)
    close_reason = models.CharField(_("结案原因"), max_length=20, choices=CloseReason.choices, blank=True)
    # Denormalised by the follow-up service (R5.x, R7.3): the plan the latest follow-up set.
    last_follow_up_on = models.DateField(null=True, blank=True)
    next_follow_up_on = models.DateField(_("下次随访日期"), null=True, blank=True)
    last_classification = models.CharField(max_length=12, blank=True)
    # R7.3 call results: not on the call list again before this date.
    call_snoozed_until = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("专病档案")
        verbose_name_plural = _("专病档案")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "disease"],
                condition=Q(status="active"),
                name="registry_one_active_per_disease",
            ),
            models.CheckConstraint(
                condition=(Q(status="active") & Q(closed_on__isnull=True) & Q(close_reason=""))
                | (Q(status="closed") & Q(closed_on__isnull=False) & ~Q(close_reason="")),
                name="registry_closed_has_date_and_reason",
            ),
            models.CheckConstraint(
                condition=Q(diagnosed_on__lte=models.F("registered_on")),
                name="registry_diagnosed_before_registered",
            ),
        ]
        indexes = [
            models.Index(fields=["managing_org", "disease", "status"], name="registry_org_disease"),
            models.Index(fields=["status", "next_follow_up_on"], name="registry_due"),
            models.Index(
                fields=["responsible_doctor", "status", "next_follow_up_on"], name="registry_doctor_due"
            ),
            # R7.3 work lists: one village's overdue page is a range scan in list order (high-risk
            # first, then fewest days overdue), its count an index-only scan.
            models.Index(
                fields=["managing_org", "high_risk", "next_follow_up_on", "id"],
                condition=Q(status="active"),
                name="registry_org_worklist",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_disease_display()} #{self.pk}"


class RegistryStatusHistory(models.Model):
    """Append-only history of a registry's status (档案状态变更记录): from, to, at, by, reason."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=8, blank=True)
    to_status = models.CharField(max_length=8)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]


class ScreeningReading(models.Model):
    """A screening measurement of a resident not (yet) in the registry (筛查): chronic.md R1.1–R1.4.

    ``result`` is what the rules made of it (normal / high-normal / suspected …); ``risk_factors``
    the R1.3 factors present.
    """

    class Setting(models.TextChoices):
        FREE_CLINIC = "free_clinic", _("义诊")
        HEALTH_CHECK = "health_check", _("健康体检")
        CLINIC = "clinic", _("门诊首诊测压")
        HOME = "home", _("入户")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    taken_on = models.DateField(_("测量日期"))
    setting = models.CharField(_("场景"), max_length=14, choices=Setting.choices)
    sbp = models.PositiveSmallIntegerField(_("收缩压"), null=True, blank=True)
    dbp = models.PositiveSmallIntegerField(_("舒张压"), null=True, blank=True)
    fpg_mmol = models.DecimalField(_("空腹血糖"), max_digits=4, decimal_places=1, null=True, blank=True)
    glucose_any_mmol = models.DecimalField(
        _("随机血糖"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    ecg_abnormal = models.BooleanField(_("心电图异常"), null=True, blank=True)
    height_cm = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    weight_kg = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    waist_cm = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    family_history_htn = models.BooleanField(default=False)
    family_history_dm = models.BooleanField(default=False)
    high_salt_diet = models.BooleanField(default=False)
    heavy_drinking = models.BooleanField(default=False)
    smoking = models.BooleanField(default=False)
    result = models.CharField(_("筛查结果"), max_length=20, blank=True)
    risk_factors = models.JSONField(default=list, blank=True)
    rules_fired = models.JSONField(default=list, blank=True)
    client_uuid = models.UUIDField(null=True, blank=True, unique=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("筛查记录")
        verbose_name_plural = _("筛查记录")
        indexes = [
            models.Index(fields=["patient", "taken_on"], name="screening_patient_day"),
            models.Index(fields=["organisation", "taken_on"], name="screening_org_day"),
        ]


class ScreeningCase(models.Model):
    """A suspected case opened by a screening reading (疑似/初步诊断 → 确诊或排除): R1.2.

    ``due_on`` is the re-check date (suspected) or the referral tracking date (preliminary).
    """

    class Status(models.TextChoices):
        SUSPECTED = "suspected", _("疑似，待复查")
        PRELIMINARY = "preliminary", _("初步诊断，建议转诊确诊")
        CONFIRMED = "confirmed", _("已确诊建档")
        EXCLUDED = "excluded", _("已排除")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    disease = models.CharField(max_length=8, choices=Disease.choices)
    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUSPECTED)
    opened_on = models.DateField()
    due_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)
    registry = models.ForeignKey(Registry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "disease"],
                condition=Q(status__in=["suspected", "preliminary"]),
                name="screening_case_one_open_per_disease",
            )
        ]
        indexes = [models.Index(fields=["organisation", "status", "due_on"], name="screening_case_due")]


class FollowUp(models.Model):
    """A chronic-disease follow-up visit (随访) of one registry: chronic.md §1 ``FollowUp``, R2–R5.

    One visit that measures for two registries (HTN + T2DM, R5.7) is stored as one row per registry,
    tied by ``visit_key``. The evaluation columns are the rules' output at recording time, with the
    rule IDs that fired in ``rules_fired``.
    """

    class Mode(models.TextChoices):
        CLINIC = "clinic", _("门诊")
        HOME = "home", _("家庭")
        PHONE = "phone", _("电话")

    class Classification(models.TextChoices):
        SATISFIED = "satisfied", _("控制满意")
        UNSATISFIED = "unsatisfied", _("控制不满意")
        ADR = "adr", _("不良反应")
        COMPLICATION = "complication", _("并发症")

    class Referral(models.TextChoices):
        NONE = "none", _("无需转诊")
        ROUTINE = "routine", _("转诊")
        URGENT = "urgent", _("紧急转诊")

    class Adherence(models.TextChoices):
        REGULAR = "regular", _("规律")
        INTERMITTENT = "intermittent", _("间断")
        NONE = "none", _("不服药")

    registry = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="follow_ups")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    disease = models.CharField(max_length=8, choices=Disease.choices)
    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    visit_key = models.UUIDField(db_index=True)
    visit_on = models.DateField(_("随访日期"))
    mode = models.CharField(_("随访方式"), max_length=8, choices=Mode.choices)
    sbp = models.PositiveSmallIntegerField(_("收缩压"), null=True, blank=True)
    dbp = models.PositiveSmallIntegerField(_("舒张压"), null=True, blank=True)
    sbp2 = models.PositiveSmallIntegerField(_("收缩压（第二次）"), null=True, blank=True)
    dbp2 = models.PositiveSmallIntegerField(_("舒张压（第二次）"), null=True, blank=True)
    fpg_mmol = models.DecimalField(_("空腹血糖"), max_digits=4, decimal_places=1, null=True, blank=True)
    glucose_any_mmol = models.DecimalField(
        _("随机血糖"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    heart_rate = models.PositiveSmallIntegerField(_("心率"), null=True, blank=True)
    temperature_c = models.DecimalField(_("体温"), max_digits=3, decimal_places=1, null=True, blank=True)
    height_cm = models.DecimalField(_("身高"), max_digits=4, decimal_places=1, null=True, blank=True)
    weight_kg = models.DecimalField(_("体重"), max_digits=4, decimal_places=1, null=True, blank=True)
    waist_cm = models.DecimalField(_("腰围"), max_digits=4, decimal_places=1, null=True, blank=True)
    symptoms = models.JSONField(_("症状"), default=list, blank=True)
    pregnant_or_lactating = models.BooleanField(default=False)
    unmanageable_other_disease = models.BooleanField(default=False)
    adr = models.BooleanField(_("药物不良反应"), default=False)
    adr_uncontrollable = models.BooleanField(_("不良反应难以控制"), default=False)
    new_complication = models.BooleanField(_("新发并发症"), default=False)
    complication_worsened = models.BooleanField(_("并发症加重"), default=False)
    adherence = models.CharField(_("服药依从性"), max_length=12, choices=Adherence.choices, blank=True)
    medications = models.JSONField(_("用药"), default=list, blank=True)
    lifestyle = models.JSONField(_("生活方式指导"), default=dict, blank=True)
    note = models.CharField(_("备注"), max_length=500, blank=True)
    # The rules' output (R3–R5), stored for indicators and work lists.
    age_at_visit = models.PositiveSmallIntegerField()
    bp_at_target = models.BooleanField(null=True)
    fpg_at_target = models.BooleanField(null=True)
    classification = models.CharField(max_length=12, choices=Classification.choices, blank=True)
    urgent = models.BooleanField(default=False)
    referral = models.CharField(max_length=8, choices=Referral.choices, default=Referral.NONE)
    referral_reasons = models.JSONField(default=list, blank=True)
    rules_fired = models.JSONField(default=list, blank=True)
    # Which R3.x danger signs made the visit urgent (e.g. "sbp>=180", "symptom:chest_tightness");
    # null for rows written in bulk (demo, import) before the column existed.
    urgent_signs = models.JSONField(default=list, blank=True, null=True)
    next_due_on = models.DateField(_("下次随访日期"))
    client_uuid = models.UUIDField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("随访记录")
        verbose_name_plural = _("随访记录")
        constraints = [
            # A retried submission from a phone on a weak network never records twice.
            models.UniqueConstraint(fields=["registry", "client_uuid"], name="follow_up_idempotent"),
            models.CheckConstraint(
                condition=Q(sbp__isnull=True) | Q(dbp__isnull=True) | Q(sbp__gt=models.F("dbp")),
                name="follow_up_sbp_above_dbp",
            ),
        ]
        indexes = [
            models.Index(fields=["registry", "visit_on"], name="follow_up_registry_day"),
            models.Index(fields=["disease", "visit_on"], name="follow_up_disease_day"),
            models.Index(fields=["organisation", "visit_on"], name="follow_up_org_day"),
        ]


class RegistryYear(models.Model):
    """A registry's roll-up for one assessment year (年度随访汇总), kept by the follow-up service.

    Carries exactly what IND-1..IND-4 need (chronic.md §6): the distinct face-to-face dates
    counted from ``max(year start, registered_on)`` (R2.3), the quarters they fall in, and the last
    face-to-face visit with a BP / an FPG and whether it met R4.1 / R4.2.
    """

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="years")
    year = models.PositiveSmallIntegerField()
    ff_dates = models.PositiveSmallIntegerField(default=0)
    ff_quarters = models.PositiveSmallIntegerField(default=0)  # bit q-1 set when quarter q has a visit
    last_bp_on = models.DateField(null=True)
    last_bp_at_target = models.BooleanField(null=True)
    last_fpg_on = models.DateField(null=True)
    last_fpg_at_target = models.BooleanField(null=True)
    referrals = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registry", "year"], name="registry_year_unique")]
        indexes = [models.Index(fields=["year", "registry"], name="registry_year_by_year")]


class Referral(models.Model):
    """A referral opened by the chronic-disease rules (慢病转诊): R1.2, R3.3, R5.3–R5.5, R7.2.

    Sent up the community's path (village → township → county). ``tracking_due_on`` is the date by
    which the referring clinic must follow it up (转诊随访, ``referral_tracking_days``).
    """

    class Kind(models.TextChoices):
        URGENT = "urgent", _("紧急转诊")
        ROUTINE = "routine", _("转诊")

    class Status(models.TextChoices):
        OPEN = "open", _("待跟踪")
        TRACKED = "tracked", _("已跟踪")
        CANCELLED = "cancelled", _("已撤销")

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    disease = models.CharField(max_length=8, choices=Disease.choices)
    registry = models.ForeignKey(
        Registry, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals"
    )
    follow_up = models.ForeignKey(FollowUp, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    screening_case = models.ForeignKey(
        ScreeningCase, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    reasons = models.JSONField(default=list)
    rules_fired = models.JSONField(default=list, blank=True)
    from_org = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    to_org = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_on = models.DateField()
    tracking_due_on = models.DateField()
    tracked_on = models.DateField(null=True, blank=True)
    outcome = models.CharField(_("转诊结果"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("慢病转诊")
        verbose_name_plural = _("慢病转诊")
        indexes = [
            models.Index(fields=["from_org", "status", "tracking_due_on"], name="referral_tracking_due"),
            models.Index(fields=["opened_on"], name="referral_opened"),
        ]


class CallAttempt(models.Model):
    """One call to an overdue patient and its one-tap outcome (电话随访名单结果): R7.3."""

    class Outcome(models.TextChoices):
        REACHED = "reached", _("已联系，同意随访")
        REMIND_LATER = "remind_later", _("稍后再联系")
        NO_ANSWER = "no_answer", _("无人接听")
        MOVED = "moved", _("已迁出")
        DIED = "died", _("已死亡")

    registry = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="calls")
    outcome = models.CharField(max_length=14, choices=Outcome.choices)
    note = models.CharField(max_length=200, blank=True)
    called_on = models.DateField()
    called_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["registry", "called_on"], name="call_registry_day")]


class Reminder(models.Model):
    """An SMS reminder for an overdue follow-up, at most one per planned date (R7.4)."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="reminders")
    planned_on = models.DateField()
    sent_at = models.DateTimeField()
    notification_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registry", "planned_on"], name="reminder_once_per_plan")
        ]


class ImportBatch(models.Model):
    """A bulk import of registries or follow-ups from the CSV/Excel template (批量导入).

    All rows or none: a batch with any row error imports nothing and keeps the row errors.
    """

    class Kind(models.TextChoices):
        REGISTRIES = "registries", _("专病档案")
        FOLLOW_UPS = "follow_ups", _("随访记录")

    class Status(models.TextChoices):
        REJECTED = "rejected", _("有错误，未导入")
        IMPORTED = "imported", _("已导入")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    filename = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    row_count = models.PositiveIntegerField(default=0)
    imported_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
