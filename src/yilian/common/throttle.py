"""Fixed-window request limits on the Django cache (access.md B-18, anti-automation).

``hit("book:account:42", limit=10, window=60)`` counts one call and answers the seconds to wait
when the limit is passed, else ``None``. Counting is ``cache.add`` + ``cache.incr``: atomic within
one cache. With the default local-memory cache each server process counts on its own, so the
effective limit is ``limit × processes``; point ``CACHES`` at a shared cache (Redis, Memcached) for
exact limits across processes. A limit of 0 switches a check off.
"""

from __future__ import annotations

import time

from django.core.cache import cache


def hit(key: str, *, limit: int, window: int) -> int | None:
    """Count a call under ``key``; the seconds until the window resets when over ``limit``."""
    if limit <= 0:
        return None
    now = time.time()
    start = int(now // window) * window
    bucket = f"throttle:{key}:{start}"
    if cache.add(bucket, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(bucket)
        except ValueError:  # expired between add and incr
            cache.add(bucket, 1, timeout=window + 1)
            count = 1
    if count > limit:
        return max(1, int(start + window - now))
    return None
