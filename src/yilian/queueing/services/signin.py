"""Sign-in and the triage desk's actions (签到, 优先, 过号重新签到, 回诊, 取消签到): Q-1, Q-3, Q-5, Q-6, Q-8, B-2."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.patients import card
from yilian.patients.models import Patient
from yilian.queueing import errors, rules
from yilian.queueing.models import Queue, QueueEntry, QueueEvent
from yilian.queueing.services.base import (
    CERTIFICATE_MAX,
    Ticket,
    _appointment_hook,
    _check_desk,
    _check_nurse,
    _event,
    _lock_entry,
    _queue_for_session,
    _target,
    head_before_change,
    may_view_queue,
    parameters,
    precall_new_head,
    ticket_for,
)
from yilian.scheduling import rules as scheduling_rules
from yilian.scheduling.models import Appointment, ClinicSession, Slot

# --- Q-1 sign-in (签到) ----------------------------------------------------------------------------------


def _appointment_for_token(patient: Patient, at: datetime) -> Appointment:
    """The patient's appointment to sign in today: the first whose sign-in window is open, else
    the earliest still booked (whose refusal then explains why)."""
    today = timezone.localdate(at)
    candidates = list(
        Appointment.objects.filter(
            patient=patient,
            service_date=today,
            status__in=[scheduling_rules.BOOKED, scheduling_rules.ARRIVED],
            session__status=ClinicSession.Status.OPEN,
        )
        .select_related("slot", "session")
        .order_by("slot__starts_at", "id")
    )
    if not candidates:
        raise errors.NoAppointmentToday()
    for appointment in candidates:
        if (
            rules.signin_status(at, appointment.slot.starts_at, appointment.session.ends_at)
            == rules.SIGNIN_OK
        ):
            return appointment
    return candidates[0]


def check_in(
    *,
    actor: Actor,
    token: str | None = None,
    appointment_id: int | None = None,
    at: datetime | None = None,
) -> Ticket:
    """Q-1 sign-in: scan the e-health card (``token``) at a kiosk or desk, and/or name the
    appointment; a patient account may sign in its own appointment (phone near the clinic).

    B-2: the card must resolve to the booked patient, else ``IDENTITY_MISMATCH`` and nothing
    changes. Before segment start − SIGNIN_EARLY_MIN → ``TOO_EARLY``; from session end →
    ``SIGNIN_CLOSED`` and the appointment becomes NO_SHOW (B-11), which is committed before the
    refusal is raised. A second sign-in returns the existing ticket (``created=False``).
    """
    at = at or timezone.now()
    if not token and appointment_id is None:
        raise InvalidInput(_("请扫描电子健康卡，或选择要签到的预约。"), field="token")
    closed: Appointment | None = None
    with transaction.atomic():
        ticket, closed = _check_in(actor=actor, token=token, appointment_id=appointment_id, at=at)
    if closed is not None:
        raise errors.SigninClosed(appointment_id=closed.pk)
    assert ticket is not None
    return ticket


def _check_in(
    *, actor: Actor, token: str | None, appointment_id: int | None, at: datetime
) -> tuple[Ticket | None, Appointment | None]:
    scanned: Patient | None = None
    if token:
        if not actor.is_staff_member:
            raise PermissionDenied()
        scanned = card.verify_token(token, actor=actor)
    if appointment_id is not None:
        appointment = Appointment.objects.select_related("slot", "session").filter(pk=appointment_id).first()
        if appointment is None:
            raise NotFound()
        if actor.kind == "patient" and appointment.patient_id not in actor.managed_patient_ids:
            raise NotFound()
    else:
        assert scanned is not None
        appointment = _appointment_for_token(scanned, at)
    if scanned is not None and scanned.pk != appointment.patient_id:
        raise errors.IdentityMismatch()
    session = appointment.session
    queue = _queue_for_session(session)
    if actor.kind != "patient":
        _check_desk(actor, queue)

    existing = (
        QueueEntry.objects.filter(appointment=appointment)
        .exclude(state__in=[rules.VOIDED, rules.LEFT])
        .select_related("patient", "queue")
        .first()
    )
    if existing is not None:
        ticket = ticket_for(existing)
        return dataclasses.replace(ticket, created=False), None
    # ARRIVED without a live ticket: signed in before, then the sign-in was cancelled (取消签到).
    signable = (scheduling_rules.BOOKED, scheduling_rules.ARRIVED)
    if appointment.status not in signable or session.status != ClinicSession.Status.OPEN:
        raise errors.AppointmentNotSignable()

    status = rules.signin_status(at, appointment.slot.starts_at, session.ends_at)
    if status == rules.SIGNIN_TOO_EARLY:
        opens, _closes = rules.signin_window(appointment.slot.starts_at, session.ends_at)
        raise errors.TooEarly(opens_at=timezone.localtime(opens).isoformat())
    if status == rules.SIGNIN_CLOSED:
        _appointment_hook("mark_no_show", actor, appointment.pk, at, reason="B-11")
        audit.record(
            actor,
            "queue.sign_in_closed",
            target=audit.Target("scheduling.Appointment", appointment.pk, appointment.patient_id),
            outcome="refused",
            detail={"code": errors.SigninClosed.code, "rule": "Q-1"},
        )
        return None, appointment

    segments = list(
        Slot.objects.filter(session=session)
        .values_list("starts_at", "ends_at")
        .distinct()
        .order_by("starts_at")
    )
    segment_start, late = rules.effective_segment(
        (appointment.slot.starts_at, appointment.slot.ends_at), at, segments
    )
    segment_end = next((end for start, end in segments if start == segment_start), None)
    walk_in = (
        appointment.channel
        in (
            scheduling_rules.CHANNEL_COUNTER,
            scheduling_rules.CHANNEL_KIOSK,
        )
        and timezone.localdate(appointment.booked_at) == session.service_date
    )
    patient = appointment.patient
    elderly = rules.age_priority(patient.birth_date, session.service_date)
    head = head_before_change(queue)
    entry = QueueEntry.objects.create(
        queue=queue,
        appointment=appointment,
        patient=patient,
        lane=rules.PRIORITY if elderly else rules.NORMAL,
        seq=appointment.slot.seq,
        segment_start=segment_start,
        segment_end=segment_end,
        late=late,
        booked=not walk_in,
        signed_in_at=at,
        calls_at_sign_in=queue.calls,
        priority_level=rules.priority_level(rules.EVIDENCE_AGE) if elderly else 0,
        priority_evidence=rules.EVIDENCE_AGE if elderly else "",
        visit_date=session.service_date,
    )
    entry.queue = queue
    _event(queue, entry, QueueEvent.Kind.SIGNED_IN, actor, at, detail={"late": late, "walk_in": walk_in})
    if elderly:
        _event(queue, entry, QueueEvent.Kind.PRIORITY_SET, actor, at, detail={"evidence": rules.EVIDENCE_AGE})
    precall_new_head(queue, head, actor, at)
    audit.record(
        actor,
        "queue.sign_in",
        target=_target(entry),
        detail={"queue": queue.pk, "seq": entry.seq, "late": late, "card": bool(token)},
    )
    if appointment.status == scheduling_rules.BOOKED:
        _appointment_hook("mark_arrived", actor, appointment.pk, at)
    return ticket_for(entry), None


# --- Q-3 priority (优先) -------------------------------------------------------------------------------


@transaction.atomic
def set_priority(
    *, actor: Actor, entry_id: int, evidence: str, certificate: str = "", at: datetime | None = None
) -> QueueEntry:
    """Q-3: a triage nurse sets priority after checking the evidence; the certificate is recorded
    (required for every kind except age, which is checked against the birth date on the visit
    date). Patients cannot set priority (403). Q-4 then places the patient."""
    at = at or timezone.now()
    if not actor.is_staff_member:
        raise PermissionDenied()
    queue, entry = _lock_entry(entry_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_nurse(actor, queue)
    if evidence not in rules.PRIORITY_KINDS:
        raise InvalidInput(_("请选择优先依据（军人、消防、高龄、残疾、孕产妇）。"), field="evidence")
    certificate = (certificate or "").strip()
    if len(certificate) > CERTIFICATE_MAX:
        raise InvalidInput(_("证件信息不能超过 60 个字符。"), field="certificate")
    if rules.needs_certificate(evidence) and not certificate:
        raise errors.EvidenceRequired(field="certificate")
    if evidence == rules.EVIDENCE_AGE and not rules.age_priority(entry.patient.birth_date, entry.visit_date):
        raise InvalidInput(
            _("按身份证计算，患者就诊当日未满 %(age)s 周岁，不能按高龄优先。")
            % {"age": rules.DEFAULTS.priority_age},
            field="evidence",
        )
    if entry.state != rules.WAITING or entry.lane not in (rules.NORMAL, rules.PRIORITY):
        raise errors.TicketStateConflict(
            _("只有正在候诊的初诊患者可以设置优先；回诊和过号患者按各自规则排队。")
        )
    head = head_before_change(queue)
    entry.lane = rules.PRIORITY
    entry.priority_level = rules.priority_level(evidence)
    entry.priority_evidence = evidence
    entry.priority_certificate = certificate
    entry.priority_set_by_id = actor.user_id
    entry.save(
        update_fields=[
            "lane",
            "priority_level",
            "priority_evidence",
            "priority_certificate",
            "priority_set_by",
        ]
    )
    _event(queue, entry, QueueEvent.Kind.PRIORITY_SET, actor, at, detail={"evidence": evidence})
    precall_new_head(queue, head, actor, at)
    audit.record(
        actor, "queue.priority_set", target=_target(entry), detail={"evidence": evidence, "rule": "Q-3"}
    )
    return entry


@transaction.atomic
def re_sign_in(*, actor: Actor, entry_id: int, at: datetime | None = None) -> Ticket:
    """召回 / 过号重新签到 (Q-6, Q-8): a missed patient is back. After misses 1–2 they are called
    once MISSED_GAP patients have been called; after miss 3 also only after everyone waiting now.
    A voided ticket → ``TICKET_VOIDED``; after session end → ``SIGNIN_CLOSED``."""
    at = at or timezone.now()
    if not actor.is_staff_member:
        raise PermissionDenied()
    queue, entry = _lock_entry(entry_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_desk(actor, queue)
    if entry.state == rules.VOIDED:
        raise errors.TicketVoided()
    if entry.state != rules.MISSED:
        raise errors.TicketStateConflict(_("只有过号的患者可以重新签到。"))
    if at >= queue.session.ends_at:
        raise errors.SigninClosed(_("本出诊单元已结束，不能重新签到。"))
    wait_for: list[int] = []
    if rules.miss_outcome(entry.misses, parameters(queue)) == rules.MISS_TAIL:
        wait_for = sorted(
            QueueEntry.objects.filter(queue=queue, state=rules.WAITING).values_list("id", flat=True)
        )
    head = head_before_change(queue)
    entry.state = rules.WAITING
    entry.lane = rules.RECALL
    entry.calls_at_sign_in = queue.calls
    entry.wait_for = wait_for
    entry.save(update_fields=["state", "lane", "calls_at_sign_in", "wait_for"])
    _event(
        queue,
        entry,
        QueueEvent.Kind.RESIGNED_IN,
        actor,
        at,
        lane=rules.RECALL,
        detail={"misses": entry.misses},
    )
    precall_new_head(queue, head, actor, at)
    audit.record(
        actor, "queue.re_sign_in", target=_target(entry), detail={"misses": entry.misses, "rule": "Q-8"}
    )
    return ticket_for(entry)


def _return_queue(entry: QueueEntry, at: datetime) -> Queue:
    """Q-5: the same doctor's session today, else a session of the same department today."""
    today = timezone.localdate(at)
    old = entry.queue.session
    open_today = ClinicSession.objects.filter(
        service_date=today, status=ClinicSession.Status.OPEN, ends_at__gt=at, department_id=old.department_id
    ).order_by("starts_at", "id")
    session = None
    if old.doctor_id is not None:
        session = open_today.filter(doctor_id=old.doctor_id).first()
    if session is None:
        session = open_today.filter(doctor__isnull=True).first() or open_today.first()
    if session is None:
        raise NotFound(_("今天该科室没有正在出诊的医生，不能回诊签到。"))
    return _queue_for_session(session)


