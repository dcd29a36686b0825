"""Scheduling API schemas (XCreate / XRead)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from ninja import Schema
from pydantic import Field


class WindowCreate(Schema):
    start: time
    end: time
    capacity: int = Field(ge=1, le=500)


class SessionCreate(Schema):
    department_id: int = Field(ge=1)
    doctor_id: int | None = Field(default=None, ge=1)
    service_date: date
    period: Literal["am", "pm", "evening"]
    windows: list[WindowCreate] = Field(min_length=1, max_length=24)
    special: bool = False


class WindowRead(Schema):
    starts_at: datetime
    ends_at: datetime
    free: int


class SessionRead(Schema):
    id: int
    department_id: int
    department_name: str
    doctor_id: int | None
    doctor_name: str
    service_date: date
    period: str
    starts_at: datetime
    ends_at: datetime
    fee_class: str
    status: str
    fhir_active: bool
    release_at: datetime
    released: bool
    closed: bool
    free: int
    windows: list[WindowRead]


class AppointmentCreate(Schema):
    patient_id: int = Field(ge=1)
    session_id: int = Field(ge=1)
    idempotency_key: str = Field(default="", max_length=64)
    channel: Literal["app", "wechat", "phone", "kiosk", "counter", "referral"] = "app"
    # B-17: the referral order number, required with the ``referral`` channel.
    referral_ref: str = Field(default="", max_length=40)
    # B-19: book in this time segment (its start, as in the availability's ``windows``); omitted: the
    # first free number of the session.
    segment_start: datetime | None = None


class AppointmentRead(Schema):
    id: int
    patient_id: int
    session_id: int
    department_id: int
    service_date: date
    period: str
    seq: int
    segment_start: datetime
    segment_end: datetime
    arrive_by: datetime
    status: str
    fhir_status: str
    cancel_reason: str
    channel: str
    referral_ref: str = ""
    booked_at: datetime
    cancelled_at: datetime | None


class CancelIn(Schema):
    reason: str = Field(default="", max_length=200)


class NoShowCorrectionIn(Schema):
    reason: str = Field(min_length=1, max_length=200)


class StopIn(Schema):
    reason: str = Field(min_length=1, max_length=200)


class WaitlistCreate(Schema):
    patient_id: int = Field(ge=1)


class WaitlistRead(Schema):
    id: int
    session_id: int
    patient_id: int
    status: str
    position: int
    created_at: datetime
    offered_appointment_id: int | None
