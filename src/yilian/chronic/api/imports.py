"""Chronic-disease API: imports."""

from ninja import Router

router = Router(tags=["chronic"])
