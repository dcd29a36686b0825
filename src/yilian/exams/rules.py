"""Exam appointment centre rules (医技检查集中预约): access.md §2 E-1..E-5, PE-1, §8 (FHIR statuses).

Pure: no database, no Django. The constraint checker (E-3, E-4) and the one-stop planner (E-5)
work on small value objects (``ExamSpec``, ``Placed``, ``Request``) that the services build from
the catalogue rows, so that the preparation rules are configurable data (E-4), not code.

User-facing texts are marked with ``_`` (a no-op here, so that ``makemessages`` extracts them);
the services translate them with ``gettext`` when they show them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


def _(text: str) -> str:  # marks a text for translation; translated where it is shown
    return text


# --- Statuses (access.md §8) ------------------------------------------------------------------------

# ExamOrder = FHIR ServiceRequest.status (same codes).
ORDER_DRAFT, ORDER_ACTIVE, ORDER_COMPLETED, ORDER_REVOKED = "draft", "active", "completed", "revoked"
ORDER_STATUSES = (ORDER_DRAFT, ORDER_ACTIVE, ORDER_COMPLETED, ORDER_REVOKED)
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    ORDER_DRAFT: frozenset({ORDER_ACTIVE, ORDER_REVOKED}),
    ORDER_ACTIVE: frozenset({ORDER_COMPLETED, ORDER_REVOKED}),
    ORDER_COMPLETED: frozenset(),
    ORDER_REVOKED: frozenset(),
}

# ExamAppointment (F-Appointment: internal → FHIR Appointment.status).
BOOKED, ARRIVED, FULFILLED, CANCELLED, NO_SHOW, ENTERED_IN_ERROR = (
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered_in_error",
)
APPOINTMENT_STATUSES = (BOOKED, ARRIVED, FULFILLED, CANCELLED, NO_SHOW, ENTERED_IN_ERROR)
# E-1: at most one of these per order; E-2: a slot place never has two of these.
ACTIVE = (BOOKED, ARRIVED)
APPOINTMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    BOOKED: frozenset({ARRIVED, CANCELLED, NO_SHOW, ENTERED_IN_ERROR}),
    ARRIVED: frozenset({FULFILLED, CANCELLED, NO_SHOW, ENTERED_IN_ERROR}),
    FULFILLED: frozenset({ENTERED_IN_ERROR}),
    CANCELLED: frozenset({ENTERED_IN_ERROR}),
    NO_SHOW: frozenset({ENTERED_IN_ERROR}),
    ENTERED_IN_ERROR: frozenset(),
}
_FHIR_APPOINTMENT = {ENTERED_IN_ERROR: "entered-in-error"}

# Cancellation reasons (FHIR appointment-cancellation-reason, §8).
REASON_PATIENT, REASON_PROVIDER, REASON_RESCHEDULED = "pat", "prov", "oth-rescheduled"
CANCEL_REASONS = (REASON_PATIENT, REASON_PROVIDER, REASON_RESCHEDULED)

# ExamSlot place (F-Slot).
SLOT_FREE, SLOT_BOOKED, SLOT_BLOCKED = "free", "booked", "blocked"
SLOT_STATUSES = (SLOT_FREE, SLOT_BOOKED, SLOT_BLOCKED)
_FHIR_SLOT = {SLOT_FREE: "free", SLOT_BOOKED: "busy", SLOT_BLOCKED: "busy-unavailable"}

# Physical-exam package orders (PE-1).
PACKAGE_BOOKED, PACKAGE_CANCELLED, PACKAGE_COMPLETED = "booked", "cancelled", "completed"
PACKAGE_STATUSES = (PACKAGE_BOOKED, PACKAGE_CANCELLED, PACKAGE_COMPLETED)


def fhir_appointment_status(status: str) -> str:
    return _FHIR_APPOINTMENT.get(status, status)


def fhir_slot_status(status: str) -> str:
    return _FHIR_SLOT[status]


def fhir_service_request_status(status: str) -> str:
    return status


def can_transition(table: Mapping[str, frozenset[str]], from_status: str, to_status: str) -> bool:
    return to_status in table.get(from_status, frozenset())


# --- Parameters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExamParameters:
    """Configurable defaults of §2: the site gap of E-3 and the end of the morning for E-4."""

    site_gap_minutes: int = 30  # E-3 [DECISION]
    am_end: time = time(12, 0)  # E-4: an "AM segment" ends by noon
    horizon_days: int = 14  # E-5: how far ahead the planner looks
    lead_minutes: int = 120  # E-5: the earliest proposed segment starts this long after now
    max_orders: int = 10  # E-5: more open orders than this are planned in batches by the desk


DEFAULTS = ExamParameters()


# --- The constraint checker (E-3, E-4) ---------------------------------------------------------------


@dataclass(frozen=True)
class ExamSpec:
    """An exam type's preparation data (E-4), copied from the ``ExamType`` catalogue row.

    ``must_precede``: codes of exams that, when booked the same day, must come after this one.
    ``recovery_minutes``: the least time after this exam before the next one starts (sedation).
    """

    code: str
    name: str
    fasting: bool = False
    breaks_fast: bool = False
    gi_contrast: bool = False
    gi_contrast_sensitive: bool = False
    iodinated_contrast: bool = False
    sedation: bool = False
    recovery_minutes: int = 0
    must_precede: frozenset[str] = frozenset()
    preparation: str = ""


@dataclass(frozen=True)
class Placed:
    """An exam at a time and a site: a proposed item or an appointment the patient already has."""

    key: object
    spec: ExamSpec
    start: datetime
    end: datetime
    site: str

    @property
    def day(self) -> date:
        return self.start.astimezone(TZ).date()


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``rule`` (E-3 / E-4), a stable ``code`` and a plain-Chinese message."""

    rule: str
    code: str
    message: str
    keys: tuple = ()


