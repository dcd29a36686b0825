"""Pure Q-rules (access.md §3): the Q-7 call selection and its dry run, Q-1, Q-2, Q-8, Q-10, Q-11."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from yilian.queueing import rules
from yilian.queueing.rules import NORMAL, PRIORITY, RECALL, RETURN, Entry, QueueState

TZ = ZoneInfo("Asia/Shanghai")
T8 = datetime(2026, 12, 3, 8, 0, tzinfo=TZ)
SEGMENTS = [(T8 + timedelta(minutes=30 * i), T8 + timedelta(minutes=30 * (i + 1))) for i in range(8)]


def normal(seq: int, *, segment: int = 0, late: bool = False, booked: bool = True, joined: int = 0) -> Entry:
    return Entry(
        id=seq,
        seq=seq,
        lane=NORMAL,
        segment_start=SEGMENTS[segment][0],
        late=late,
        booked=booked,
        signed_in_at=T8,
        calls_at_sign_in=joined,
    )


def seqs(order) -> list:
    return [e.seq for e in order]


def call(entries, state, params=rules.DEFAULTS, n=1):
    """Really call ``n`` patients: returns (called seqs, remaining entries, new state)."""
    called = []
    remaining = list(entries)
    for _ in range(n):
        chosen = rules.select_next(remaining, state, params)
        called.append(chosen.seq)
        remaining = [e for e in remaining if e.id != chosen.id]
        state = rules.after_call(state, chosen)
    return called, remaining, state


# --- Q-7 worked example and return lane (Q-5) ------------------------------------------------------


def test_worked_example_return_patient_after_two_normal_calls():
    """[Q1]: #13 in consultation, return patient #2 signs in → 14, 15, #2, 16, 17, (next return), 18."""
    state = QueueState(calls=13, normal_calls=tuple(range(1, 14)))  # 1..13 called, #13 with the doctor
    waiting = [normal(s) for s in range(14, 22)]
    ret2 = Entry(id=102, seq=2, lane=RETURN, signed_in_at=T8, calls_at_sign_in=13)
    ret5 = Entry(id=105, seq=5, lane=RETURN, signed_in_at=T8, calls_at_sign_in=13)
    order = rules.call_order([*waiting, ret2, ret5], state)
    assert seqs(order) == [14, 15, 2, 16, 17, 5, 18, 19, 20, 21]
    assert rules.select_next([*waiting, ret2, ret5], state).seq == 14


def test_return_gap_counts_from_the_return_patients_sign_in_not_from_old_calls():
    """`ref` is the later of the last return call and the sign-in: normal calls made before the
    return patient signed in do not let them jump ahead at once."""
    state = QueueState(calls=10, normal_calls=tuple(range(1, 11)))
    ret = Entry(id=100, seq=3, lane=RETURN, calls_at_sign_in=10)
    assert seqs(rules.call_order([normal(11), normal(12), normal(13), ret], state)) == [11, 12, 3, 13]


def test_return_gap_is_one_when_return_patients_outnumber_normal_ones():
    state = QueueState(calls=5, normal_calls=(1, 2, 3, 4, 5))
    returns = [Entry(id=100 + i, seq=i, lane=RETURN, calls_at_sign_in=5) for i in (1, 2, 3)]
    order = rules.call_order([normal(6), normal(7), *returns], state)
    # 3 return > 2 normal → gap 1: 6, R1; then 2 return > 1 normal → gap 1: 7, R2; then R3.
    assert seqs(order) == [6, 1, 7, 2, 3]


def test_return_lane_is_first_in_first_out():
    state = QueueState(calls=2, normal_calls=(1, 2))
    late_joiner = Entry(id=101, seq=1, lane=RETURN, calls_at_sign_in=2)
    early_joiner = Entry(id=109, seq=9, lane=RETURN, calls_at_sign_in=0)
    order = rules.call_order([late_joiner, early_joiner, *[normal(s) for s in range(3, 9)]], state)
    assert seqs(order).index(9) < seqs(order).index(1)


# --- Q-4 priority --------------------------------------------------------------------------------


def test_priority_front_goes_before_every_waiting_normal_patient_level_then_sign_in():
    elder = Entry(id=50, seq=50, lane=PRIORITY, priority_level=2, signed_in_at=T8 + timedelta(minutes=1))
    soldier = Entry(id=60, seq=60, lane=PRIORITY, priority_level=1, signed_in_at=T8 + timedelta(minutes=9))
    pregnant = Entry(id=40, seq=40, lane=PRIORITY, priority_level=2, signed_in_at=T8 + timedelta(minutes=5))
    order = rules.call_order([normal(1), normal(2), elder, soldier, pregnant], QueueState())
    assert seqs(order) == [60, 50, 40, 1, 2]


