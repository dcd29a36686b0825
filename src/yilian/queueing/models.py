"""Triage and queue calling (分诊叫号): access.md §3, Q-1..Q-12.

A ``Queue`` is one doctor-session (one ``scheduling.ClinicSession``); its tickets are
``QueueEntry`` rows; every action on them is an append-only ``QueueEvent`` (Q-12, L-1). Writes
lock the queue row (``select_for_update``) — a queue has one doctor, so this never contends.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from yilian.queueing import rules


class ClinicRoom(models.Model):
    """A consulting room (诊室), e.g. 3诊室, in a waiting zone (候诊区) whose screen it shares."""

    department = models.ForeignKey("community.Department", on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(_("诊室名称"), max_length=30, help_text=_("如：3诊室"))
    zone = models.CharField(_("候诊区"), max_length=30, blank=True, help_text=_("如：二楼内科候诊区"))
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["department", "name"]
        verbose_name = _("诊室")
        verbose_name_plural = _("诊室")
        constraints = [
            models.UniqueConstraint(fields=["department", "name"], name="room_name_unique_per_dept")
        ]

    def __str__(self) -> str:
        return self.name


class Queue(models.Model):
    """The queue of one doctor-session (候诊队列), with the Q-7 counters and its settings.

    ``calls`` numbers the calls made (1, 2, 3 …); each QueueEvent of kind ``called`` carries its
    ordinal and lane, from which ``rules.QueueState`` is rebuilt. ``last_return_call`` and
    ``last_priority_call`` are kept here too so that the state needs one query.
    """

    session = models.OneToOneField(
        "scheduling.ClinicSession", on_delete=models.PROTECT, related_name="queue", verbose_name=_("出诊单元")
    )
    room = models.ForeignKey(
        ClinicRoom,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="queues",
        verbose_name=_("诊室"),
    )
    current = models.ForeignKey(
        "QueueEntry",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("当前就诊"),
    )
    calls = models.PositiveIntegerField(default=0)
    last_return_call = models.PositiveIntegerField(default=0)
    last_priority_call = models.PositiveIntegerField(default=0)
    next_walk_in_seq = models.PositiveIntegerField(default=0)
    priority_mode = models.CharField(
        _("优先方式"),
        max_length=12,
        choices=[(rules.MODE_FRONT, _("优先者排最前")), (rules.MODE_INTERLEAVE, _("2普通+1优先"))],
        default=rules.MODE_FRONT,
    )
    voice_privacy = models.BooleanField(_("语音不播姓名"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("候诊队列")
        verbose_name_plural = _("候诊队列")
        constraints = [
            models.CheckConstraint(
                condition=Q(priority_mode__in=rules.PRIORITY_MODES), name="queue_priority_mode_valid"
            )
        ]

    def __str__(self) -> str:
        return f"Queue {self.pk} (session {self.session_id})"


class QueueEntry(models.Model):
    """A queue ticket (候诊号): one patient's place in one queue.

    ``seq`` is the number called out (号序, the booked slot's number); ``segment_start`` the
    effective segment (Q-2) fixed at sign-in; ``calls_at_sign_in`` the queue's call count when the
    patient last joined a lane; ``wait_for`` the tickets waiting at a re-sign-in after miss 3 (Q-8).
    """

    class Lane(models.TextChoices):
        NORMAL = rules.NORMAL, _("普通")
        PRIORITY = rules.PRIORITY, _("优先")
        RETURN = rules.RETURN, _("回诊")
        RECALL = rules.RECALL, _("过号重排")

    class State(models.TextChoices):
        WAITING = rules.WAITING, _("候诊")
        CALLED = rules.CALLED, _("已呼叫")
        IN_CONSULTATION = rules.IN_CONSULTATION, _("就诊中")
        MISSED = rules.MISSED, _("过号")
        SENT_FOR_EXAMS = rules.SENT_FOR_EXAMS, _("检查中")
        DONE = rules.DONE, _("已就诊")
        VOIDED = rules.VOIDED, _("已作废")
        LEFT = rules.LEFT, _("已离开")

    class Evidence(models.TextChoices):
        MILITARY = rules.EVIDENCE_MILITARY, _("军人证（现役军人）")
        FIREFIGHTER = rules.EVIDENCE_FIREFIGHTER, _("消防救援人员证")
        AGE = rules.EVIDENCE_AGE, _("高龄（按身份证计算）")
        DISABILITY = rules.EVIDENCE_DISABILITY, _("残疾人证")
        PREGNANCY = rules.EVIDENCE_PREGNANCY, _("孕产妇（母子健康手册）")

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="entries")
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="queue_entries",
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="queue_entries")
    lane = models.CharField(_("队列"), max_length=10, choices=Lane.choices, default=Lane.NORMAL)
    state = models.CharField(_("状态"), max_length=16, choices=State.choices, default=State.WAITING)
    seq = models.PositiveIntegerField(_("号序"))
    segment_start = models.DateTimeField(_("所属时段"))
    segment_end = models.DateTimeField(_("时段结束"), null=True, blank=True)
    late = models.BooleanField(_("迟到"), default=False)
    booked = models.BooleanField(_("预约患者"), default=True)
    signed_in_at = models.DateTimeField(_("签到时间"))
    calls_at_sign_in = models.PositiveIntegerField(default=0)
    wait_for = models.JSONField(default=list, blank=True)
    priority_level = models.PositiveSmallIntegerField(_("优先级"), default=0)
    priority_evidence = models.CharField(_("优先依据"), max_length=12, choices=Evidence.choices, blank=True)
    priority_certificate = models.CharField(_("证件号/说明"), max_length=60, blank=True)
    priority_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    misses = models.PositiveSmallIntegerField(_("过号次数"), default=0)
    called_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    visit_date = models.DateField(_("就诊日期"))

    class Meta:
        ordering = ["queue", "seq", "id"]
        verbose_name = _("候诊号")
        verbose_name_plural = _("候诊号")
        constraints = [
            models.CheckConstraint(condition=Q(lane__in=rules.LANES), name="queue_entry_lane_valid"),
            models.CheckConstraint(condition=Q(state__in=rules.STATES), name="queue_entry_state_valid"),
            models.CheckConstraint(
                condition=Q(priority_evidence="") | Q(priority_evidence__in=rules.PRIORITY_KINDS),
                name="queue_entry_evidence_valid",
            ),
            # One live ticket per appointment: a second sign-in finds the first.
            models.UniqueConstraint(
                fields=["appointment"],
                condition=Q(appointment__isnull=False) & ~Q(state__in=[rules.VOIDED, rules.LEFT]),
                name="queue_entry_one_live_per_appointment",
            ),
        ]
        indexes = [models.Index(fields=["queue", "state"], name="queue_entry_queue_state_idx")]

    def __str__(self) -> str:
        return f"{self.queue_id}#{self.seq}"

    @property
    def priority_tag(self) -> str:
        return rules.priority_tag(self.priority_evidence) if self.priority_level else ""

    def as_rule_entry(self) -> rules.Entry:
        return rules.Entry(
            id=self.pk,
            seq=self.seq,
            lane=self.lane,
            segment_start=self.segment_start,
            late=self.late,
            booked=self.booked,
            signed_in_at=self.signed_in_at,
            calls_at_sign_in=self.calls_at_sign_in,
            priority_level=self.priority_level,
            misses=self.misses,
            wait_for=frozenset(self.wait_for or ()),
        )


class QueueEvent(models.Model):
    """Append-only log of everything that happened in a queue (Q-12, L-1): sign-in, call, recall,
    miss, re-sign-in, priority set (with evidence type), exams, return, finish, transfer, void.

    ``ordinal`` and ``lane`` are set on calls (the Q-7 state); ``text`` holds the voice text of a
    call or recall, which the display boards speak (Q-11). Services only ever insert rows.
    """

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", _("签到")
        SIGN_IN_CANCELLED = "sign_in_cancel", _("取消签到")
        CALLED = "called", _("呼叫")
        PRECALLED = "precalled", _("预呼（请准备）")
        RECALLED = "recalled", _("复呼")
        MISSED = "missed", _("过号")
        RESIGNED_IN = "resigned_in", _("过号重新签到")
        PRIORITY_SET = "priority_set", _("设置优先")
        SENT_FOR_EXAMS = "sent_for_exams", _("置为检查")
        RETURNED = "returned", _("回诊签到")
        FINISHED = "finished", _("结束就诊")
        TRANSFERRED = "transferred", _("转诊")
        VOIDED = "voided", _("作废")

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="events")
    entry = models.ForeignKey(QueueEntry, null=True, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    ordinal = models.PositiveIntegerField(null=True, blank=True)
    lane = models.CharField(max_length=10, blank=True)
    text = models.CharField(max_length=120, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("叫号记录")
        verbose_name_plural = _("叫号记录")
        indexes = [models.Index(fields=["queue", "kind", "id"], name="queue_event_queue_kind_idx")]

    def __str__(self) -> str:
        return f"{self.queue_id} {self.kind} {self.entry_id}"


class Display(models.Model):
    """A waiting-room screen (候诊显示屏): one room's screen or one zone's screen.

    The screen runs on a kiosk without a staff sign-in; it opens ``/queueing/display/<token>/``
    where the token is a per-display secret generated by staff. Only its SHA-256 is stored, so the
    link is shown once; a new link revokes the old one.
    """

    class Kind(models.TextChoices):
        ROOM = "room", _("诊室屏")
        ZONE = "zone", _("候诊区屏")

    name = models.CharField(_("名称"), max_length=40)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices)
    room = models.ForeignKey(
        ClinicRoom, null=True, blank=True, on_delete=models.CASCADE, related_name="displays"
    )
    zone = models.CharField(_("候诊区"), max_length=30, blank=True)
    organisation = models.ForeignKey("community.Organisation", on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("候诊显示屏")
        verbose_name_plural = _("候诊显示屏")
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="room") & Q(room__isnull=False)) | (Q(kind="zone") & ~Q(zone="")),
                name="display_target_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name
