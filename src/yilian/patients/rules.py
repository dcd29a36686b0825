"""Identity rules for real-name patients (实名就诊人). Pure: no Django, no database.

Sources:
* 居民身份证 — GB 11643-1999 (``common.resident_id``): area code, birth date, sequence parity (sex),
  ISO 7064 MOD 11-2 check character. Birth date and sex are *derived* from the number; values the
  clerk typed are cross-checked against it, never trusted over it.
* 护照 — ICAO Doc 9303 document numbers are up to 9 characters; national practice varies, so we
  accept 5–17 letters/digits.
* 港澳居民来往内地通行证 (回乡证) — ``H``/``M`` + 8 (old) or 10 (new) digits; 9 tolerated.
* 台湾居民来往大陆通行证 (台胞证) — 8 digits (card-style permits since 2015).
* 外国人永久居留身份证 — 15 characters (2004 style) or 18 characters (2017 style, starting with ``9``).
* 出生医学证明 — one letter + 9 digits (national serial).
* 手机号 — mainland mobile numbers (MIIT numbering plan): ``1[3-9]`` + 9 digits.

Functions raise ``RuleViolation`` carrying a stable ``code`` and the ``field`` it concerns; the
translated messages live in ``patients.services`` (``MESSAGES``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from yilian.common import resident_id

RESIDENT_ID = "resident_id"
PASSPORT = "passport"
HK_MACAO_PERMIT = "hk_macao_permit"
TAIWAN_PERMIT = "taiwan_permit"
FOREIGN_PERMANENT = "foreign_permanent"
BIRTH_CERT = "birth_cert"
OTHER = "other"
ID_TYPES = (RESIDENT_ID, PASSPORT, HK_MACAO_PERMIT, TAIWAN_PERMIT, FOREIGN_PERMANENT, BIRTH_CERT, OTHER)
SEXES = ("M", "F", "U")

_ID_FORMATS: dict[str, re.Pattern[str]] = {
    PASSPORT: re.compile(r"^[A-Z0-9]{5,17}$"),
    HK_MACAO_PERMIT: re.compile(r"^[HM]\d{8,10}$"),
    TAIWAN_PERMIT: re.compile(r"^\d{8}$"),
    FOREIGN_PERMANENT: re.compile(r"^(?:[A-Z0-9]{15}|[A-Z0-9]{18})$"),
    BIRTH_CERT: re.compile(r"^[A-Z]\d{9}$"),
    OTHER: re.compile(r"^[A-Z0-9-]{4,30}$"),
}
_RESIDENT_REASONS = {
    "format": "ID_FORMAT",
    "area": "ID_AREA",
    "birth_date": "ID_BIRTH_DATE",
    "checksum": "ID_CHECKSUM",
}
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
# Chinese names: CJK ideographs with the middle dot of transliterated minority names (买买提·艾力).
# Rare characters (生僻字) outside the BMP (CJK extensions B–H) occur in real names and must be
# accepted, and so must 〇 (U+3007). Latin names: letters with spaces, middle dot, hyphen,
# apostrophe, period.
_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U000323af"
_CHINESE_NAME = re.compile(f"^[{_HAN}]+(?:[·•][{_HAN}]+)*$")
_LATIN_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z .'·-]*[A-Za-z.])?$")
NAME_MAX = 50


class RuleViolation(ValueError):
    """A rule the input breaks: ``code`` is stable (UPPER_SNAKE), ``field`` names the input."""

    def __init__(self, code: str, field: str) -> None:
        self.code = code
        self.field = field
        super().__init__(f"{field}: {code}")


@dataclass(frozen=True)
class Identity:
    """A checked identity: normalised number, and the birth date and sex to store."""

    id_type: str
    id_number: str
    birth_date: date
    sex: str

    @property
    def head(self) -> str:
        """The 6-digit area code kept visible in masked resident IDs (empty for other documents)."""
        return self.id_number[:6] if self.id_type == RESIDENT_ID else ""

    @property
    def last4(self) -> str:
        return self.id_number[-4:]


def normalise_id(raw: str) -> str:
    """Upper-case, without spaces: the form both the blind index and the formats use."""
    return resident_id.normalise(raw or "")


def check_identity(
    id_type: str,
    id_number: str,
    *,
    sex: str | None = None,
    birth_date: date | None = None,
    today: date | None = None,
) -> Identity:
    """Validate a document number and settle birth date and sex (GB 11643-1999 for resident IDs).

    Resident ID: the number decides; a supplied sex/birth date that differs is ``ID_SEX_MISMATCH`` /
    ``ID_BIRTH_MISMATCH`` (a typing error in one of them, which the clerk must resolve). Other
    documents carry no birth date or sex, so both are required (``BIRTH_DATE_REQUIRED``,
    ``SEX_REQUIRED``) and the birth date cannot be in the future.
    """
    today = today or date.today()
    if id_type not in ID_TYPES:
        raise RuleViolation("ID_TYPE_UNKNOWN", "id_type")
    if sex is not None and sex not in SEXES:
        raise RuleViolation("SEX_INVALID", "sex")
    number = normalise_id(id_number)
    if not number:
        raise RuleViolation("ID_REQUIRED", "id_number")
    if id_type == RESIDENT_ID:
        try:
            parsed = resident_id.parse(number, today=today)
        except resident_id.ResidentIdError as exc:
            raise RuleViolation(_RESIDENT_REASONS.get(exc.reason, "ID_FORMAT"), "id_number") from exc
        if sex not in (None, "", "U") and sex != parsed.sex:
            raise RuleViolation("ID_SEX_MISMATCH", "sex")
        if birth_date is not None and birth_date != parsed.birth_date:
            raise RuleViolation("ID_BIRTH_MISMATCH", "birth_date")
        return Identity(RESIDENT_ID, parsed.number, parsed.birth_date, parsed.sex)
    if not _ID_FORMATS[id_type].match(number):
        raise RuleViolation("ID_FORMAT", "id_number")
    if birth_date is None:
        raise RuleViolation("BIRTH_DATE_REQUIRED", "birth_date")
    if birth_date > today or birth_date.year < 1900:
        raise RuleViolation("BIRTH_DATE_INVALID", "birth_date")
    if not sex:
        raise RuleViolation("SEX_REQUIRED", "sex")
    return Identity(id_type, number, birth_date, sex)


def upgrade_old_resident_id(raw: str) -> str | None:
    """A first-generation 15-digit resident ID (一代证, GB 11643-1989) as its 18-digit form.

    The 18-digit form inserts the century ``19`` before the 2-digit year and appends the check
    character (GB 11643-1999); staff still meet old numbers on paper records. ``None`` if ``raw``
    is not 15 digits.
    """
    number = normalise_id(raw)
    if not re.fullmatch(r"\d{15}", number):
        return None
    first17 = number[:6] + "19" + number[6:]
    return first17 + resident_id.check_char(first17)


def normalise_phone(raw: str) -> str:
    """Digits only, without the ``+86``/``86`` country prefix."""
    digits = re.sub(r"[\s()-]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def check_mobile(raw: str, *, field: str = "phone") -> str:
    """A mainland mobile number (``1[3-9]`` + 9 digits); returns it normalised. Empty stays empty."""
    phone = normalise_phone(raw)
    if phone and not _MOBILE.match(phone):
        raise RuleViolation("PHONE_FORMAT", field)
    return phone


def check_contact_phone(raw: str, *, field: str = "phone") -> str:
    """A contact may be reached on a mobile or a landline (``0`` + area code + 7–8 digits)."""
    phone = normalise_phone(raw)
    if not phone:
        raise RuleViolation("PHONE_REQUIRED", field)
    if not (_MOBILE.match(phone) or _LANDLINE.match(phone)):
        raise RuleViolation("PHONE_FORMAT", field)
    return phone


def check_name(raw: str, *, field: str = "name") -> str:
    """1–50 characters: a Chinese name (with ``·`` for transliterated names) or a Latin name."""
    name = re.sub(r"\s+", " ", (raw or "").strip()).replace("•", "·")
    if not name:
        raise RuleViolation("NAME_REQUIRED", field)
    if len(name) > NAME_MAX:
        raise RuleViolation("NAME_TOO_LONG", field)
    if not (_CHINESE_NAME.match(name) or _LATIN_NAME.match(name)):
        raise RuleViolation("NAME_CHARACTERS", field)
    return name


def query_kind(query: str) -> str:
    """What a search-box entry looks like (one box for everything, the way registration desks work).

    ``mobile`` (11 digits starting with 1; also tried as a document number), ``id`` (letters/digits
    with at least one digit, 5–30 long: resident ID, passport, permit), ``initials`` (ASCII letters:
    pinyin initials or a Latin name), ``name`` (Chinese characters), ``empty`` or ``unsupported``.
    """
    q = query.strip()
    if not q:
        return "empty"
    compact = q.replace(" ", "")
    if _MOBILE.match(compact):
        return "mobile"
    if re.fullmatch(r"[A-Za-z0-9-]{5,30}", compact) and any(c.isdigit() for c in compact):
        return "id"
    if re.fullmatch(r"[A-Za-z]{1,32}", compact):
        return "initials"
    if _CHINESE_NAME.match(q) and len(q) <= NAME_MAX:
        return "name"
    return "unsupported"
