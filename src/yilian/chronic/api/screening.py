"""Chronic-disease API: screening."""

from ninja import Router

router = Router(tags=["chronic"])
