"""Pure rules of message delivery: quiet hours (免打扰时段) and the retry schedule.

No database, no I/O: ``services`` applies these to ``SmsMessage`` rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600

# Delivery states of an SMS and the moves between them (SmsMessage.status).
QUEUED, DEFERRED, SENDING, SENT, FAILED = "queued", "deferred", "sending", "sent", "failed"
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({SENDING}),
    DEFERRED: frozenset({SENDING}),
    SENDING: frozenset({SENT, QUEUED, FAILED}),
    SENT: frozenset(),
    FAILED: frozenset(),
}


def in_quiet_hours(hour: int, quiet: tuple[int, int]) -> bool:
    """Whether a local ``hour`` lies in the quiet window ``[start, end)``; the window may wrap midnight."""
    start, end = quiet
    if start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_hours_end(local_now: datetime, quiet: tuple[int, int]) -> datetime | None:
    """The moment the current quiet window ends, or ``None`` outside quiet hours.

    ``local_now`` is aware and in the hospital's time zone (Asia/Shanghai has no daylight saving,
    so adding a day keeps the wall clock).
    """
    if not in_quiet_hours(local_now.hour, quiet):
        return None
    end = local_now.replace(hour=quiet[1], minute=0, second=0, microsecond=0)
    if end <= local_now:
        end += timedelta(days=1)
    return end


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the ``attempts``-th failed attempt: 1 min, 2 min, 4 min … capped at 1 h."""
    seconds = RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, RETRY_MAX_SECONDS))


def may_retry(attempts: int, max_attempts: int) -> bool:
    return attempts < max_attempts
