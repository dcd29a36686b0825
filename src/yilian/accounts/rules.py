"""Pure sign-in rules: mainland mobile numbers, code shape, sliding-window rate limits, key format.

Sources: MIIT numbering plan for mainland mobile numbers (11 digits, ``1[3-9]`` prefix);
MLPS 2.0 (GB/T 22239-2019 §8.1.4.1) for login-failure handling and session timeout;
the brief's OTP limits (settings ``OTP_*``). No Django, no database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
OTP_DIGITS = 6
OTP_SHAPE = re.compile(rf"^\d{{{OTP_DIGITS}}}$")
API_KEY_SHAPE = re.compile(r"^yl_([0-9a-f]{8})_([0-9a-f]{48})$")
_SEPARATORS = re.compile(r"[\s\-()]")


def normalise_phone(raw: str) -> str:
    """Drop spaces, dashes, brackets and a ``+86``/``0086`` country prefix: what people type."""
    phone = _SEPARATORS.sub("", raw or "")
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix) :]
    if len(phone) == 13 and phone.startswith("86"):
        phone = phone[2:]
    return phone


def is_mainland_mobile(phone: str) -> bool:
    """11 digits, ``1`` then ``3``–``9`` (mainland China mobile numbering plan)."""
    return bool(MAINLAND_MOBILE.match(phone))


def normalise_code(raw: str) -> str:
    return _SEPARATORS.sub("", raw or "")


def is_code_shaped(code: str) -> bool:
    return bool(OTP_SHAPE.match(code))


def window_retry_after(
    times: Sequence[datetime], *, limit: int, window: timedelta, now: datetime
) -> int | None:
    """Seconds until one more event fits in a sliding window, or ``None`` if it fits now.

    ``times`` are the past events (any order). With ``limit`` events allowed per ``window``, the
    next one fits once the oldest of the last ``limit`` events has left the window.
    """
    recent = sorted(t for t in times if t > now - window)
    if len(recent) < limit:
        return None
    oldest_that_must_leave = recent[len(recent) - limit]
    return max(1, _ceil_seconds(oldest_that_must_leave + window - now))


def interval_retry_after(last: datetime | None, *, interval: timedelta, now: datetime) -> int | None:
    """Seconds until the minimum interval since ``last`` has passed, or ``None``."""
    if last is None or now - last >= interval:
        return None
    return max(1, _ceil_seconds(last + interval - now))


def lock_expired(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is None or locked_until <= now


def is_api_key_shaped(raw: str) -> bool:
    """``yl_<8 hex prefix>_<48 hex secret>``, the shape ``accounts.services.create_api_key`` issues."""
    return bool(API_KEY_SHAPE.match(raw))


def _ceil_seconds(delta: timedelta) -> int:
    whole = int(delta.total_seconds())
    return whole + (1 if delta.total_seconds() > whole else 0)
