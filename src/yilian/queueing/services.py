"""Every write of triage and queue calling (签到, 分诊叫号): access.md Q-1..Q-12, B-2, B-11.

Each service locks its queue row (``select_for_update``) before it reads the waiting list, so that
two clicks on 下一个, a sign-in racing a call, or a nurse and a doctor acting at once are applied
one after the other; a queue has one doctor, so the lock never contends in earnest. Each action
writes a ``QueueEvent`` (Q-12) and an audit row (L-1) in the same transaction.

Appointment status (ARRIVED at sign-in, NO_SHOW on a closed sign-in or a void, FULFILLED at the
end) belongs to ``scheduling``; until it offers those verbs (``mark_arrived``, ``mark_no_show``,
``mark_fulfilled``: see ``_appointment_hook``), the queue keeps its own state and the scheduling
call is skipped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.patients import card
from yilian.patients.models import Patient
from yilian.queueing import errors, rules
from yilian.queueing.models import ClinicRoom, Display, Queue, QueueEntry, QueueEvent
from yilian.scheduling import rules as scheduling_rules
from yilian.scheduling import services as scheduling_services
from yilian.scheduling.models import Appointment, ClinicSession, Slot

CERTIFICATE_MAX = 60
RECENT_CONSULTATIONS = 10


@dataclass(frozen=True)
class Ticket:
    """A ticket with its place: ``ahead`` patients predicted before it, ``wait_minutes`` estimate."""

    entry: QueueEntry
    ahead: int
    wait_minutes: int
    created: bool = True


# --- who may do what -----------------------------------------------------------------------------------


def _org_path(queue: Queue) -> str:
    return queue.session.department.organisation.path


def _holds_role(actor: Actor, roles: set[str], org_path: str) -> bool:
    return any(a.role in roles and org_path.startswith(a.org_path) for a in actor.assignments)


def _check_desk(actor: Actor, queue: Queue) -> None:
    """Sign-in at a desk or kiosk: staff who may scan cards in the department's organisation."""
    if not (actor.is_staff_member and policy.covers(actor, policy.CARD_SCAN, _org_path(queue))):
        raise PermissionDenied()


def _check_nurse(actor: Actor, queue: Queue) -> None:
    """Q-3 / Q-12 nurse actions (优先, 召回, 回诊签到): a nurse of the organisation."""
    if not (actor.is_staff_member and _holds_role(actor, {policy.NURSE}, _org_path(queue))):
        raise PermissionDenied(_("只有分诊护士可以执行此操作。"))


def _check_doctor(actor: Actor, queue: Queue) -> None:
    """Q-12 doctor actions: the session's own doctor (any doctor of the department for a general
    clinic), or a nurse of the organisation standing in at the triage desk."""
    path = _org_path(queue)
    session = queue.session
    if not actor.is_staff_member:
        raise PermissionDenied()
    if actor.staff_id is not None and actor.staff_id == session.doctor_id:
        return
    if _holds_role(actor, {policy.NURSE}, path):
        return
    if session.doctor_id is None and _holds_role(actor, {policy.DOCTOR}, path):
        return
    raise PermissionDenied(_("只有本诊室的出诊医生或分诊护士可以叫号。"))


def may_view_queue(actor: Actor, queue: Queue) -> bool:
    return actor.is_staff_member and policy.covers(actor, policy.PATIENT_VIEW, _org_path(queue))


# --- the queue and its Q-7 state ----------------------------------------------------------------------


def parameters(queue: Queue) -> rules.QueueParameters:
    return dataclasses.replace(
        rules.DEFAULTS, priority_mode=queue.priority_mode, voice_privacy=queue.voice_privacy
    )


def queue_state(queue: Queue) -> rules.QueueState:
    normal = QueueEvent.objects.filter(
        queue=queue, kind=QueueEvent.Kind.CALLED, lane=rules.NORMAL
    ).values_list("ordinal", flat=True)
    return rules.QueueState(
        calls=queue.calls,
        normal_calls=tuple(sorted(o for o in normal if o)),
        last_return_call=queue.last_return_call,
        last_priority_call=queue.last_priority_call,
    )


def waiting_entries(queue: Queue) -> list[QueueEntry]:
    return list(QueueEntry.objects.filter(queue=queue, state=rules.WAITING).select_related("patient"))


def predicted_order(queue: Queue, waiting: list[QueueEntry] | None = None) -> list[QueueEntry]:
    """Q-7 dry run over the waiting tickets: the order the screens show."""
    waiting = waiting if waiting is not None else waiting_entries(queue)
    by_id = {e.pk: e for e in waiting}
    order = rules.call_order([e.as_rule_entry() for e in waiting], queue_state(queue), parameters(queue))
    return [by_id[e.id] for e in order]