def is_am(start: datetime, end: datetime, params: ExamParameters = DEFAULTS) -> bool:
    """E-4: a morning segment starts and ends by ``am_end`` (local time) on the same day."""
    s, e = start.astimezone(TZ), end.astimezone(TZ)
    return s.date() == e.date() and e.time() <= params.am_end and s.time() < params.am_end


def _fmt(dt: datetime) -> str:
    return dt.astimezone(TZ).strftime("%H:%M")


def pair_violations(a: Placed, b: Placed, params: ExamParameters = DEFAULTS) -> list[Violation]:
    """The rules between two exams of one patient (E-3, E-4); ``a`` starts no later than ``b``."""
    if a.start > b.start:
        a, b = b, a
    if a.day != b.day and b.start >= a.end + timedelta(minutes=params.site_gap_minutes):
        return []
    out: list[Violation] = []
    keys = (a.key, b.key)
    if b.start < a.end:
        out.append(
            Violation(
                "E-3",
                "overlap",
                _("%(a)s（%(at)s）与%(b)s（%(bt)s）时间重叠。")
                % {"a": a.spec.name, "at": _fmt(a.start), "b": b.spec.name, "bt": _fmt(b.start)},
                keys,
            )
        )
        return out
    if a.site != b.site and b.start < a.end + timedelta(minutes=params.site_gap_minutes):
        out.append(
            Violation(
                "E-3",
                "site_gap",
                _("%(a)s在%(asite)s、%(b)s在%(bsite)s，不同院区/楼宇之间至少需间隔 %(gap)s 分钟。")
                % {
                    "a": a.spec.name,
                    "asite": a.site,
                    "b": b.spec.name,
                    "bsite": b.site,
                    "gap": params.site_gap_minutes,
                },
                keys,
            )
        )
    if a.spec.recovery_minutes and b.start < a.end + timedelta(minutes=a.spec.recovery_minutes):
        out.append(
            Violation(
                "E-4",
                "recovery",
                _("%(a)s后需观察恢复 %(m)s 分钟，%(b)s不能紧接其后。")
                % {"a": a.spec.name, "m": a.spec.recovery_minutes, "b": b.spec.name},
                keys,
            )
        )
    if a.day != b.day:
        return out
    if b.spec.fasting and a.spec.breaks_fast:
        out.append(
            Violation(
                "E-4",
                "fast_broken",
                _("%(b)s需空腹，不能安排在同日%(a)s（需饮水或进食）之后。")
                % {"a": a.spec.name, "b": b.spec.name},
                keys,
            )
        )
    if a.spec.gi_contrast and b.spec.gi_contrast_sensitive:
        out.append(
            Violation(
                "E-4",
                "gi_contrast",
                _("%(a)s（钡剂/消化道造影）后当天不宜做%(b)s。") % {"a": a.spec.name, "b": b.spec.name},
                keys,
            )
        )
    if a.spec.code in b.spec.must_precede:
        out.append(
            Violation(
                "E-4",
                "order",
                _("同日检查时%(b)s必须排在%(a)s之前。") % {"a": a.spec.name, "b": b.spec.name},
                keys,
            )
        )
    if a.spec.iodinated_contrast and b.spec.iodinated_contrast:
        out.append(
            Violation(
                "E-4",
                "contrast_twice",
                _("%(a)s与%(b)s都使用碘造影剂，不能安排在同一天。") % {"a": a.spec.name, "b": b.spec.name},
                keys,
            )
        )
    return out


