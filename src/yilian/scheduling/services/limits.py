"""Anti-automation limits for booking and availability calls (access.md B-18).

Per patient account and per client address, in fixed one-minute windows (``common.throttle``). An account
that hits its limit ``AUTOMATION_FLAG_AFTER`` times within an hour is flagged for review with an
audit entry (``scheduling.automation_suspected``); B-18 says flagging never blocks by itself.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from yilian.common import audit, throttle
from yilian.common.policy import Actor
from yilian.scheduling import errors

BOOK = "book"
AVAILABILITY = "availability"
WINDOW_SECONDS = 60
FLAG_WINDOW_SECONDS = 3600


def _limits(kind: str) -> tuple[int, int]:
    if kind == BOOK:
        return settings.BOOKING_PER_ACCOUNT_MINUTE, settings.BOOKING_PER_IP_MINUTE
    return settings.AVAILABILITY_PER_ACCOUNT_MINUTE, settings.AVAILABILITY_PER_IP_MINUTE


def check_rate(*, actor: Actor, ip: str | None, kind: str) -> None:
    """Count one ``kind`` call; raise ``BookingRateLimited`` (429, with ``retry_after``) over a limit."""
    per_account, per_ip = _limits(kind)
    checks: list[tuple[str, int, str]] = []
    # Per account: patient accounts only. A call-centre operator or a desk books for many patients
    # a minute on purpose; staff and systems are identified, scoped and audited instead.
    if actor.kind == "patient" and actor.user_id is not None:
        checks.append((f"{kind}:account:{actor.user_id}", per_account, "account"))
    if ip:
        checks.append((f"{kind}:ip:{ip}", per_ip, "ip"))
    for key, limit, scope in checks:
        wait = throttle.hit(key, limit=limit, window=WINDOW_SECONDS)
        if wait is not None:
            if scope == "account":
                _count_towards_flag(actor, kind)
            raise errors.BookingRateLimited(
                errors.BookingRateLimited.default_message % {"wait": wait}, retry_after=wait, limit=scope
            )


def _count_towards_flag(actor: Actor, kind: str) -> None:
    """The account's limit hits this hour; at the threshold, one audit entry for review."""
    over = throttle.hit(
        f"flag:{actor.user_id}", limit=settings.AUTOMATION_FLAG_AFTER - 1, window=FLAG_WINDOW_SECONDS
    )
    if over is not None and cache.add(f"flagged:{actor.user_id}", 1, timeout=FLAG_WINDOW_SECONDS):
        audit.record(
            actor,
            "scheduling.automation_suspected",
            detail={"kind": kind, "limit_hits": settings.AUTOMATION_FLAG_AFTER},
        )
