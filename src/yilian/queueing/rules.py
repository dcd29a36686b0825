"""Triage and queue calling (分诊叫号): the pure rules of access.md §3, Q-1..Q-11.

No database and no clock: services pass in what they read. The heart is ``call_order``, the
deterministic Q-7 selection run as a dry run over the waiting patients; its head is what 下一个
calls (``select_next``) and the whole list is the predicted order the screens show.

Counting is done in *call ordinals* rather than clock times: a queue numbers its calls 1, 2, 3 …
(``QueueState.calls`` is the number made so far) and every entry remembers how many calls the
queue had made when it (re-)signed in (``Entry.calls_at_sign_in``). "Patients called since X" is
then a difference of integers, identical in the live queue and in the dry run.

Decisions where the text leaves room (each marked [DECISION] in the docstrings below):
* "normal patients called" (Q-7 step 3) counts calls made from the NORMAL lane only;
* a missed priority patient re-enters in the RECALL lane like everybody else (Q-8);
* after miss 3 the patient also waits MISSED_GAP calls (Q-8 adds the "everyone waiting" bound);
* in ``interleave`` mode a priority patient is called after 2 normal calls counted since the later
  of the last priority call and the earliest waiting priority patient's sign-in (as Q-7 step 3
  does for return patients), or at once when no normal patient is waiting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

# Lanes.
NORMAL = "normal"
PRIORITY = "priority"
RETURN = "return"
RECALL = "recall"
LANES = (NORMAL, PRIORITY, RETURN, RECALL)

# Ticket states.
WAITING = "waiting"
CALLED = "called"
IN_CONSULTATION = "in_consultation"
MISSED = "missed"
SENT_FOR_EXAMS = "sent_for_exams"
DONE = "done"
VOIDED = "voided"
LEFT = "left"
STATES = (WAITING, CALLED, IN_CONSULTATION, MISSED, SENT_FOR_EXAMS, DONE, VOIDED, LEFT)
WITH_DOCTOR = (CALLED, IN_CONSULTATION)

# State machine of a ticket. Keys are (from) → allowed (to).
TRANSITIONS: dict[str, frozenset[str]] = {
    WAITING: frozenset({CALLED, LEFT}),
    CALLED: frozenset({IN_CONSULTATION, MISSED, SENT_FOR_EXAMS, DONE, WAITING}),
    IN_CONSULTATION: frozenset({SENT_FOR_EXAMS, DONE, WAITING}),
    MISSED: frozenset({WAITING, VOIDED, LEFT}),
    SENT_FOR_EXAMS: frozenset({WAITING, DONE, LEFT}),
    DONE: frozenset({WAITING}),  # 回诊 within the same session
    VOIDED: frozenset(),
    LEFT: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


# Priority (Q-3, Q-10; §0 PRIORITY_LEVELS). Evidence kinds as recorded by the triage nurse.
EVIDENCE_MILITARY = "military"  # 军人证 (active serviceman)
EVIDENCE_FIREFIGHTER = "firefighter"  # 消防救援证
EVIDENCE_AGE = "age"  # computed from the ID / birth date: no certificate needed
EVIDENCE_DISABILITY = "disability"  # 残疾人证
EVIDENCE_PREGNANCY = "pregnancy"  # 母子健康手册 / 孕检单
PRIORITY_KINDS = (
    EVIDENCE_MILITARY,
    EVIDENCE_FIREFIGHTER,
    EVIDENCE_AGE,
    EVIDENCE_DISABILITY,
    EVIDENCE_PREGNANCY,
)
PRIORITY_LEVEL = {
    EVIDENCE_MILITARY: 1,
    EVIDENCE_FIREFIGHTER: 1,
    EVIDENCE_AGE: 2,
    EVIDENCE_DISABILITY: 2,
    EVIDENCE_PREGNANCY: 2,
}
PRIORITY_TAG = {  # Q-10 screen tags
    EVIDENCE_MILITARY: "军",
    EVIDENCE_FIREFIGHTER: "军",
    EVIDENCE_AGE: "老",
    EVIDENCE_DISABILITY: "残",
    EVIDENCE_PREGNANCY: "孕",
}
NEEDS_CERTIFICATE = frozenset(PRIORITY_KINDS) - {EVIDENCE_AGE}

MODE_FRONT = "front"
MODE_INTERLEAVE = "interleave"
PRIORITY_MODES = (MODE_FRONT, MODE_INTERLEAVE)


@dataclass(frozen=True)
class QueueParameters:
    """The §0 defaults that govern a queue."""

    signin_early_min: int = 30  # SIGNIN_EARLY_MIN
    priority_age: int = 80  # PRIORITY_AGE
    priority_mode: str = MODE_FRONT
    interleave_normal: int = 2  # Q-4 `interleave`: 2 normal + 1 priority
    return_gap: int = 2  # RETURN_GAP
    return_free_days: int = 3  # RETURN_FREE_DAYS (including the visit day)
    missed_gap: int = 3  # MISSED_GAP
    max_misses: int = 4  # MAX_MISSES: miss 3 → tail, miss 4 → void
    room_screen_next: int = 2  # ROOM_SCREEN_NEXT
    zone_screen_waiting: int = 5  # ZONE_SCREEN_WAITING
    call_repeat: int = 2  # CALL_REPEAT
    voice_privacy: bool = False  # VOICE_PRIVACY
    default_consult_minutes: float = 8.0  # estimated wait until there is data [DECISION]


DEFAULTS = QueueParameters()


@dataclass(frozen=True)
class Entry:
    """One waiting ticket as the call algorithm sees it.

    ``segment_start`` is the *effective* segment (Q-2) fixed at sign-in; ``calls_at_sign_in`` the
    queue's call count when the patient (re-)joined a lane; ``wait_for`` the tickets that were
    waiting when a patient re-signed in after miss 3 (Q-8).
    """

    id: int
    seq: int
    lane: str = NORMAL
    segment_start: datetime | None = None
    late: bool = False
    booked: bool = True
    signed_in_at: datetime | None = None
    calls_at_sign_in: int = 0
    priority_level: int = 0
    misses: int = 0
    wait_for: frozenset[int] = frozenset()


@dataclass(frozen=True)
class QueueState:
    """What Q-7 needs to know about the calls already made.

    ``calls``: calls made so far (the ordinal of the last call); ``normal_calls``: the ordinals of
    the calls made from the NORMAL lane; ``last_return_call`` / ``last_priority_call``: the ordinal
    of the last RETURN / PRIORITY call (0 = none).
    """

    calls: int = 0
    normal_calls: tuple[int, ...] = ()
    last_return_call: int = 0
    last_priority_call: int = 0


# --- Q-1 sign-in window ------------------------------------------------------------------------------

SIGNIN_OK = "ok"
SIGNIN_TOO_EARLY = "too_early"
SIGNIN_CLOSED = "closed"


def signin_window(
    segment_start: datetime, session_end: datetime, params: QueueParameters = DEFAULTS
) -> tuple[datetime, datetime]:
    """Q-1: sign-in opens SIGNIN_EARLY_MIN before the patient's segment and closes at session end
    (SIGNIN_CLOSE)."""
    return segment_start - timedelta(minutes=params.signin_early_min), session_end


def signin_status(
    at: datetime, segment_start: datetime, session_end: datetime, params: QueueParameters = DEFAULTS
) -> str:
    opens, closes = signin_window(segment_start, session_end, params)
    if at < opens:
        return SIGNIN_TOO_EARLY
    if at >= closes:
        return SIGNIN_CLOSED
    return SIGNIN_OK


# --- Q-2 effective segment -----------------------------------------------------------------------------


def effective_segment(
    own: tuple[datetime, datetime] | None,
    signed_in_at: datetime,
    segments: Sequence[tuple[datetime, datetime]],
) -> tuple[datetime, bool]:
    """Q-2: (effective segment start, late flag).

    A booked patient keeps their own segment unless they sign in after it ended; then the segment
    containing the sign-in time is used and the patient is *late* (after that segment's on-time
    patients, 子时间段最后). A walk-in (``own`` None) takes the segment containing the sign-in
    time, or the first segment when they sign in before the session starts; never late.
    """
    ordered = sorted(segments)

    def containing() -> datetime:
        if not ordered:
            return signed_in_at
        if signed_in_at < ordered[0][0]:
            return ordered[0][0]
        for start, end in ordered:
            if start <= signed_in_at < end:
                return start
        # Between segments (a gap) → the next one; after the last → the last one.
        for start, _end in ordered:
            if start > signed_in_at:
                return start
        return ordered[-1][0]

    if own is None:
        return containing(), False
    start, end = own
    if signed_in_at < end:
        return start, False
    return containing(), True


def normal_sort_key(entry: Entry) -> tuple:
    """Q-2: (effective segment start, late flag, booked before walk-in, sequence number)."""
    return (
        entry.segment_start or datetime.min,
        entry.late,
        not entry.booked,
        entry.seq,
        entry.id,
    )


def _signin_key(entry: Entry) -> tuple:
    return (entry.calls_at_sign_in, entry.signed_in_at or datetime.min, entry.seq, entry.id)


def priority_sort_key(entry: Entry) -> tuple:
    """Q-4: among priority patients, level first, then sign-in time."""
    return (entry.priority_level, entry.signed_in_at or datetime.min, entry.seq, entry.id)


# --- Q-7 call selection ------------------------------------------------------------------------------


@dataclass
class _Sim:
    state: QueueState
    waiting: dict[int, Entry] = field(default_factory=dict)

    def normal_since(self, ref: int) -> int:
        return sum(1 for ordinal in self.state.normal_calls if ordinal > ref)


def _recall_eligible(entry: Entry, sim: _Sim, params: QueueParameters) -> bool:
    """Q-7 step 2 and Q-8: MISSED_GAP calls since re-sign-in; after miss 3 also everyone who was
    waiting then must have been called or have left."""
    if sim.state.calls - entry.calls_at_sign_in < params.missed_gap:
        return False
    # Someone who was waiting then and has since been called, missed and re-signed in has "been
    # called": they joined again later (a larger ``calls_at_sign_in``) and no longer hold the
    # patient back.
    for other_id in entry.wait_for:
        other = sim.waiting.get(other_id)
        if other is not None and other.calls_at_sign_in <= entry.calls_at_sign_in:
            return False
    return True


def _pick(sim: _Sim, params: QueueParameters) -> Entry | None:
    lanes: dict[str, list[Entry]] = {lane: [] for lane in LANES}
    for entry in sim.waiting.values():
        lanes[entry.lane].append(entry)
    if not sim.waiting:
        return None
    normal = sorted(lanes[NORMAL], key=normal_sort_key)
    priority = sorted(lanes[PRIORITY], key=priority_sort_key)
    returns = sorted(lanes[RETURN], key=_signin_key)
    recalls = sorted(lanes[RECALL], key=_signin_key)

    # Step 1: priority (mode `front`: always; `interleave`: after N normal calls).
    if priority:
        if params.priority_mode != MODE_INTERLEAVE or not normal:
            return priority[0]
        ref = max(sim.state.last_priority_call, min(e.calls_at_sign_in for e in priority))
        if sim.normal_since(ref) >= params.interleave_normal:
            return priority[0]
    # Step 2: a re-signed-in missed patient whose gap has passed.
    for entry in recalls:
        if _recall_eligible(entry, sim, params):
            return entry
    # Step 3: the return lane after `gap` normal calls since `ref`.
    if returns:
        gap = 1 if len(returns) > len(normal) else params.return_gap
        ref = max(sim.state.last_return_call, returns[0].calls_at_sign_in)
        if sim.normal_since(ref) >= gap:
            return returns[0]
    # Step 4: the normal lane.
    if normal:
        return normal[0]
    # Step 5: nobody else is waiting: gaps are waived.
    if priority:
        return priority[0]
    if returns:
        return returns[0]
    if recalls:
        return recalls[0]
    return None


def after_call(state: QueueState, entry: Entry) -> QueueState:
    """The queue state after ``entry`` has been called (what the service persists, too)."""
    ordinal = state.calls + 1
    return dataclasses.replace(
        state,
        calls=ordinal,
        normal_calls=state.normal_calls + ((ordinal,) if entry.lane == NORMAL else ()),
        last_return_call=ordinal if entry.lane == RETURN else state.last_return_call,
        last_priority_call=ordinal if entry.lane == PRIORITY else state.last_priority_call,
    )


def call_order(
    entries: Iterable[Entry], state: QueueState, params: QueueParameters = DEFAULTS
) -> list[Entry]:
    """Q-7 as a dry run: the full predicted call order of the waiting ``entries`` (the display
    order), assuming nobody new signs in and everybody called attends."""
    sim = _Sim(state=state, waiting={e.id: e for e in entries})
    order: list[Entry] = []
    while sim.waiting:
        chosen = _pick(sim, params)
        if chosen is None:  # pragma: no cover - _pick always finds someone while anyone waits
            break
        order.append(chosen)
        del sim.waiting[chosen.id]
        sim.state = after_call(sim.state, chosen)
    return order


def select_next(
    entries: Iterable[Entry], state: QueueState, params: QueueParameters = DEFAULTS
) -> Entry | None:
    """Q-7: the patient 下一个 calls now (the head of ``call_order``)."""
    sim = _Sim(state=state, waiting={e.id: e for e in entries})
    return _pick(sim, params)


# --- Q-8 miss escalation -------------------------------------------------------------------------------

MISS_REQUEUE = "requeue"  # misses 1–2: back step 2 after MISSED_GAP
MISS_TAIL = "tail"  # miss 3: after everyone waiting at re-sign-in
MISS_VOID = "void"  # miss 4: ticket voided, appointment NO_SHOW


def miss_outcome(misses: int, params: QueueParameters = DEFAULTS) -> str:
    """Q-8: what the ``misses``-th miss means."""
    if misses >= params.max_misses:
        return MISS_VOID
    if misses == params.max_misses - 1:
        return MISS_TAIL
    return MISS_REQUEUE


# --- Q-5 return window ------------------------------------------------------------------------------


def return_window_open(visit_date: date, today: date, params: QueueParameters = DEFAULTS) -> bool:
    """Q-5: a return with results is free within RETURN_FREE_DAYS including the visit day
    (visit Monday, default 3 → until Wednesday)."""
    return visit_date <= today < visit_date + timedelta(days=params.return_free_days)


# --- priority ------------------------------------------------------------------------------


def age_on(birth_date: date, day: date) -> int:
    """Age in full years on ``day``; the birthday itself counts (born 1946-12-03 → 80 on
    2026-12-03). A 29 February birthday is reached on 1 March in common years."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def age_priority(birth_date: date | None, visit_date: date, params: QueueParameters = DEFAULTS) -> bool:
    """Q-3 / PRIORITY_AGE: priority by age, computed on the visit date."""
    return birth_date is not None and age_on(birth_date, visit_date) >= params.priority_age


