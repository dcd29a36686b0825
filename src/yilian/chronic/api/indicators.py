"""Chronic-disease API: indicators."""

from ninja import Router

router = Router(tags=["chronic"])