def recent_consult_minutes(queue: Queue) -> list[float]:
    rows = (
        QueueEntry.objects.filter(
            queue__session__department_id=queue.session.department_id,
            queue__session__service_date=queue.session.service_date,
            called_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("called_at", "finished_at")[:RECENT_CONSULTATIONS]
    )
    return [(end - start).total_seconds() / 60 for start, end in rows if end > start]


def ticket_for(entry: QueueEntry) -> Ticket:
    """The ticket's place: patients predicted ahead of it (plus the one with the doctor)."""
    queue = entry.queue
    if entry.state != rules.WAITING:
        return Ticket(entry, 0, 0)
    order = predicted_order(queue)
    ahead = next((i for i, e in enumerate(order) if e.pk == entry.pk), len(order))
    with_doctor = 1 if queue.current_id and queue.current_id != entry.pk else 0
    wait = rules.estimated_wait_minutes(ahead + with_doctor, recent_consult_minutes(queue), parameters(queue))
    return Ticket(entry, ahead, wait)


def _lock_queue(queue_id: int) -> Queue:
    queue = (
        Queue.objects.select_for_update(of=("self",))
        .select_related("session__department__organisation", "session__doctor", "room")
        .filter(pk=queue_id)
        .first()
    )
    if queue is None:
        raise NotFound()
    return queue


def _lock_entry(entry_id: int) -> tuple[Queue, QueueEntry]:
    """Lock the entry's queue first (always queue before entry), then read the entry."""
    queue_id = QueueEntry.objects.filter(pk=entry_id).values_list("queue_id", flat=True).first()
    if queue_id is None:
        raise NotFound()
    queue = _lock_queue(queue_id)
    entry = QueueEntry.objects.select_related("patient").filter(pk=entry_id, queue=queue).first()
    if entry is None:  # moved by a transfer in between
        raise errors.TicketStateConflict()
    entry.queue = queue
    return queue, entry


def _queue_for_session(session: ClinicSession) -> Queue:
    """The queue of a session, created on first use; locked."""
    queue = Queue.objects.filter(session=session).only("id").first()
    if queue is None:
        try:
            with transaction.atomic():
                queue = Queue.objects.create(session=session)
        except IntegrityError:
            queue = Queue.objects.get(session=session)
    return _lock_queue(queue.pk)


def _event(
    queue: Queue, entry: QueueEntry | None, kind: str, actor: Actor, at: datetime, **fields
) -> QueueEvent:
    return QueueEvent.objects.create(
        queue=queue, entry=entry, kind=kind, at=at, by_id=actor.user_id, **fields
    )


def _target(entry: QueueEntry) -> audit.Target:
    return audit.Target("queueing.QueueEntry", entry.pk, entry.patient_id)


def _room_label(queue: Queue) -> str:
    return queue.room.name if queue.room else queue.session.department.name


# --- the scheduling side (ARRIVED / NO_SHOW / FULFILLED) --------------------------------------------


def _appointment_hook(verb: str, actor: Actor, appointment_id: int | None, at: datetime, **kwargs) -> None:
    """Call ``scheduling.services.<verb>(actor=, appointment_id=, now=, **kwargs)`` when scheduling
    offers it (``mark_arrived``, ``mark_no_show(reason=)``, ``mark_fulfilled``); the queue's own
    ticket state is authoritative for the queue either way."""
    hook = getattr(scheduling_services, verb, None)
    if appointment_id is None or hook is None:
        return
    hook(actor=actor, appointment_id=appointment_id, now=at, **kwargs)


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
    audit.record(
        actor, "queue.priority_set", target=_target(entry), detail={"evidence": evidence, "rule": "Q-3"}
    )
    return entry


# --- doctor actions ------------------------------------------------------------------------


def _finish_current(queue: Queue, actor: Actor, at: datetime) -> None:
    current = queue.current
    if current is None:
        return
    current = QueueEntry.objects.get(pk=current.pk)
    if current.state in rules.WITH_DOCTOR:
        current.state = rules.DONE
        current.finished_at = at
        current.save(update_fields=["state", "finished_at"])
        _event(queue, current, QueueEvent.Kind.FINISHED, actor, at)
        audit.record(actor, "queue.finish", target=_target(current))
        _appointment_hook("mark_fulfilled", actor, current.appointment_id, at)
    queue.current = None


def _current(queue: Queue) -> QueueEntry:
    if queue.current_id is None:
        raise errors.NoCurrentPatient()
    entry = QueueEntry.objects.select_related("patient").get(pk=queue.current_id)
    if entry.state not in rules.WITH_DOCTOR:
        raise errors.NoCurrentPatient()
    return entry


@transaction.atomic
def call_next(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry | None:
    """下一个 (Q-7): finish the patient with the doctor (if any), then call the head of the Q-7
    order. Returns ``None`` when nobody is waiting. The call event carries the Q-11 voice text
    and the pre-call text for the new head of the predicted order."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    _finish_current(queue, actor, at)
    waiting = waiting_entries(queue)
    params = parameters(queue)
    state = queue_state(queue)
    chosen_rule = rules.select_next([e.as_rule_entry() for e in waiting], state, params)
    if chosen_rule is None:
        queue.save(update_fields=["current"])
        return None
    entry = next(e for e in waiting if e.pk == chosen_rule.id)
    new_state = rules.after_call(state, chosen_rule)
    queue.calls = new_state.calls
    queue.last_return_call = new_state.last_return_call
    queue.last_priority_call = new_state.last_priority_call
    queue.current = entry
    queue.save(update_fields=["calls", "last_return_call", "last_priority_call", "current"])
    entry.state = rules.CALLED
    entry.called_at = at
    entry.save(update_fields=["state", "called_at"])
    rest = [e for e in waiting if e.pk != entry.pk]
    head = rules.call_order([e.as_rule_entry() for e in rest], new_state, params)[:1]
    precall = ""
    if head:
        nxt = next(e for e in rest if e.pk == head[0].id)
        precall = rules.precall_text(nxt.seq, nxt.patient.name, privacy=params.voice_privacy)
    text = rules.call_text(entry.seq, entry.patient.name, _room_label(queue), privacy=params.voice_privacy)
    _event(
        queue,
        entry,
        QueueEvent.Kind.CALLED,
        actor,
        at,
        ordinal=queue.calls,
        lane=entry.lane,
        text=text,
        detail={"precall": precall},
    )
    audit.record(
        actor, "queue.call", target=_target(entry), detail={"ordinal": queue.calls, "lane": entry.lane}
    )
    return entry


@transaction.atomic
def recall(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """复呼 (Q-6): play the call for the current patient again."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    params = parameters(queue)
    text = rules.call_text(entry.seq, entry.patient.name, _room_label(queue), privacy=params.voice_privacy)
    _event(queue, entry, QueueEvent.Kind.RECALLED, actor, at, text=text)
    audit.record(actor, "queue.recall", target=_target(entry))
    return entry


@transaction.atomic
def mark_missed(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """过号 (Q-6, Q-8): the called patient is absent. Misses 1–3 move the ticket to the missed list
    until re-sign-in; miss 4 voids it and the appointment becomes NO_SHOW (``oth-missed-call``)."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    if entry.state != rules.CALLED:
        raise errors.TicketStateConflict(_("患者已在就诊中，不能过号。"))
    entry.misses += 1
    outcome = rules.miss_outcome(entry.misses, parameters(queue))
    entry.state = rules.VOIDED if outcome == rules.MISS_VOID else rules.MISSED
    entry.save(update_fields=["misses", "state"])
    queue.current = None
    queue.save(update_fields=["current"])
    _event(queue, entry, QueueEvent.Kind.MISSED, actor, at, detail={"misses": entry.misses})
    audit.record(actor, "queue.miss", target=_target(entry), detail={"misses": entry.misses, "rule": "Q-8"})
    if outcome == rules.MISS_VOID:
        _event(queue, entry, QueueEvent.Kind.VOIDED, actor, at, detail={"rule": "Q-8"})
        audit.record(actor, "queue.void", target=_target(entry), detail={"rule": "Q-8"})
        _appointment_hook(
            "mark_no_show", actor, entry.appointment_id, at, reason=scheduling_rules.REASON_MISSED_CALL
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
    audit.record(
        actor, "queue.re_sign_in", target=_target(entry), detail={"misses": entry.misses, "rule": "Q-8"}
    )
    return ticket_for(entry)


@transaction.atomic
def send_for_exams(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """置为检查 (Q-12): the current patient goes for exams; on return they join the RETURN lane."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    entry.state = rules.SENT_FOR_EXAMS
    entry.finished_at = at
    entry.save(update_fields=["state", "finished_at"])
    queue.current = None
    queue.save(update_fields=["current"])
    _event(queue, entry, QueueEvent.Kind.SENT_FOR_EXAMS, actor, at)
    audit.record(actor, "queue.send_for_exams", target=_target(entry))
    return entry


@transaction.atomic
def finish(*, actor: Actor, queue_id: int, at: datetime | None = None) -> QueueEntry:
    """结束就诊 (Q-12)."""
    at = at or timezone.now()
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_doctor(actor, queue)
    entry = _current(queue)
    _finish_current(queue, actor, at)
    queue.save(update_fields=["current"])
    entry.refresh_from_db()
    return entry


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
        entry.state = rules.WAITING
        entry.lane = rules.RETURN
        entry.calls_at_sign_in = queue.calls
        entry.signed_in_at = at
        entry.wait_for = []
        entry.save(update_fields=["state", "lane", "calls_at_sign_in", "signed_in_at", "wait_for"])
        _event(queue, entry, QueueEvent.Kind.RETURNED, actor, at, lane=rules.RETURN)
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
def transfer(*, actor: Actor, entry_id: int, to_queue_id: int, at: datetime | None = None) -> Ticket:
    """转诊 / 指定医生 (Q-12): move a waiting ticket to another doctor of the same department on the
    same day, keeping its position key (segment, late flag, booked, number, lane, priority)."""
    at = at or timezone.now()
    if not actor.is_staff_member:
        raise PermissionDenied()
    source_id = QueueEntry.objects.filter(pk=entry_id).values_list("queue_id", flat=True).first()
    if source_id is None or not Queue.objects.filter(pk=to_queue_id).exists():
        raise NotFound()
    # Lock both queues in id order so that two opposite transfers cannot deadlock.
    locked = {qid: _lock_queue(qid) for qid in sorted({source_id, to_queue_id})}
    source, target = locked[source_id], locked[to_queue_id]
    if not (may_view_queue(actor, source) and may_view_queue(actor, target)):
        raise NotFound()
    _check_doctor(actor, source)
    entry = QueueEntry.objects.select_related("patient").filter(pk=entry_id, queue=source).first()
    if entry is None or entry.state != rules.WAITING:
        raise errors.TicketStateConflict(_("只有候诊中的患者可以转诊。"))
    if source.pk == target.pk:
        raise InvalidInput(_("请选择另一位医生的队列。"), field="to_queue_id")
    if (
        target.session.department_id != source.session.department_id
        or target.session.service_date != source.session.service_date
        or target.session.status != ClinicSession.Status.OPEN
    ):
        raise InvalidInput(_("只能转给同一科室当天出诊的医生。"), field="to_queue_id")
    entry.queue = target
    if entry.lane in (rules.RETURN, rules.RECALL):  # gaps are counted in the new queue's calls
        entry.calls_at_sign_in = target.calls
        entry.wait_for = []
    entry.save(update_fields=["queue", "calls_at_sign_in", "wait_for"])
    _event(source, entry, QueueEvent.Kind.TRANSFERRED, actor, at, detail={"to_queue": target.pk})
    _event(target, entry, QueueEvent.Kind.TRANSFERRED, actor, at, detail={"from_queue": source.pk})
    audit.record(actor, "queue.transfer", target=_target(entry), detail={"from": source.pk, "to": target.pk})
    return ticket_for(entry)


# --- set-up: rooms, queue settings and display screens ------------------------------------------------


@transaction.atomic
def assign_room(*, actor: Actor, queue_id: int, room_id: int | None, at: datetime | None = None) -> Queue:
    """指定诊室: the nurse puts a session's queue in a consulting room (the voice text names it)."""
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_nurse(actor, queue)
    room = None
    if room_id is not None:
        room = ClinicRoom.objects.filter(pk=room_id, department_id=queue.session.department_id).first()
        if room is None:
            raise InvalidInput(_("诊室不属于本科室。"), field="room_id")
    queue.room = room
    queue.save(update_fields=["room"])
    audit.record(actor, "queue.assign_room", target=audit.Target("queueing.Queue", queue.pk))
    return queue


@transaction.atomic
def open_queue(*, actor: Actor, session_id: int) -> Queue:
    """The queue of a session, created on first use (the desk opens it before the first sign-in)."""
    session = ClinicSession.objects.select_related("department__organisation").filter(pk=session_id).first()
    if session is None or not (
        actor.is_staff_member
        and policy.covers(actor, policy.PATIENT_VIEW, session.department.organisation.path)
    ):
        raise NotFound()
    return _queue_for_session(session)


def hash_display_token(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def create_display(
    *, actor: Actor, name: str, room_id: int | None = None, zone: str = "", organisation_id: int
) -> tuple[Display, str]:
    """A waiting-room screen and its secret link token (shown once; Q-10)."""
    import secrets

    from yilian.community.models import Organisation

    org = Organisation.objects.filter(pk=organisation_id).first()
    if org is None or not _holds_role(actor, {policy.NURSE}, org.path):
        raise PermissionDenied(_("只有分诊护士可以添加候诊显示屏。"))
    name = (name or "").strip()
    if not name or len(name) > 40:
        raise InvalidInput(_("请填写显示屏名称（不超过40字）。"), field="name")
    room = None
    if room_id is not None:
        room = ClinicRoom.objects.filter(pk=room_id, department__organisation=org).first()
        if room is None:
            raise InvalidInput(_("诊室不存在。"), field="room_id")
    zone = (zone or "").strip()[:30]
    if room is None and not zone:
        raise InvalidInput(_("请选择诊室，或填写候诊区。"), field="zone")
    token = secrets.token_urlsafe(24)
    display = Display.objects.create(
        name=name,
        kind=Display.Kind.ROOM if room else Display.Kind.ZONE,
        room=room,
        zone="" if room else zone,
        organisation=org,
        token_hash=hash_display_token(token),
        created_by_id=actor.user_id,
    )
    audit.record(actor, "queue.display_create", target=audit.Target("queueing.Display", display.pk))
    return display, token


# --- Q-9 session close ------------------------------------------------------------------------------


@transaction.atomic
def close_ended_queues(*, actor: Actor, now: datetime | None = None) -> list[int]:
    """Q-9: a patient still on the missed list when the session has ended left without returning:
    the ticket becomes LEFT and the appointment NO_SHOW (MISSED_COUNTS_AS_NOSHOW = true), counted
    for B-12 by scheduling. Returns the tickets closed. Safe to run repeatedly (a periodic job)."""
    now = now or timezone.now()
    closed: list[int] = []
    for queue_id in (
        Queue.objects.filter(session__ends_at__lte=now, entries__state=rules.MISSED)
        .values_list("id", flat=True)
        .distinct()
        .order_by("id")
    ):
        queue = _lock_queue(queue_id)
        for entry in QueueEntry.objects.filter(queue=queue, state=rules.MISSED).order_by("id"):
            entry.state = rules.LEFT
            entry.save(update_fields=["state"])
            _event(queue, entry, QueueEvent.Kind.VOIDED, actor, now, detail={"rule": "Q-9"})
            audit.record(actor, "queue.left_without_return", target=_target(entry), detail={"rule": "Q-9"})
            _appointment_hook(
                "mark_no_show", actor, entry.appointment_id, now, reason=scheduling_rules.REASON_MISSED_CALL
            )
            closed.append(entry.pk)
    return closed


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


@transaction.atomic
def configure_queue(*, actor: Actor, queue_id: int, priority_mode: str, voice_privacy: bool) -> Queue:
    """A queue's Q-4 priority mode (``front`` / ``interleave``) and Q-11 VOICE_PRIVACY."""
    queue = _lock_queue(queue_id)
    if not may_view_queue(actor, queue):
        raise NotFound()
    _check_nurse(actor, queue)
    if priority_mode not in rules.PRIORITY_MODES:
        raise InvalidInput(_("优先方式无效。"), field="priority_mode")
    queue.priority_mode = priority_mode
    queue.voice_privacy = bool(voice_privacy)
    queue.save(update_fields=["priority_mode", "voice_privacy"])
    audit.record(
        actor,
        "queue.configure",
        target=audit.Target("queueing.Queue", queue.pk),
        detail={"priority_mode": priority_mode, "voice_privacy": bool(voice_privacy)},
    )
    return queue


@transaction.atomic
def create_room(*, actor: Actor, department_id: int, name: str, zone: str = "") -> ClinicRoom:
    """A consulting room (诊室) of a department, in a waiting zone (候诊区)."""
    from yilian.community.models import Department

    department = Department.objects.select_related("organisation").filter(pk=department_id).first()
    if department is None or not _holds_role(actor, {policy.NURSE}, department.organisation.path):
        raise NotFound()
    name = (name or "").strip()
    zone = (zone or "").strip()
    if not name or len(name) > 30:
        raise InvalidInput(_("请填写诊室名称（不超过30字），如：3诊室。"), field="name")
    if len(zone) > 30:
        raise InvalidInput(_("候诊区名称不能超过30字。"), field="zone")
    if ClinicRoom.objects.filter(department=department, name=name).exists():
        raise InvalidInput(_("本科室已有同名诊室。"), field="name")
    room = ClinicRoom.objects.create(department=department, name=name, zone=zone)
    audit.record(actor, "queue.room_create", target=audit.Target("queueing.ClinicRoom", room.pk))
    return room
