"""Booking rules (预约挂号规则), pure: no Django, no database, no clock (callers pass ``now``).

Source: ``../shared/docs/rules/access.md`` §0 (defaults), §1 (B-1..B-20) and §8 (FHIR R4 status
mappings F-Appointment, F-Slot, F-Schedule). Each function names the rule it implements.
Times are Asia/Shanghai wall-clock times; datetimes passed in and returned are timezone-aware.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")

# Periods of a session (出诊时段).
AM, PM, EVENING = "am", "pm", "evening"
PERIODS = (AM, PM, EVENING)

# Fee classes (号别) — F-Schedule serviceType.
GENERAL, EXPERT, SPECIAL = "general", "expert", "special"
FEE_CLASSES = (GENERAL, EXPERT, SPECIAL)

# Slot pools: public booking, on-site counter share, community referral reserve (B-17).
PUBLIC, ONSITE, REFERRAL = "public", "onsite", "referral"
POOLS = (PUBLIC, ONSITE, REFERRAL)

# Slot statuses (号源状态) and appointment statuses (预约状态).
SLOT_FREE, SLOT_HELD, SLOT_BOOKED, SLOT_UNAVAILABLE = "free", "held", "booked", "unavailable"
SLOT_STATUSES = (SLOT_FREE, SLOT_HELD, SLOT_BOOKED, SLOT_UNAVAILABLE)

HELD = "held"
BOOKED = "booked"
ARRIVED = "arrived"
FULFILLED = "fulfilled"
NO_SHOW = "no_show"
CANCELLED = "cancelled"
ENTERED_IN_ERROR = "entered_in_error"
APPOINTMENT_STATUSES = (HELD, BOOKED, ARRIVED, FULFILLED, NO_SHOW, CANCELLED, ENTERED_IN_ERROR)

# B-5: the states that occupy "one booking per date × session × department".
ACTIVE_FOR_DUPLICATE = (HELD, BOOKED, ARRIVED)
# B-10: the states that occupy a numbered slot (a slot never has two of these).
OCCUPYING_SLOT = (HELD, BOOKED, ARRIVED, FULFILLED, NO_SHOW)
# B-6: the states that count towards the weekly / monthly / quarterly caps. HELD is counted too
# [DECISION]: a pending hold would otherwise let a patient exceed the cap while payments are open.
COUNTING_FOR_QUOTA = (HELD, BOOKED, ARRIVED, FULFILLED, NO_SHOW)

# Cancellation reason codes (FHIR appointment-cancellation-reason, access.md §8).
REASON_PATIENT = "pat"
REASON_PROVIDER = "prov"
REASON_MAINTENANCE = "maint"
REASON_HOLD_EXPIRED = "oth-hold-expired"
REASON_MISSED_CALL = "oth-missed-call"
CANCEL_REASONS = (
    REASON_PATIENT,
    REASON_PROVIDER,
    REASON_MAINTENANCE,
    REASON_HOLD_EXPIRED,
    REASON_MISSED_CALL,
)

# Booking channels (B-3: released at the same time on every channel).
CHANNEL_APP, CHANNEL_WECHAT, CHANNEL_PHONE, CHANNEL_KIOSK, CHANNEL_COUNTER = (
    "app",
    "wechat",
    "phone",
    "kiosk",
    "counter",
)
# B-17: booked by a member institution (township centre, village clinic) with a referral order.
CHANNEL_REFERRAL = "referral"
CHANNELS = (CHANNEL_APP, CHANNEL_WECHAT, CHANNEL_PHONE, CHANNEL_KIOSK, CHANNEL_COUNTER, CHANNEL_REFERRAL)
REFERRAL_REF_MAX = 40

# §8 F-Appointment: the project's transition graph. Keys are (from) → allowed (to).
TRANSITIONS: dict[str, frozenset[str]] = {
    HELD: frozenset({BOOKED, CANCELLED, ENTERED_IN_ERROR}),
    BOOKED: frozenset({ARRIVED, CANCELLED, NO_SHOW, ENTERED_IN_ERROR}),
    ARRIVED: frozenset({FULFILLED, CANCELLED, NO_SHOW, ENTERED_IN_ERROR}),
    FULFILLED: frozenset({ENTERED_IN_ERROR}),
    CANCELLED: frozenset({ENTERED_IN_ERROR}),
    NO_SHOW: frozenset({ENTERED_IN_ERROR}),
    ENTERED_IN_ERROR: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class BookingParameters:
    """The §0 defaults; a department's ``BookingPolicy`` overrides the configurable ones."""

    booking_window_days: int = 7  # BOOKING_WINDOW_DAYS
    release_time: time = time(7, 0)  # RELEASE_TIME
    close_minutes_before_end: int = 30  # BOOKING_CLOSE
    cancel_deadline_days_before: int = 1  # CANCEL_DEADLINE: 17:00 on D−1
    cancel_deadline_time: time = time(17, 0)
    rerelease_delay_min_minutes: int = 5  # RERELEASE_DELAY
    rerelease_delay_max_minutes: int = 30
    payment_hold_minutes: int = 15  # PAYMENT_HOLD_MIN
    referral_reserved_ratio: float = 0.30  # REFERRAL_RESERVED_RATIO
    expert_referral_reserved_ratio: float = 0.50
    onsite_reserved_ratio: float = 0.0  # [DECISION] no on-site share unless the department sets one
    referral_lead_days: int = 14  # REFERRAL_LEAD_DAYS
    referral_return_hours: int = 48  # REFERRAL_RESERVE_RETURN
    default_segment_minutes: int = 30  # B-19
    # Per-hospital rules (not per department).
    week_cap: int = 8
    month_cap: int = 12
    quarter_cap: int = 24
    no_show_threshold: int = 3
    no_show_window_days: int = 90
    suspension_days: int = 90
    escalation_threshold: int = 6
    escalation_window_days: int = 365
    escalation_suspension_days: int = 180
    cancel_abuse_threshold: int = 3
    cancel_abuse_window_days: int = 30
    cancel_abuse_suspension_days: int = 30


