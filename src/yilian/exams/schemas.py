"""Exam centre API schemas (XCreate / XRead); every string input has a length limit."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Schema
from pydantic import Field


class OrderCreate(Schema):
    patient_id: int = Field(ge=1)
    exam_code: str = Field(min_length=1, max_length=32)
    paid_or_covered: bool = False
    placer_number: str = Field(default="", max_length=40)
    clinical_note: str = Field(default="", max_length=200)
    status: str = Field(default="active", pattern="^(draft|active)$")


class OrderRead(Schema):
    id: int
    patient_id: int
    exam_code: str
    exam_name: str
    status: str
    fhir_status: str
    paid_or_covered: bool
    placer_number: str
    ordered_by: str
    created_at: datetime


class PlanItemRead(Schema):
    order_id: int
    exam_code: str
    exam_name: str
    resource_id: int
    resource_name: str
    site: str
    starts_at: datetime
    ends_at: datetime


class PlanDayRead(Schema):
    date: date
    items: list[PlanItemRead]
    preparation: list[str]


class PlanRead(Schema):
    patient_id: int
    visit_days: int
    optimal: bool
    days: list[PlanDayRead]
    unplanned_order_ids: list[int]
    unpaid_order_ids: list[int]


class PlanItemIn(Schema):
    order_id: int = Field(ge=1)
    resource_id: int = Field(ge=1)
    starts_at: datetime


class PlanBook(Schema):
    items: list[PlanItemIn] = Field(min_length=1, max_length=10)


class AppointmentRead(Schema):
    id: int
    order_id: int
    patient_id: int
    exam_code: str
    exam_name: str
    resource_id: int
    resource_name: str
    site: str
    location: str
    service_date: date
    starts_at: datetime
    ends_at: datetime
    status: str
    fhir_status: str
    cancel_reason: str
    preparation: str


class CancelIn(Schema):
    reason: str = Field(default="", max_length=200)


class RescheduleIn(Schema):
    resource_id: int = Field(ge=1)
    starts_at: datetime


class SegmentRead(Schema):
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int
    free: int
    occupancy: str
    patients: list[dict]


class CalendarRead(Schema):
    resource_id: int
    resource_name: str
    modality: str
    site: str
    date: date
    segments: list[SegmentRead]


class ResourceRead(Schema):
    id: int
    code: str
    name: str
    modality: str
    site: str
    location: str
    segment_minutes: int
    capacity_per_segment: int
    exam_codes: list[str]


class PackageItemRead(Schema):
    name: str
    sex: str
    min_age: int | None
    max_age: int | None
    requires_fasting: bool


class PackageRead(Schema):
    id: int
    code: str
    name: str
    description: str
    price: str
    daily_capacity: int
    items: list[PackageItemRead]


class PackageOrderCreate(Schema):
    patient_id: int = Field(ge=1)
    date: date


class PackageOrderRead(Schema):
    id: int
    package_id: int
    package_name: str
    patient_id: int
    service_date: date
    status: str
