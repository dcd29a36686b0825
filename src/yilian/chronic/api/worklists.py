"""Chronic-disease API: worklists."""

from ninja import Router

router = Router(tags=["chronic"])