def single_violations(p: Placed, params: ExamParameters = DEFAULTS) -> list[Violation]:
    """The rules of one exam alone: E-4 fasting exams only in a morning segment."""
    if p.spec.fasting and not is_am(p.start, p.end, params):
        return [
            Violation(
                "E-4",
                "fasting_pm",
                _("%(a)s需空腹，只能安排在上午时段（%(t)s 不符合）。")
                % {"a": p.spec.name, "t": _fmt(p.start)},
                (p.key,),
            )
        ]
    return []


def violations(placed: Iterable[Placed], params: ExamParameters = DEFAULTS) -> list[Violation]:
    """Every E-3 / E-4 violation among a patient's exams (proposed and already booked)."""
    items = sorted(placed, key=lambda p: (p.start, p.end, str(p.key)))
    out: list[Violation] = []
    for i, a in enumerate(items):
        out.extend(single_violations(a, params))
        for b in items[i + 1 :]:
            out.extend(pair_violations(a, b, params))
    return out


# --- The planner (E-5) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A free segment of a resource that can perform the exam (at least one place left)."""

    resource_id: int
    site: str
    start: datetime
    end: datetime

    @property
    def day(self) -> date:
        return self.start.astimezone(TZ).date()


@dataclass(frozen=True)
class Request:
    """An open order to plan: its key (order id), its exam's data, and its free segments."""

    key: int
    spec: ExamSpec
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class PlanItem:
    key: int
    spec: ExamSpec
    candidate: Candidate


