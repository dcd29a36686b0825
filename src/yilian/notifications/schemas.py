"""Pydantic schemas of the notifications API."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


class InboxFilter(Schema):
    unread: bool = False
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000)


class InboxMessageRead(Schema):
    id: int
    template_code: str
    title: str
    body: str
    link: str
    urgent: bool
    created_at: datetime
    read_at: datetime | None


class InboxPage(Schema):
    count: int
    unread: int
    items: list[InboxMessageRead]


class MarkedRead(Schema):
    marked: int
