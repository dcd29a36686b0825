"""Shared fixtures: a small medical community, personas for the permission matrix, and a browser."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import factories as f
from yilian.common import policy

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


@dataclass
class Community:
    county: object
    township: object
    village: object
    other_township: object
    other_village: object


@pytest.fixture
def community(db) -> Community:
    county = f.make_org("海阳县人民医院", "county_hospital", code="COUNTY01")
    township = f.make_org("留格庄镇卫生院", "township_centre", county, code="TS01")
    village = f.make_org("留格庄村卫生室", "village_clinic", township, code="VC0101")
    other_township = f.make_org("发城镇卫生院", "township_centre", county, code="TS02")
    other_village = f.make_org("发城村卫生室", "village_clinic", other_township, code="VC0201")
    return Community(county, township, village, other_township, other_village)


@pytest.fixture
def staff_of(community):
    """``staff_of(role, org=None)`` → a Staff member holding ``role`` at ``org`` (county by default)."""

    def make(role: str, org=None, **kwargs):
        return f.make_staff(role, org or community.county, **kwargs)

    return make


@pytest.fixture
def login(client):
    def do(staff_or_user):
        user = getattr(staff_or_user, "user", staff_or_user)
        client.force_login(user)
        return client

    return do


PERSONA_ROLES = [r for r in policy.ROLE_LABELS]


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (its own browser download is not used)."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=os.environ.get("YILIAN_CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
