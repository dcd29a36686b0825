"""Chronic-disease API: followups."""

from ninja import Router

router = Router(tags=["chronic"])
