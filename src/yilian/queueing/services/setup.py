"""Set-up of queues: rooms (诊室), queue settings (Q-4 mode, Q-11 VOICE_PRIVACY) and display screens (Q-10)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.queueing import rules
from yilian.queueing.models import ClinicRoom, Display, Queue
from yilian.queueing.services.base import (
    _check_nurse,
    _lock_queue,
    _queue_for_session,
    may_view_queue,
)
from yilian.scheduling.models import ClinicSession

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
    if org is None or not policy.covers(actor, policy.QUEUE_TRIAGE, org.path):
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
    if department is None or not policy.covers(actor, policy.QUEUE_TRIAGE, department.organisation.path):
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
