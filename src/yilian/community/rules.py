"""Pure rules of the medical-community structure (医共体机构层级). No Django, no database.

* Hierarchy (县域医共体建设评判标准, 国卫基层函〔2020〕12号 practice): the county hospital
  (牵头医院) is the root; township health centres (乡镇卫生院) and community health service
  centres (社区卫生服务中心) sit under the county hospital; village clinics (村卫生室) sit under a
  township health centre (乡村一体化管理).
* Organisation and department codes: upper-case letters, digits and hyphens, 2–32 characters.
* Administrative division codes (统计用区划代码, 12 digits: province 2, city 2, county 2,
  township 3, village 3), checked for shape and a real province prefix (GB/T 2260).
* Materialised paths: each level is four digits and a dot (``0001.0003.``).
"""

from __future__ import annotations

import re

COUNTY_HOSPITAL = "county_hospital"
TOWNSHIP_CENTRE = "township_centre"
COMMUNITY_CENTRE = "community_centre"
VILLAGE_CLINIC = "village_clinic"

KINDS = (COUNTY_HOSPITAL, TOWNSHIP_CENTRE, COMMUNITY_CENTRE, VILLAGE_CLINIC)

# kind -> the parent kinds it may sit under; ``None`` means "is a root".
ALLOWED_PARENTS: dict[str, frozenset[str | None]] = {
    COUNTY_HOSPITAL: frozenset({None}),
    TOWNSHIP_CENTRE: frozenset({COUNTY_HOSPITAL}),
    COMMUNITY_CENTRE: frozenset({COUNTY_HOSPITAL}),
    VILLAGE_CLINIC: frozenset({TOWNSHIP_CENTRE}),
}

CODE_PATTERN = re.compile(r"[A-Z0-9-]{2,32}")
DIVISION_CODE_PATTERN = re.compile(r"\d{12}")
# GB/T 2260 province-level prefixes (incl. 71 台湾, 81 香港, 82 澳门).
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)

PHONE_PATTERN = re.compile(r"\+?[0-9(][0-9 ()\-]{2,19}")

PATH_SEGMENT_WIDTH = 4
MAX_CHILDREN = 10**PATH_SEGMENT_WIDTH - 1


def parent_allowed(kind: str, parent_kind: str | None) -> bool:
    """Whether an organisation of ``kind`` may sit under a parent of ``parent_kind`` (None = root)."""
    return parent_kind in ALLOWED_PARENTS.get(kind, frozenset())


def allowed_child_kinds(parent_kind: str | None) -> list[str]:
    """The kinds that may be created under ``parent_kind`` (None = as a root), in display order."""
    return [kind for kind in KINDS if parent_allowed(kind, parent_kind)]


def normalise_code(raw: str) -> str:
    """Codes are compared upper-case and without surrounding blanks (staff type them by hand)."""
    return raw.strip().upper()


def code_is_valid(code: str) -> bool:
    return CODE_PATTERN.fullmatch(code) is not None


def phone_is_valid(phone: str) -> bool:
    """A landline (``0535-3312345``), mobile or extension: digits, spaces, brackets, hyphens."""
    return PHONE_PATTERN.fullmatch(phone) is not None


def division_code_problem(code: str) -> str | None:
    """``None`` if ``code`` is a plausible 12-digit division code, else a reason key.

    Reason keys: ``"shape"`` (not 12 digits), ``"province"`` (no such province prefix),
    ``"levels"`` (a lower level is set under an all-zero higher level, e.g. county ``00``
    with a township part).
    """
    if DIVISION_CODE_PATTERN.fullmatch(code) is None:
        return "shape"
    if code[:2] not in PROVINCE_PREFIXES:
        return "province"
    parts = [code[2:4], code[4:6], code[6:9], code[9:12]]
    seen_zero = False
    for part in parts:
        if set(part) == {"0"}:
            seen_zero = True
        elif seen_zero:
            return "levels"
    return None


def child_path(parent_path: str, last_child_path: str | None) -> str:
    """The path of the next child under ``parent_path`` given the greatest existing child path.

    Paths are fixed-width, so the greatest path in string order is the last child.
    Raises ``ValueError`` when the level is full (9999 children).
    """
    if last_child_path is None:
        number = 1
    else:
        segment = last_child_path[len(parent_path) :].rstrip(".")
        number = int(segment) + 1
    if number > MAX_CHILDREN:
        raise ValueError("level full")
    return f"{parent_path}{number:0{PATH_SEGMENT_WIDTH}d}."


def depth_of(path: str) -> int:
    """Depth of a materialised path: ``"0001."`` is 0."""
    return path.count(".") - 1