def priority_level(kind: str) -> int:
    return PRIORITY_LEVEL.get(kind, 0)


def priority_tag(kind: str) -> str:
    return PRIORITY_TAG.get(kind, "")


def needs_certificate(kind: str) -> bool:
    """Q-3: every priority needs the nurse to record a certificate, except age."""
    return kind in NEEDS_CERTIFICATE


# --- screens and voice -----------------------------------------------------------------------


def mask_name(value: str | None) -> str:
    """Q-10: 李四 → 李*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜 (same as ``common.masking.mask_name``,
    repeated here so that this module stays free of imports)."""
    if not value:
        return ""
    if len(value) == 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def call_text(seq: int, name: str, room: str, *, privacy: bool = False) -> str:
    """Q-11 call: ``请{seq}号{name}到{room}就诊``; with VOICE_PRIVACY the name is left out."""
    if privacy or not name:
        return f"请{seq}号到{room}就诊"
    return f"请{seq}号{name}到{room}就诊"


def precall_text(seq: int, name: str, *, privacy: bool = False) -> str:
    """Q-11 pre-call, when a patient becomes first in the predicted order: ``请{seq}号{name}准备``."""
    if privacy or not name:
        return f"请{seq}号准备"
    return f"请{seq}号{name}准备"


# --- estimated wait ----------------------------------------------------------------------------------


def estimated_wait_minutes(
    position: int, recent_consult_minutes: Sequence[float], params: QueueParameters = DEFAULTS
) -> int:
    """Estimated wait = patients ahead × rolling mean consultation time (DEFAULT until data)
    [DECISION]; rounded up to whole minutes."""
    import math

    if position <= 0:
        return 0
    sample = [m for m in recent_consult_minutes if m > 0]
    mean = sum(sample) / len(sample) if sample else params.default_consult_minutes
    return math.ceil(position * mean)