DEFAULTS = BookingParameters()


def local_datetime(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=HOSPITAL_TZ)


# --- B-3, B-4, B-7, B-17: the booking calendar --------------------------------------------------


def release_at(service_date: date, params: BookingParameters = DEFAULTS) -> datetime:
    """B-3: numbers for date D open at RELEASE_TIME on D − BOOKING_WINDOW_DAYS."""
    return local_datetime(service_date - timedelta(days=params.booking_window_days), params.release_time)


def referral_opens_at(service_date: date, params: BookingParameters = DEFAULTS) -> datetime:
    """B-17: the reserved referral pool opens REFERRAL_LEAD_DAYS before public release."""
    return release_at(service_date, params) - timedelta(days=params.referral_lead_days)


def referral_returns_at(session_start: datetime, params: BookingParameters = DEFAULTS) -> datetime:
    """B-17 / REFERRAL_RESERVE_RETURN: unused reserved numbers join the public pool at start − 48 h."""
    return session_start - timedelta(hours=params.referral_return_hours)


def close_at(session_end: datetime, params: BookingParameters = DEFAULTS) -> datetime:
    """B-4: online booking closes BOOKING_CLOSE minutes before the session ends."""
    return session_end - timedelta(minutes=params.close_minutes_before_end)


def cancel_deadline(service_date: date, params: BookingParameters = DEFAULTS) -> datetime:
    """B-7: a patient may cancel until CANCEL_DEADLINE (17:00 on D−1 by default)."""
    return local_datetime(
        service_date - timedelta(days=params.cancel_deadline_days_before), params.cancel_deadline_time
    )


def public_pools(
    now: datetime, session_start: datetime, params: BookingParameters = DEFAULTS
) -> tuple[str, ...]:
    """Pools an ordinary (non-referral) booking may draw from: public, plus the referral reserve
    once it has returned (B-17)."""
    if now >= referral_returns_at(session_start, params):
        return (PUBLIC, REFERRAL)
    return (PUBLIC,)


def referral_pools(
    now: datetime, service_date: date, params: BookingParameters = DEFAULTS
) -> tuple[str, ...]:
    """B-17: a referral booking draws on the reserve first; once the public release has come it
    may also take a public number (the reserve is a floor for referrals, not a ceiling)."""
    if now >= release_at(service_date, params):
        return (REFERRAL, PUBLIC)
    return (REFERRAL,)


def counter_pools(
    now: datetime, session_start: datetime, params: BookingParameters = DEFAULTS
) -> tuple[str, ...]:
    """The on-site counter may also give out the on-site share."""
    return (*public_pools(now, session_start, params), ONSITE)


