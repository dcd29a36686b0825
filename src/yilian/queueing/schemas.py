"""Queueing API schemas (``XCreate`` in, ``XRead`` out); every input string has a length limit."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Schema
from pydantic import Field


class CheckInCreate(Schema):
    """Sign-in (签到): a scanned e-health card token and/or the appointment to sign in."""

    token: str | None = Field(default=None, max_length=200)
    appointment_id: int | None = Field(default=None, ge=1)


class PriorityCreate(Schema):
    evidence: str = Field(max_length=12, description="military / firefighter / age / disability / pregnancy")
    certificate: str = Field(default="", max_length=60, description="证件号或核验说明（高龄以外必填）")


class TransferCreate(Schema):
    to_queue_id: int = Field(ge=1)


class TicketRead(Schema):
    id: int
    queue_id: int
    seq: int
    lane: str
    state: str
    late: bool
    priority_tag: str
    misses: int
    signed_in_at: datetime
    visit_date: date
    department: str
    doctor: str
    room: str
    ahead: int
    wait_minutes: int
    created: bool = True


class WaitingRead(Schema):
    id: int
    seq: int
    name: str
    lane: str
    late: bool
    priority_tag: str
    misses: int


class QueueRead(Schema):
    id: int
    session_id: int
    service_date: date
    period: str
    department: str
    doctor: str
    room: str
    priority_mode: str
    voice_privacy: bool
    calls: int
    current: WaitingRead | None
    waiting: list[WaitingRead]
    missed: list[WaitingRead]
    away: list[WaitingRead]


class QueueSummaryRead(Schema):
    id: int
    session_id: int
    period: str
    department: str
    doctor: str
    room: str
    waiting: int


class BoardRow(Schema):
    id: int
    seq: int
    name: str
    tag: str
    lane: str


class LastCall(Schema):
    """``text`` is the Q-11 voice text (full name unless VOICE_PRIVACY); ``screen_text`` the
    same sentence with the masked name, for the screen."""

    event_id: int
    queue_id: int
    text: str
    screen_text: str
    precall: str
    repeat: int
    at: str


class BoardRead(Schema):
    """The display JSON (Q-10): masked names only."""

    queue_id: int
    room: str
    department: str
    doctor: str
    current: BoardRow | None
    next: list[BoardRow]
    waiting_count: int
    missed: list[BoardRow]
    last_call: LastCall | None


class CallRead(Schema):
    called: WaitingRead | None
    queue: QueueRead
