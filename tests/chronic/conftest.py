"""Fixtures for chronic-disease tests: a village doctor, a township doctor and their actors.

Nothing here is autouse: tests of every chronic area share this directory.
"""

from __future__ import annotations

import pytest

from yilian.accounts.selectors import actor_for_user
from yilian.common import policy


def actor_of(staff_or_user):
    """The ``Actor`` of a staff member (what the middleware builds for a request)."""
    return actor_for_user(getattr(staff_or_user, "user", staff_or_user))


@pytest.fixture
def village_doctor(community, staff_of):
    return staff_of(policy.VILLAGE_DOCTOR, community.village, name="赵村医")


@pytest.fixture
def township_doctor(community, staff_of):
    return staff_of(policy.DOCTOR, community.township, name="钱医生")


@pytest.fixture
def other_village_doctor(community, staff_of):
    return staff_of(policy.VILLAGE_DOCTOR, community.other_village, name="孙村医")