def test_priority_interleave_two_normal_then_one_priority():
    params = dataclasses.replace(rules.DEFAULTS, priority_mode=rules.MODE_INTERLEAVE)
    p1 = Entry(id=90, seq=90, lane=PRIORITY, priority_level=2, signed_in_at=T8)
    p2 = Entry(id=91, seq=91, lane=PRIORITY, priority_level=2, signed_in_at=T8 + timedelta(minutes=1))
    order = rules.call_order([*[normal(s) for s in range(1, 6)], p1, p2], QueueState(), params)
    assert seqs(order) == [1, 2, 90, 3, 4, 91, 5]


def test_priority_never_preempts_but_is_next_after_the_current_patient():
    """The patient with the doctor is not in the waiting list; priority is simply the next call."""
    state = QueueState(calls=1, normal_calls=(1,))
    prio = Entry(id=9, seq=9, lane=PRIORITY, priority_level=2, calls_at_sign_in=1)
    assert rules.select_next([normal(2), prio], state).seq == 9


# --- Q-2 normal order, late arrivals, walk-ins ----------------------------------------------------------


def test_late_arrival_goes_to_the_end_of_the_segment_containing_the_sign_in():
    own = SEGMENTS[0]
    signed = SEGMENTS[2][0] + timedelta(minutes=5)  # 9:05, own segment 8:00–8:30 long over
    start, late = rules.effective_segment(own, signed, SEGMENTS)
    assert (start, late) == (SEGMENTS[2][0], True)
    latecomer = dataclasses.replace(normal(1), segment_start=start, late=late)
    on_time = [normal(7, segment=2), normal(8, segment=2), normal(9, segment=3)]
    earlier = [normal(4, segment=1)]
    order = rules.call_order([latecomer, *on_time, *earlier], QueueState())
    assert seqs(order) == [4, 7, 8, 1, 9]


def test_on_time_within_own_segment_keeps_it():
    assert rules.effective_segment(SEGMENTS[1], SEGMENTS[0][0], SEGMENTS) == (SEGMENTS[1][0], False)
    assert rules.effective_segment(SEGMENTS[1], SEGMENTS[1][1] - timedelta(seconds=1), SEGMENTS) == (
        SEGMENTS[1][0],
        False,
    )


def test_booked_patients_precede_walk_ins_in_the_same_segment():
    walk_in = normal(3, booked=False)
    order = rules.call_order([walk_in, normal(5), normal(6)], QueueState())
    assert seqs(order) == [5, 6, 3]


def test_walk_in_takes_the_segment_of_its_sign_in_time():
    assert rules.effective_segment(None, SEGMENTS[3][0] + timedelta(minutes=1), SEGMENTS) == (
        SEGMENTS[3][0],
        False,
    )
    assert rules.effective_segment(None, T8 - timedelta(minutes=20), SEGMENTS) == (SEGMENTS[0][0], False)


# --- missed calls ------------------------------------------------------------------------------


def test_recalled_patient_waits_missed_gap_calls_after_re_sign_in():
    state = QueueState(calls=4, normal_calls=(1, 2, 3, 4))
    recall = Entry(id=100, seq=2, lane=RECALL, misses=1, calls_at_sign_in=4)
    order = rules.call_order([recall, *[normal(s) for s in range(5, 10)]], state)
    assert seqs(order) == [5, 6, 7, 2, 8, 9]


def test_missed_gap_counts_every_call_not_only_normal_ones():
    state = QueueState(calls=4)
    recall = Entry(id=100, seq=2, lane=RECALL, misses=1, calls_at_sign_in=4)
    prio = Entry(id=70, seq=70, lane=PRIORITY, priority_level=1, calls_at_sign_in=4)
    order = rules.call_order([recall, prio, *[normal(s) for s in range(5, 9)]], state)
    assert seqs(order) == [70, 5, 6, 2, 7, 8]


def test_after_miss_three_the_patient_goes_after_everyone_waiting_then_but_not_after_new_arrivals():
    waiting_then = [normal(s) for s in range(5, 10)]
    recall = Entry(
        id=100,
        seq=2,
        lane=RECALL,
        misses=3,
        calls_at_sign_in=4,
        wait_for=frozenset(e.id for e in waiting_then),
    )
    newcomers = [normal(s, segment=5) for s in (20, 21)]
    later_priority = Entry(id=80, seq=80, lane=PRIORITY, priority_level=2, calls_at_sign_in=6)
    order = rules.call_order([recall, *waiting_then, *newcomers, later_priority], QueueState(calls=4))
    assert seqs(order) == [80, 5, 6, 7, 8, 9, 2, 20, 21]


def test_miss_outcomes_requeue_then_tail_then_void():
    assert [rules.miss_outcome(n) for n in (1, 2, 3, 4)] == [
        rules.MISS_REQUEUE,
        rules.MISS_REQUEUE,
        rules.MISS_TAIL,
        rules.MISS_VOID,
    ]