def rerelease_delay(params: BookingParameters = DEFAULTS, rng: random.Random | None = None) -> timedelta:
    """B-9: a freed number returns to the pool after a random delay, never immediately."""
    low, high = params.rerelease_delay_min_minutes, params.rerelease_delay_max_minutes
    seconds = (rng or random.SystemRandom()).randint(low * 60, max(low, high) * 60)
    return timedelta(seconds=max(seconds, 60))


# --- B-6: quota windows ---------------------------------------------------------------------------


def week_bounds(day: date) -> tuple[date, date]:
    """The natural (ISO) week Mon–Sun holding ``day``: [start, end) with end exclusive."""
    start = day - timedelta(days=day.weekday())
    return start, start + timedelta(days=7)


def month_bounds(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    end = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return start, end


def quarter_bounds(day: date) -> tuple[date, date]:
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    end = date(day.year + 1, 1, 1) if first_month == 10 else date(day.year, first_month + 3, 1)
    return start, end


def quota_window(day: date) -> tuple[date, date]:
    """The smallest date range covering the week, month and quarter of ``day`` (one query)."""
    bounds = (week_bounds(day), month_bounds(day), quarter_bounds(day))
    return min(b[0] for b in bounds), max(b[1] for b in bounds)


def quota_exceeded(
    service_date: date, counted_dates: Iterable[date], params: BookingParameters = DEFAULTS
) -> str | None:
    """B-6: which cap ("week" / "month" / "quarter") one more booking on ``service_date`` would
    exceed, given the service dates of the patient's counting bookings; ``None`` if none."""
    dates = list(counted_dates)
    for name, (start, end), cap in (
        ("week", week_bounds(service_date), params.week_cap),
        ("month", month_bounds(service_date), params.month_cap),
        ("quarter", quarter_bounds(service_date), params.quarter_cap),
    ):
        if sum(1 for d in dates if start <= d < end) >= cap:
            return name
    return None


# --- B-12, B-14: suspension ------------------------------------------------------------------------


def no_show_suspension_until(
    no_show_dates: Iterable[date], params: BookingParameters = DEFAULTS
) -> date | None:
    """B-12: the date from which booking is allowed again (exclusive end of the suspension), or ``None``.

    A no-show on date t triggers when the no-shows in the 90 days ending on t (inclusive) reach 3:
    suspended until t + 90. When the no-shows in the 365 days ending on t reach 6 the suspension is
    t + 180; the stricter (later) end wins, over every trigger in the history.
    """
    dates = sorted(no_show_dates)
    until: date | None = None
    for i, trigger in enumerate(dates):
        preceding = dates[: i + 1]
        in_window = sum(
            1 for d in preceding if trigger - timedelta(days=params.no_show_window_days - 1) <= d <= trigger
        )
        in_year = sum(
            1
            for d in preceding
            if trigger - timedelta(days=params.escalation_window_days - 1) <= d <= trigger
        )
        end: date | None = None
        if in_year >= params.escalation_threshold:
            end = trigger + timedelta(days=params.escalation_suspension_days)
        elif in_window >= params.no_show_threshold:
            end = trigger + timedelta(days=params.suspension_days)
        if end is not None and (until is None or end > until):
            until = end
    return until


def cancellation_suspension_until(
    cancelled_at: Iterable[datetime], params: BookingParameters = DEFAULTS
) -> datetime | None:
    """B-14: 3 patient cancellations within 30 days → suspended for 30 days from the third."""
    times = sorted(cancelled_at)
    window = timedelta(days=params.cancel_abuse_window_days)
    n = params.cancel_abuse_threshold
    until: datetime | None = None
    for i in range(n - 1, len(times)):
        if times[i] - times[i - n + 1] <= window:
            end = times[i] + timedelta(days=params.cancel_abuse_suspension_days)
            if until is None or end > until:
                until = end
    return until


def suspended_until(
    now: datetime,
    no_show_dates: Iterable[date],
    patient_cancellations: Iterable[datetime],
    params: BookingParameters = DEFAULTS,
) -> datetime | None:
    """B-12 + B-14: the end of the suspension in force at ``now`` (aware), or ``None``."""
    candidates: list[datetime] = []
    by_no_show = no_show_suspension_until(no_show_dates, params)
    if by_no_show is not None:
        candidates.append(local_datetime(by_no_show, time(0, 0)))
    by_cancel = cancellation_suspension_until(patient_cancellations, params)
    if by_cancel is not None:
        candidates.append(by_cancel)
    active = [c for c in candidates if c > now]
    return max(active) if active else None


# --- Fees, pools, time segments ---------------------------------------------------------------------

_EXPERT_TITLES = frozenset({"chief_physician", "assoc_chief_physician"})


def fee_class_for_title(title: str | None, *, special: bool = False) -> str:
    """号别 by professional title: 主任/副主任医师 → 专家号, others (or a general clinic) → 普通号.
    特需号 is never derived from a title: the hospital designates it (``special=True``)."""
    if special:
        return SPECIAL
    return EXPERT if title in _EXPERT_TITLES else GENERAL


def reserved_counts(capacity: int, fee_class: str, params: BookingParameters = DEFAULTS) -> tuple[int, int]:
    """B-17: (referral, on-site) numbers held back from ``capacity``. The referral share is at least
    the ratio (rounded up; 50% for expert and special sessions); the on-site share comes next."""
    if capacity <= 0:
        return 0, 0
    ratio = params.referral_reserved_ratio if fee_class == GENERAL else params.expert_referral_reserved_ratio
    referral = min(capacity, math.ceil(capacity * ratio - 1e-9))
    onsite = min(capacity - referral, math.ceil(capacity * params.onsite_reserved_ratio - 1e-9))
    return referral, onsite


def spread_pools(capacity: int, referral: int, onsite: int) -> list[str]:
    """Assign a pool to each number 1..capacity, spreading the reserved ones evenly over the
    session so that every time segment keeps some public numbers (and some reserved ones)."""
    pools = [PUBLIC] * capacity

    def spread(count: int, candidates: list[int]) -> list[int]:
        n = len(candidates)
        return [candidates[(k * n) // count + (n // count) // 2] for k in range(count)] if count else []

    for i in spread(referral, list(range(capacity))):
        pools[i] = REFERRAL
    for i in spread(onsite, [i for i in range(capacity) if pools[i] == PUBLIC]):
        pools[i] = ONSITE
    return pools


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on ``day`` (the birthday counts)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def arrive_by(segment_start: datetime, early_minutes: int = 30) -> datetime:
    """B-19: the patient is told to arrive by segment start − 30 min."""
    return segment_start - timedelta(minutes=early_minutes)


# --- FHIR R4 status mappings (access.md §8) ---------------------------------------------------------

_FHIR_APPOINTMENT = {
    HELD: "pending",
    BOOKED: "booked",
    ARRIVED: "arrived",
    FULFILLED: "fulfilled",
    CANCELLED: "cancelled",
    NO_SHOW: "noshow",
    ENTERED_IN_ERROR: "entered-in-error",
}


def fhir_appointment_status(status: str) -> str:
    """F-Appointment: internal status → ``Appointment.status``."""
    return _FHIR_APPOINTMENT[status]


def fhir_slot_status(status: str, available_from: datetime | None, now: datetime) -> str:
    """F-Slot: free → busy-tentative (held) → busy (booked); a freed number in its re-release
    delay (B-9) and a stopped session's numbers are busy-unavailable."""
    if status == SLOT_FREE:
        return "busy-unavailable" if available_from is not None and available_from > now else "free"
    return {SLOT_HELD: "busy-tentative", SLOT_BOOKED: "busy", SLOT_UNAVAILABLE: "busy-unavailable"}[status]


def fhir_slot_tags(pool: str) -> list[str]:
    """F-Slot: reserved referral numbers carry ``reserved-for=referral`` and are hidden from $find."""
    return ["reserved-for=referral"] if pool == REFERRAL else []


def fhir_schedule_active(session_status: str) -> bool:
    """F-Schedule: a stopped session (停诊) is ``active = false``."""
    return session_status == "open"


def segments(start: datetime, end: datetime, minutes: int) -> Sequence[tuple[datetime, datetime]]:
    """B-19: split [start, end) into time segments of ``minutes`` (the last may be shorter)."""
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    step = timedelta(minutes=minutes)
    while cursor < end:
        out.append((cursor, min(cursor + step, end)))
        cursor += step
    return out