@transaction.atomic
def return_with_results(*, actor: Actor, entry_id: int, at: datetime | None = None) -> Ticket:
    """回诊 (Q-5): a patient back with exam results joins the RETURN lane (first in, first out) of
    the same doctor — the same queue during the session, otherwise today's session of that doctor
    or of the department — free within RETURN_FREE_DAYS (visit day included), else
    ``RETURN_WINDOW_EXPIRED``."""
    at = at or timezone.now()
    if not actor.is_staff_member:
        raise PermissionDenied()
    queue, entry = _lock_entry(entry_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_desk(actor, queue)
    if entry.state not in (rules.SENT_FOR_EXAMS, rules.DONE):
        raise errors.TicketStateConflict(_("只有已就诊或去做检查的患者可以回诊。"))
    if not rules.return_window_open(entry.visit_date, timezone.localdate(at), parameters(queue)):
        raise errors.ReturnWindowExpired()
    if queue.session.ends_at > at and queue.session.service_date == timezone.localdate(at):
        head = head_before_change(queue)
        entry.state = rules.WAITING
        entry.lane = rules.RETURN
        entry.calls_at_sign_in = queue.calls
        entry.signed_in_at = at
        entry.wait_for = []
        entry.save(update_fields=["state", "lane", "calls_at_sign_in", "signed_in_at", "wait_for"])
        _event(queue, entry, QueueEvent.Kind.RETURNED, actor, at, lane=rules.RETURN)
        precall_new_head(queue, head, actor, at)
        audit.record(actor, "queue.return", target=_target(entry), detail={"rule": "Q-5"})
        return ticket_for(entry)
    target = _return_queue(entry, at)
    returned = QueueEntry.objects.create(
        queue=target,
        appointment=None,
        patient=entry.patient,
        lane=rules.RETURN,
        seq=entry.seq,
        segment_start=at,
        late=False,
        booked=True,
        signed_in_at=at,
        calls_at_sign_in=target.calls,
        visit_date=entry.visit_date,
    )
    returned.queue = target
    _event(
        target,
        returned,
        QueueEvent.Kind.RETURNED,
        actor,
        at,
        lane=rules.RETURN,
        detail={"from_entry": entry.pk},
    )
    audit.record(
        actor, "queue.return", target=_target(returned), detail={"rule": "Q-5", "from_entry": entry.pk}
    )
    return ticket_for(returned)


@transaction.atomic
def cancel_sign_in(*, actor: Actor, entry_id: int, at: datetime | None = None) -> QueueEntry:
    """取消签到 (Q-12 nurse action): a waiting patient leaves the queue (signed in by mistake, or
    gone home). The ticket becomes LEFT; the appointment is not touched (it can be signed in again
    while the window is open)."""
    at = at or timezone.now()
    if not actor.is_staff_member:
        raise PermissionDenied()
    queue, entry = _lock_entry(entry_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_nurse(actor, queue)
    if entry.state != rules.WAITING:
        raise errors.TicketStateConflict(_("只有候诊中的患者可以取消签到。"))
    entry.state = rules.LEFT
    entry.save(update_fields=["state"])
    _event(queue, entry, QueueEvent.Kind.SIGN_IN_CANCELLED, actor, at)
    audit.record(actor, "queue.sign_in_cancel", target=_target(entry))
    return entry
