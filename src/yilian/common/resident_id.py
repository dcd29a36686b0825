"""Resident identity card numbers (居民身份证号码), GB 11643-1999.

18 characters: 6-digit address code, 8-digit birth date (YYYYMMDD), 3-digit sequence (odd = male,
even = female) and a check character computed with ISO 7064 MOD 11-2. Pure functions, no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_PATTERN = re.compile(r"^\d{17}[\dX]$")


class ResidentIdError(ValueError):
    """Why a resident ID number is not valid; ``reason`` is a stable code."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ResidentId:
    number: str
    area_code: str
    birth_date: date
    sex: str  # "M" or "F"


def check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def normalise(raw: str) -> str:
    return raw.strip().replace(" ", "").upper()


def parse(raw: str, *, today: date | None = None) -> ResidentId:
    """Validate and decode a resident ID number, raising ``ResidentIdError`` with a reason.

    Reasons: ``format`` (not 17 digits + digit/X), ``area`` (no province code), ``birth_date``
    (impossible or future date, or before 1900), ``checksum`` (wrong check character).
    """
    number = normalise(raw)
    if not _PATTERN.match(number):
        raise ResidentIdError("format")
    if not ("11" <= number[:2] <= "82"):
        raise ResidentIdError("area")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise ResidentIdError("birth_date") from exc
    if born.year < 1900 or born > (today or date.today()):
        raise ResidentIdError("birth_date")
    if check_char(number[:17]) != number[17]:
        raise ResidentIdError("checksum")
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return ResidentId(number=number, area_code=number[:6], birth_date=born, sex=sex)


def build(area_code: str, birth: date, sequence: int, sex: str) -> str:
    """Compose a valid number (demo data and tests). ``sequence`` picks the order code; sex its parity."""
    order = (sequence % 500) * 2 + (1 if sex == "M" else 0)
    first17 = f"{area_code}{birth:%Y%m%d}{order:03d}"
    return first17 + check_char(first17)
