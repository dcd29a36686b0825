"""Chronic-disease API: registries."""

from ninja import Router

router = Router(tags=["chronic"])
