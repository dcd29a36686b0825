"""Masking of identifiers and names for lists and screens.

Identifiers follow the common practice of Chinese health IT (e.g. ``370882********1234``: the
6-digit area code and the last 4 characters stay). Names follow access.md Q-10: two characters →
first + ``*``; three or more → first and last kept, one ``*`` per hidden character.
"""

from __future__ import annotations


def mask_id_number(value: str | None) -> str:
    if not value:
        return ""
    if len(value) <= 8:
        return value[:1] + "*" * (len(value) - 2) + value[-1:] if len(value) > 2 else "*" * len(value)
    keep_head = 6 if len(value) >= 15 else 2
    return value[:keep_head] + "*" * (len(value) - keep_head - 4) + value[-4:]


def mask_phone(value: str | None) -> str:
    if not value:
        return ""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str | None) -> str:
    """access.md Q-10: 李四 → 李*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜."""
    if not value:
        return ""
    if len(value) == 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]
