"""Chronic-disease API (``/api/v1/chronic/``): one sub-router per area, mounted here."""

from ninja import Router

from yilian.chronic.api import contracts, followups, imports, indicators, registries, screening, worklists

router = Router(tags=["chronic"])
for _area in (registries, followups, screening, contracts, worklists, indicators, imports):
    router.add_router("", _area.router)