@dataclass(frozen=True)
class PlanDay:
    day: date
    items: tuple[PlanItem, ...]
    preparation: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The proposal: visit days in order; ``optimal`` is False if the search budget ran out and the
    plan may use more days than necessary; ``unplanned`` are keys with no feasible segment at all."""

    days: tuple[PlanDay, ...]
    optimal: bool = True
    unplanned: tuple[int, ...] = ()

    @property
    def items(self) -> list[PlanItem]:
        return [item for d in self.days for item in d.items]


@dataclass
class _Search:
    budget: int
    fixed_by_day: dict[date, list[Placed]]
    params: ExamParameters
    memo: dict[tuple[date, frozenset[int]], tuple[PlanItem, ...] | None] = field(default_factory=dict)
    exhausted: bool = False

    def spend(self) -> bool:
        self.budget -= 1
        if self.budget < 0:
            self.exhausted = True
        return not self.exhausted


def _schedule_day(search: _Search, day: date, requests: Sequence[Request]) -> tuple[PlanItem, ...] | None:
    """The earliest feasible times for ``requests`` all on ``day``, or None (memoised).

    Ordered backtracking: the request with the fewest segments that day first, segments by start
    time; each placement is checked against what is already placed that day (and the patient's
    existing appointments), which prunes early because every rule is a property of one exam or of
    a pair, so a violation can never be repaired by adding exams.
    """
    memo_key = (day, frozenset(r.key for r in requests))
    if memo_key in search.memo:
        return search.memo[memo_key]
    options: list[tuple[Request, list[Candidate]]] = []
    for r in requests:
        seen: set[tuple[str, datetime, datetime]] = set()
        mine = []
        for c in sorted(r.candidates, key=lambda c: (c.start, c.end, c.resource_id)):
            # Resources on the same site at the same times are interchangeable for the rules.
            if c.day == day and (c.site, c.start, c.end) not in seen:
                seen.add((c.site, c.start, c.end))
                mine.append(c)
        if not mine:
            search.memo[memo_key] = None
            return None
        options.append((r, mine))
    options.sort(key=lambda o: (len(o[1]), o[0].key))
    fixed = search.fixed_by_day.get(day, [])
    placed: list[Placed] = []
    chosen: list[PlanItem] = []

    def place(i: int) -> bool:
        if i == len(options):
            return True
        request, mine = options[i]
        for c in mine:
            if not search.spend():
                return False
            p = Placed(request.key, request.spec, c.start, c.end, c.site)
            if single_violations(p, search.params):
                continue
            if any(pair_violations(q, p, search.params) for q in itertools.chain(fixed, placed)):
                continue
            placed.append(p)
            chosen.append(PlanItem(request.key, request.spec, c))
            if place(i + 1):
                return True
            placed.pop()
            chosen.pop()
        return False

    result = tuple(sorted(chosen, key=lambda it: it.candidate.start)) if place(0) else None
    if not search.exhausted:
        search.memo[memo_key] = result
    return result


def plan_visits(
    requests: Sequence[Request],
    fixed: Sequence[Placed] = (),
    params: ExamParameters = DEFAULTS,
    budget: int = 200_000,
) -> Plan:
    """E-5 "one-stop": the plan with the FEWEST visit days for all of a patient's open orders.

    The rules (E-3, E-4) only relate exams on the same day, so the problem splits into choosing the
    days and then, independently per day, times for the exams of that day. The cost of a set of days
    is the number of *new* trips: days on which the patient has no appointment yet (a day already
    visited for an earlier booking costs nothing). The search tries cost = 0, 1, 2, …; for each
    cost every set of days with that cost, fewest days first, then in calendar order (earliest
    first); for each set every assignment of orders to those days (each day used), asking
    ``_schedule_day`` — an ordered backtracking over segments, memoised per (day, orders) — whether
    that day's exams fit. The first success is returned: no plan with fewer new trips exists (every
    smaller cost was exhausted), and among those it has the fewest days, the earliest days and,
    within a day, the earliest feasible times. Deterministic: every choice is in a fixed order.

    Orders with no free segment in the horizon are reported in ``unplanned`` and the rest planned.
    ``budget`` bounds the work (orders per patient are few: typically 1–5); if it runs out, the
    search falls back to one day per order-group found greedily and marks the plan not optimal.
    ``fixed`` are the patient's existing appointments, which every proposal must respect.
    """
    fixed_by_day: dict[date, list[Placed]] = {}
    for p in fixed:
        fixed_by_day.setdefault(p.day, []).append(p)
    search = _Search(budget=budget, fixed_by_day=fixed_by_day, params=params)
    plannable = [r for r in sorted(requests, key=lambda r: r.key) if r.candidates]
    unplanned = tuple(sorted(r.key for r in requests if not r.candidates))
    if not plannable:
        return Plan(days=(), unplanned=unplanned)
    days_of = {r.key: sorted({c.day for c in r.candidates}) for r in plannable}
    all_days = sorted({d for ds in days_of.values() for d in ds})
    visited = [d for d in all_days if d in fixed_by_day]
    new_days = [d for d in all_days if d not in fixed_by_day]
    n = len(plannable)

    for cost in range(0, n + 1):  # cost = visit days the patient did not already have
        combos = []
        for j in range(0, min(len(visited), n - cost) + 1):
            if cost + j == 0:
                continue
            for fresh in itertools.combinations(new_days, cost):
                for old in itertools.combinations(visited, j):
                    combos.append(tuple(sorted(fresh + old)))
        combos.sort(key=lambda c: (len(c), c))
        for combo in combos:
            if search.exhausted:
                break
            found = _try_days(search, combo, plannable, days_of)
            if found is not None:
                return _plan_from(found, optimal=True, unplanned=unplanned)
        if search.exhausted:
            break
    # Budget exhausted (or no joint plan): place each order on its own earliest feasible day.
    return _greedy(plannable, fixed_by_day, params, unplanned)


def _try_days(
    search: _Search, combo: tuple[date, ...], requests: list[Request], days_of: dict[int, list[date]]
) -> dict[date, tuple[PlanItem, ...]] | None:
    allowed = [[d for d in combo if d in set(days_of[r.key])] for r in requests]
    if any(not a for a in allowed):
        return None
    for assignment in itertools.product(*allowed):
        if not search.spend():
            return None
        if len(set(assignment)) != len(combo):
            continue  # a day of the set unused: a smaller set was already tried
        groups: dict[date, list[Request]] = {}
        for r, d in zip(requests, assignment, strict=True):
            groups.setdefault(d, []).append(r)
        result: dict[date, tuple[PlanItem, ...]] = {}
        for d in combo:
            day_items = _schedule_day(search, d, groups[d])
            if day_items is None:
                break
            result[d] = day_items
        else:
            return result
        if search.exhausted:
            return None
    return None


def _greedy(
    requests: list[Request],
    fixed_by_day: dict[date, list[Placed]],
    params: ExamParameters,
    unplanned: tuple[int, ...],
) -> Plan:
    chosen: dict[date, list[PlanItem]] = {}
    left: list[int] = []
    for r in requests:
        for c in sorted(r.candidates, key=lambda c: (c.start, c.resource_id)):
            p = Placed(r.key, r.spec, c.start, c.end, c.site)
            others = fixed_by_day.get(c.day, []) + [
                Placed(i.key, i.spec, i.candidate.start, i.candidate.end, i.candidate.site)
                for i in chosen.get(c.day, [])
            ]
            if single_violations(p, params) or any(pair_violations(q, p, params) for q in others):
                continue
            chosen.setdefault(c.day, []).append(PlanItem(r.key, r.spec, c))
            break
        else:
            left.append(r.key)
    result = {d: tuple(sorted(items, key=lambda it: it.candidate.start)) for d, items in chosen.items()}
    return _plan_from(result, optimal=False, unplanned=tuple(sorted(unplanned + tuple(left))))


def _plan_from(
    by_day: Mapping[date, tuple[PlanItem, ...]], *, optimal: bool, unplanned: tuple[int, ...]
) -> Plan:
    days = tuple(
        PlanDay(day=d, items=items, preparation=tuple(preparation_for_day([i.spec for i in items])))
        for d, items in sorted(by_day.items())
    )
    return Plan(days=days, optimal=optimal, unplanned=unplanned)


# --- Preparation instructions (E-4, PE-1) -----------------------------------------------------------

NOTE_FASTING = _("检查前一晚22点后禁食禁水，检查当天早晨不要吃早餐，空腹项目做完后再进食。")
NOTE_GI_CONTRAST = _("钡餐（消化道造影）检查后当天不宜做腹部超声，已为您把超声排在钡餐之前。")
NOTE_IODINATED = _("增强检查使用碘造影剂：请提前告知过敏史、肾功能情况，检查后多饮水，观察30分钟后再离开。")
NOTE_SEDATION = _("无痛（镇静）检查须有成年家属陪同，检查后当天不得驾车、骑车或从事高空作业。")
NOTE_ORDER = _("请按以下时间顺序依次检查，不要自行调换顺序。")
NOTE_BRING = _("请携带身份证或电子健康卡，提前30分钟到达检查科室签到。")


def preparation_for_day(specs: Sequence[ExamSpec]) -> list[str]:
    """The patient's preparation instructions for one visit day, in plain Chinese (E-4, PE-1).

    General notes from the day's flags (fasting, GI contrast, iodinated contrast, sedation), then
    each exam's own instruction from the catalogue (data, editable by the hospital).
    """
    lines = [NOTE_BRING]
    if any(s.fasting for s in specs):
        lines.append(NOTE_FASTING)
    if any(s.gi_contrast for s in specs) and any(s.gi_contrast_sensitive for s in specs):
        lines.append(NOTE_GI_CONTRAST)
    if any(s.iodinated_contrast for s in specs):
        lines.append(NOTE_IODINATED)
    if any(s.sedation for s in specs):
        lines.append(NOTE_SEDATION)
    if len(specs) > 1 and any(s.must_precede or s.breaks_fast or s.gi_contrast for s in specs):
        lines.append(NOTE_ORDER)
    for s in specs:
        if s.preparation:
            lines.append(f"{s.name}：{s.preparation}")
    return lines


# --- Physical-exam packages (PE-1) ------------------------------------------------------------------


@dataclass(frozen=True)
class PackageItemSpec:
    name: str
    sex: str = ""  # "" any, "M", "F"
    min_age: int | None = None
    max_age: int | None = None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def ineligible_items(
    items: Iterable[PackageItemSpec], *, sex: str, birth: date, day: date
) -> list[tuple[str, str]]:
    """PE-1: the package items the patient does not qualify for, as (item name, reason code)."""
    age = age_on(birth, day)
    out = []
    for item in items:
        if item.sex and item.sex != sex:
            out.append((item.name, "sex"))
        elif item.min_age is not None and age < item.min_age:
            out.append((item.name, "too_young"))
        elif item.max_age is not None and age > item.max_age:
            out.append((item.name, "too_old"))
    return out


def local_datetime(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TZ)


def segments(start: time, end: time, minutes: int) -> list[tuple[time, time]]:
    """Time segments (分时段, B-19) of ``minutes`` from ``start`` to ``end``."""
    out = []
    cursor = datetime.combine(date(2000, 1, 1), start)
    stop = datetime.combine(date(2000, 1, 1), end)
    step = timedelta(minutes=minutes)
    while cursor + step <= stop:
        out.append((cursor.time(), (cursor + step).time()))
        cursor += step
    return out
