"""Chronic-disease API: contracts."""

from ninja import Router

router = Router(tags=["chronic"])
