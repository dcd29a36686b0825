from __future__ import annotations

import pytest
from django.conf import settings

from yilian.accounts.selectors import actor_for_user


@pytest.fixture
def actor_of(staff_of):
    """``actor_of(role, org=None)`` → the policy Actor of a new staff member holding ``role``."""

    def make(role: str, org=None, **kwargs):
        staff = staff_of(role, org, **kwargs)
        return actor_for_user(staff.user)

    return make


ORG_FIELDS = {
    "province": "山东省",
    "city": "烟台市",
    "county": "海阳县",
}


IS_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]
