"""Lists of the security administrator cost a fixed number of queries, however long they get."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import factories as f
from yilian.accounts import services
from yilian.accounts.models import User
from yilian.accounts.selectors import actor_for_user
from yilian.common.policy import DOCTOR, SECADMIN


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _grow(secadmin, community, n: int) -> None:
    actor = actor_for_user(secadmin.user)
    for i in range(n):
        services.create_api_key(actor=actor, organisation=community.township, name=f"系统{i}")
        staff = f.make_staff(DOCTOR, community.village)
        User.objects.filter(pk=staff.user.pk).update(locked_until=timezone.now() + timedelta(minutes=5))


def test_key_and_lock_lists_do_not_grow_queries(client, staff_of, community):
    secadmin = staff_of(SECADMIN)
    client.force_login(secadmin.user)
    _grow(secadmin, community, 1)
    urls = ["/api/v1/accounts/keys", "/api/v1/accounts/locked-users", "/accounts/security/"]
    client.get(urls[0])  # the session's first request stamps it; not part of the list's cost
    before = [_count(client, url) for url in urls]
    _grow(secadmin, community, 5)
    after = [_count(client, url) for url in urls]
    assert after == before