def test_gaps_are_waived_when_nobody_else_waits():
    recall = Entry(id=100, seq=2, lane=RECALL, misses=1, calls_at_sign_in=9)
    ret = Entry(id=101, seq=3, lane=RETURN, calls_at_sign_in=9)
    assert seqs(rules.call_order([recall, ret], QueueState(calls=9))) == [3, 2]


def test_call_order_is_deterministic_regardless_of_input_order():
    entries = [normal(s, segment=s % 3) for s in range(1, 12)] + [
        Entry(id=100, seq=4, lane=RETURN, calls_at_sign_in=0),
        Entry(id=101, seq=6, lane=RECALL, misses=1, calls_at_sign_in=0),
    ]
    first = seqs(rules.call_order(entries, QueueState()))
    assert first == seqs(rules.call_order(list(reversed(entries)), QueueState()))
    assert sorted(first) == sorted(e.seq for e in entries)


def test_live_calls_follow_the_dry_run():
    entries = [normal(s) for s in range(14, 20)] + [Entry(id=102, seq=2, lane=RETURN, calls_at_sign_in=13)]
    state = QueueState(calls=13)
    predicted = seqs(rules.call_order(entries, state))
    called, _rest, _state = call(entries, state, n=len(entries))
    assert called == predicted


# --- Q-1 sign-in window -----------------------------------------------------------------------------------


def test_sign_in_window_too_early_open_and_closed():
    seg, end = SEGMENTS[2][0], SEGMENTS[-1][1]
    assert rules.signin_status(seg - timedelta(minutes=31), seg, end) == rules.SIGNIN_TOO_EARLY
    assert rules.signin_status(seg - timedelta(minutes=30), seg, end) == rules.SIGNIN_OK
    assert rules.signin_status(end - timedelta(seconds=1), seg, end) == rules.SIGNIN_OK
    assert rules.signin_status(end, seg, end) == rules.SIGNIN_CLOSED


# --- Q-5 return window ------------------------------------------------------------------------------------


def test_return_window_includes_the_visit_day_and_ends_after_three_days():
    visit = date(2026, 12, 1)
    assert rules.return_window_open(visit, date(2026, 12, 1))
    assert rules.return_window_open(visit, date(2026, 12, 3))
    assert not rules.return_window_open(visit, date(2026, 12, 4))


# --- priority and screens ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "visit", "expected"),
    [
        (date(1946, 12, 3), date(2026, 12, 3), True),  # the 80th birthday counts
        (date(1946, 12, 4), date(2026, 12, 3), False),  # one day short
        (date(1930, 1, 1), date(2026, 12, 3), True),
        (date(1946, 2, 28), date(2026, 2, 28), True),
    ],
)
def test_age_priority_on_the_visit_date(birth, visit, expected):
    assert rules.age_priority(birth, visit) is expected


def test_priority_levels_and_tags():
    assert rules.priority_level(rules.EVIDENCE_MILITARY) == 1
    assert rules.priority_level(rules.EVIDENCE_PREGNANCY) == 2
    tags = [rules.priority_tag(k) for k in rules.PRIORITY_KINDS]
    assert tags == ["军", "军", "老", "残", "孕"]
    assert not rules.needs_certificate(rules.EVIDENCE_AGE)
    assert rules.needs_certificate(rules.EVIDENCE_DISABILITY)


@pytest.mark.parametrize(("name", "masked"), [("李四", "李*"), ("张三丰", "张*丰"), ("欧阳娜娜", "欧**娜")])
def test_screen_names_are_masked(name, masked):
    assert rules.mask_name(name) == masked


def test_voice_text_call_precall_and_privacy():
    assert rules.call_text(15, "张三丰", "3诊室") == "请15号张三丰到3诊室就诊"
    assert rules.call_text(15, "张三丰", "3诊室", privacy=True) == "请15号到3诊室就诊"
    assert rules.precall_text(16, "李四") == "请16号李四准备"
    assert rules.precall_text(16, "李四", privacy=True) == "请16号准备"


def test_estimated_wait_uses_default_until_there_is_data():
    assert rules.estimated_wait_minutes(3, []) == 24
    assert rules.estimated_wait_minutes(3, [5.0, 7.0]) == 18
    assert rules.estimated_wait_minutes(0, [5.0]) == 0


def test_transitions_forbid_calling_a_voided_ticket():
    assert not rules.can_transition(rules.VOIDED, rules.WAITING)
    assert rules.can_transition(rules.MISSED, rules.WAITING)


def test_after_miss_three_a_waiter_who_was_called_and_came_back_no_longer_holds_the_patient():
    target = Entry(id=100, seq=2, lane=RECALL, misses=3, calls_at_sign_in=4, wait_for=frozenset({5}))
    back_again = Entry(id=5, seq=5, lane=RECALL, misses=1, calls_at_sign_in=6)  # called at 5, missed, back
    order = rules.call_order([target, back_again, normal(7), normal(8), normal(9)], QueueState(calls=7))
    assert seqs(order)[:2] == [2, 7]
