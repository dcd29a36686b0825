"""Queue services (access.md Q-1..Q-12, B-2) on a real database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests import factories as f
from tests.queueing.conftest import DAY, at
from yilian.accounts.selectors import actor_for_user
from yilian.common.errors import PermissionDenied
from yilian.patients import card
from yilian.queueing import errors, rules, selectors, services
from yilian.queueing.models import Queue, QueueEntry, QueueEvent
from yilian.scheduling.models import Appointment

pytestmark = pytest.mark.django_db


def queue_of(clinic) -> Queue:
    return Queue.objects.get(session=clinic.session)


def order_seqs(clinic) -> list[int]:
    return [e.seq for e in services.predicted_order(queue_of(clinic))]


def signed_in(clinic, n: int, when=None) -> list[QueueEntry]:
    entries = []
    for i in range(n):
        _b, appointment = clinic.book(name=f"患者{i:02d}号")
        opens = appointment.slot.starts_at - timedelta(minutes=30)
        entries.append(clinic.sign_in(appointment, max(when or at(8, 0), opens)).entry)
    return entries


def call(clinic, when=None) -> QueueEntry | None:
    return services.call_next(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=when or at(9, 0))


def test_check_in_returns_ticket_with_position_and_wait(clinic):
    signed_in(clinic, 2)
    _b, appointment = clinic.book(name="张三丰")
    ticket = clinic.sign_in(appointment)
    assert ticket.created
    assert ticket.entry.state == rules.WAITING
    assert ticket.ahead == 2
    assert ticket.wait_minutes == 16  # 2 × the default 8 minutes
    again = clinic.sign_in(appointment)
    assert not again.created and again.entry.pk == ticket.entry.pk
    assert QueueEvent.objects.filter(kind=QueueEvent.Kind.SIGNED_IN).count() == 3


def test_sign_in_too_early_is_refused(clinic):
    _b, appointment = clinic.book()
    with pytest.raises(errors.TooEarly) as exc:
        clinic.sign_in(appointment, at(7, 29))
    assert exc.value.status == 422 and "opens_at" in exc.value.as_dict()
    assert not QueueEntry.objects.exists()
    assert clinic.sign_in(appointment, at(7, 30)).created


def test_sign_in_after_session_end_is_closed_and_the_refusal_is_kept(clinic, monkeypatch):
    marked = []
    monkeypatch.setattr(
        services.scheduling_services,
        "mark_no_show",
        lambda **kw: marked.append(kw),
        raising=False,
    )
    _b, appointment = clinic.book()
    with pytest.raises(errors.SigninClosed):
        clinic.sign_in(appointment, at(12, 0))
    assert not QueueEntry.objects.exists()
    assert marked and marked[0]["appointment_id"] == appointment.pk  # B-11 handed to scheduling


def test_card_of_another_patient_is_refused_and_booking_unchanged(clinic):
    _b, appointment = clinic.book(name="张三丰")
    stranger = f.make_patient(clinic.org, name="李四")
    token = card.make_token(f.issue_card(stranger))
    with pytest.raises(errors.IdentityMismatch) as exc:
        services.check_in(actor=clinic.nurse_actor, token=token, appointment_id=appointment.pk, at=at(8, 0))
    assert exc.value.status == 403
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    assert not QueueEntry.objects.exists()


def test_card_scan_finds_todays_appointment(clinic):
    booker, appointment = clinic.book(name="张三丰")
    token = card.make_token(f.issue_card(booker.patient))
    ticket = services.check_in(actor=clinic.nurse_actor, token=token, at=at(8, 0))
    assert ticket.entry.appointment_id == appointment.pk


def test_patient_signs_in_own_appointment_but_not_anothers(clinic):
    booker, appointment = clinic.book()
    _other, other_appointment = clinic.book(name="王五")
    assert services.check_in(actor=booker.actor, appointment_id=appointment.pk, at=at(8, 0)).created
    from yilian.common.errors import NotFound

    with pytest.raises(NotFound):
        services.check_in(actor=booker.actor, appointment_id=other_appointment.pk, at=at(8, 0))


def test_elderly_patient_gets_age_priority_at_sign_in_birthday_counts(clinic):
    signed_in(clinic, 2)
    _b, appointment = clinic.book(name="赵老汉", birth=DAY.replace(year=DAY.year - 80))
    entry = clinic.sign_in(appointment).entry
    assert entry.lane == rules.PRIORITY and entry.priority_tag == "老"
    assert order_seqs(clinic)[0] == entry.seq


def test_nurse_sets_priority_with_evidence_and_it_goes_first(clinic):
    a, b, c = signed_in(clinic, 3)
    with pytest.raises(errors.EvidenceRequired):
        services.set_priority(actor=clinic.nurse_actor, entry_id=c.pk, evidence=rules.EVIDENCE_MILITARY)
    services.set_priority(
        actor=clinic.nurse_actor, entry_id=c.pk, evidence=rules.EVIDENCE_MILITARY, certificate="军字第123号"
    )
    assert order_seqs(clinic) == [c.seq, a.seq, b.seq]
    assert QueueEvent.objects.filter(kind=QueueEvent.Kind.PRIORITY_SET, entry=c).exists()


def test_age_priority_without_certificate_only_when_old_enough(clinic):
    (a,) = signed_in(clinic, 1)
    with pytest.raises(Exception) as exc:
        services.set_priority(actor=clinic.nurse_actor, entry_id=a.pk, evidence=rules.EVIDENCE_AGE)
    assert exc.value.code == "INVALID_INPUT"


def test_patient_and_doctor_cannot_set_priority(clinic):
    (a,) = signed_in(clinic, 1)
    patient_actor = clinic.patients[0].actor
    with pytest.raises(PermissionDenied):
        services.set_priority(
            actor=patient_actor, entry_id=a.pk, evidence=rules.EVIDENCE_PREGNANCY, certificate="x"
        )
    with pytest.raises(PermissionDenied):
        services.set_priority(
            actor=clinic.doctor_actor, entry_id=a.pk, evidence=rules.EVIDENCE_PREGNANCY, certificate="x"
        )


def test_call_next_follows_the_predicted_order_and_finishes_the_previous(clinic):
    a, b, _c = signed_in(clinic, 3)
    first = call(clinic)
    assert first.pk == a.pk and first.state == rules.CALLED
    event = QueueEvent.objects.filter(kind=QueueEvent.Kind.CALLED).latest("id")
    assert event.text == f"请{a.seq}号患者00号到3诊室就诊"
    assert event.detail["precall"] == f"请{b.seq}号患者01号准备"
    second = call(clinic)
    assert second.pk == b.pk
    a.refresh_from_db()
    assert a.state == rules.DONE


def test_voice_privacy_leaves_the_name_out(clinic):
    signed_in(clinic, 1)
    Queue.objects.filter(pk=queue_of(clinic).pk).update(voice_privacy=True)
    entry = call(clinic)
    assert QueueEvent.objects.get(kind=QueueEvent.Kind.CALLED).text == f"请{entry.seq}号到3诊室就诊"


def test_missed_patient_re_signed_in_waits_missed_gap_calls(clinic):
    entries = signed_in(clinic, 7)
    first = call(clinic)
    services.mark_missed(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 1))
    first.refresh_from_db()
    assert first.state == rules.MISSED and first.misses == 1
    assert first.seq not in order_seqs(clinic)
    services.re_sign_in(actor=clinic.nurse_actor, entry_id=first.pk, at=at(9, 2))
    rest = [e.seq for e in entries[1:]]
    assert order_seqs(clinic) == [*rest[:3], first.seq, *rest[3:]]
    called = [call(clinic).seq for _ in range(4)]
    assert called == [*rest[:3], first.seq]


def _miss(clinic, entry, misses: int):
    """Call ``entry`` (alone) and miss it ``misses`` times, re-signing in between."""
    for i in range(misses):
        while True:
            called = call(clinic)
            if called.pk == entry.pk:
                break
            services.finish(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 5))
        services.mark_missed(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 6))
        if i < misses - 1:
            services.re_sign_in(actor=clinic.nurse_actor, entry_id=entry.pk, at=at(9, 7))


def test_third_miss_goes_after_everyone_waiting_and_fourth_voids(clinic, monkeypatch):
    marked = []
    monkeypatch.setattr(
        services.scheduling_services, "mark_no_show", lambda **kw: marked.append(kw), raising=False
    )
    (target,) = signed_in(clinic, 1)
    _miss(clinic, target, 3)
    target.refresh_from_db()
    assert target.misses == 3 and target.state == rules.MISSED
    booked = [clinic.book(name=f"后来{i}")[1] for i in range(8)]  # numbers 2–9
    waiting = [clinic.sign_in(a, at(9, 10)).entry for a in booked[:5]]
    services.re_sign_in(actor=clinic.nurse_actor, entry_id=target.pk, at=at(9, 11))
    order = order_seqs(clinic)
    assert order[-1] == target.seq
    assert set(order[:-1]) == {e.seq for e in waiting}
    # A later normal arrival (a later time segment) does not push the patient back.
    newcomer = clinic.sign_in(booked[7], at(9, 40)).entry
    assert order_seqs(clinic)[-2:] == [target.seq, newcomer.seq]
    # Miss 4 voids the ticket; re-sign-in is refused.
    for _ in range(6):
        services.call_next(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 20))
    current = Queue.objects.get(pk=queue_of(clinic).pk).current
    assert current.pk == target.pk
    services.mark_missed(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 30))
    target.refresh_from_db()
    assert target.state == rules.VOIDED and target.misses == 4
    assert marked[0]["reason"] == "oth-missed-call"
    with pytest.raises(errors.TicketVoided):
        services.re_sign_in(actor=clinic.nurse_actor, entry_id=target.pk, at=at(9, 31))


def test_return_with_results_worked_example(clinic):
    """#13 with the doctor, return patient #2 signs in → 14, 15, #2, 16, 17 (Q-7 step 3)."""
    entries = signed_in(clinic, 18)
    seq_of = {e.seq: e for e in entries}
    # Call 1 and 2, send #2 for exams (lane RETURN on the way back); then call up to #13.
    call(clinic)
    second = call(clinic)
    services.send_for_exams(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 5))
    for _ in range(11):
        call(clinic)
    assert Queue.objects.get(pk=queue_of(clinic).pk).current.seq == 13
    ticket = services.return_with_results(actor=clinic.nurse_actor, entry_id=second.pk, at=at(9, 40))
    assert ticket.entry.lane == rules.RETURN
    assert order_seqs(clinic)[:5] == [14, 15, second.seq, 16, 17]
    assert [call(clinic).seq for _ in range(5)] == [14, 15, 2, 16, 17]
    assert seq_of[2].pk == second.pk


def test_return_window_expired_after_three_days(clinic, community):

    (entry,) = signed_in(clinic, 1)
    call(clinic)
    services.send_for_exams(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 5))
    later_day = DAY + timedelta(days=3)
    with pytest.raises(errors.ReturnWindowExpired):
        services.return_with_results(actor=clinic.nurse_actor, entry_id=entry.pk, at=at(9, 0, later_day))


def test_late_arrival_is_placed_after_on_time_patients_of_its_segment(clinic):
    _b, early_appt = clinic.book(name="迟到者")  # seq 1, segment 8:00–9:00
    others = [clinic.book(name=f"准时{i}")[1] for i in range(5)]  # seq 2–4 at 8:00, 5–6 at 9:00
    for appt in others:
        clinic.sign_in(appt, at(8, 30))
    late = clinic.sign_in(early_appt, at(9, 10)).entry
    assert late.late and late.segment_start == at(9, 0)
    assert order_seqs(clinic) == [2, 3, 4, 5, 6, 1]


def test_board_masks_names_and_shows_missed_and_last_call(clinic):
    _b, a1 = clinic.book(name="张三丰")
    _b, a2 = clinic.book(name="欧阳娜娜")
    _b, a3 = clinic.book(name="李四")
    for appt in (a1, a2, a3):
        clinic.sign_in(appt)
    call(clinic)
    services.mark_missed(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 1))
    call(clinic)
    data = selectors.board(queue_of(clinic))
    assert data["current"]["name"] == "欧**娜"
    assert [r["name"] for r in data["next"]] == ["李*"]
    assert [r["name"] for r in data["missed"]] == ["张*丰"]
    assert data["last_call"]["text"] == "请2号欧阳娜娜到3诊室就诊"
    assert data["last_call"]["repeat"] == 2
    assert "张三丰" not in str({k: v for k, v in data.items() if k != "last_call"})


def test_transfer_keeps_the_position_key(clinic, community):
    from tests.scheduling import factories as sf

    other_doctor = sf.make_doctor(clinic.org, clinic.department, name="周医生")
    other_session = sf.make_session(clinic.org, department=clinic.department, doctor=other_doctor)
    target = services.open_queue(actor=clinic.nurse_actor, session_id=other_session.pk)
    a, b = signed_in(clinic, 2)
    ticket = services.transfer(actor=clinic.nurse_actor, entry_id=b.pk, to_queue_id=target.pk, at=at(8, 30))
    assert ticket.entry.queue_id == target.pk and ticket.entry.seq == b.seq
    assert order_seqs(clinic) == [a.seq]


def test_other_doctor_cannot_call_this_queue(clinic):
    from tests.scheduling import factories as sf

    signed_in(clinic, 1)
    stranger = actor_for_user(sf.make_doctor(clinic.org, clinic.department, name="钱医生").user)
    with pytest.raises(PermissionDenied):
        services.call_next(actor=stranger, queue_id=queue_of(clinic).pk, at=at(9, 0))


def test_ticket_for_patient_shows_ahead_and_wait(clinic):
    signed_in(clinic, 3)
    booker, appt = clinic.book(name="张三丰")
    entry = clinic.sign_in(appt).entry
    call(clinic)
    ticket = services.ticket_for(selectors.access_own_ticket(booker.actor, entry.pk))
    assert ticket.ahead == 2
    assert ticket.wait_minutes == 24  # 2 ahead + 1 with the doctor, × 8 min


def test_sign_in_marks_the_appointment_arrived(clinic):
    _b, appointment = clinic.book()
    clinic.sign_in(appointment)
    assert Appointment.objects.get(pk=appointment.pk).status == "arrived"
    _ = date


def test_missed_patient_who_never_returns_becomes_no_show_at_session_close(clinic):
    a, b = signed_in(clinic, 2)
    call(clinic)
    services.mark_missed(actor=clinic.doctor_actor, queue_id=queue_of(clinic).pk, at=at(9, 1))
    assert services.close_ended_queues(actor=clinic.nurse_actor, now=at(11, 59)) == []
    assert services.close_ended_queues(actor=clinic.nurse_actor, now=at(12, 0)) == [a.pk]
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.state == rules.LEFT and b.state == rules.WAITING
    # counted as a no-show (B-11) with the queue's reason; the waiting patient is untouched.
    missed = Appointment.objects.get(pk=a.appointment_id)
    assert missed.status == "no_show"
    assert Appointment.objects.get(pk=b.appointment_id).status == "arrived"
    assert services.close_ended_queues(actor=clinic.nurse_actor, now=at(12, 5)) == []


def test_nurse_cancels_a_sign_in_and_the_patient_leaves_the_order(clinic):
    a, b = signed_in(clinic, 2)
    services.cancel_sign_in(actor=clinic.nurse_actor, entry_id=a.pk, at=at(8, 10))
    assert order_seqs(clinic) == [b.seq]
    with pytest.raises(PermissionDenied):
        services.cancel_sign_in(actor=clinic.doctor_actor, entry_id=b.pk, at=at(8, 10))


def test_interleave_mode_set_by_the_nurse_changes_the_order(clinic):
    entries = signed_in(clinic, 4)
    services.set_priority(
        actor=clinic.nurse_actor,
        entry_id=entries[3].pk,
        evidence=rules.EVIDENCE_PREGNANCY,
        certificate="母子手册",
    )
    assert order_seqs(clinic)[0] == entries[3].seq
    services.configure_queue(
        actor=clinic.nurse_actor,
        queue_id=queue_of(clinic).pk,
        priority_mode=rules.MODE_INTERLEAVE,
        voice_privacy=False,
    )
    assert order_seqs(clinic) == [entries[0].seq, entries[1].seq, entries[3].seq, entries[2].seq]


def test_nurse_adds_a_room(clinic):
    room = services.create_room(
        actor=clinic.nurse_actor, department_id=clinic.department.pk, name="5诊室", zone="二楼"
    )
    assert room.department_id == clinic.department.pk
    with pytest.raises(Exception) as exc:
        services.create_room(actor=clinic.nurse_actor, department_id=clinic.department.pk, name="5诊室")
    assert exc.value.code == "INVALID_INPUT"


def test_ended_session_leaves_the_screen_after_thirty_minutes(clinic, monkeypatch):
    display, _token = services.create_display(
        actor=clinic.nurse_actor, name="区屏", zone="二楼候诊区", organisation_id=clinic.org.pk
    )
    monkeypatch.setattr(selectors.timezone, "now", lambda: at(12, 29))
    assert [q.pk for q in selectors.display_queues(display, DAY)] == [queue_of(clinic).pk]
    monkeypatch.setattr(selectors.timezone, "now", lambda: at(12, 31))
    assert selectors.display_queues(display, DAY) == []


def test_cancelled_sign_in_can_sign_in_again(clinic):
    _b, appointment = clinic.book()
    first = clinic.sign_in(appointment, at(8, 0)).entry
    services.cancel_sign_in(actor=clinic.nurse_actor, entry_id=first.pk, at=at(8, 5))
    again = clinic.sign_in(appointment, at(8, 20))
    assert again.created and again.entry.pk != first.pk and again.entry.state == rules.WAITING


# --- Q-11 pre-call when someone new becomes first in line -----------------------------------------


def _precalls(clinic) -> list[QueueEvent]:
    return list(QueueEvent.objects.filter(queue=queue_of(clinic), kind=QueueEvent.Kind.PRECALLED))


def test_a_priority_arrival_who_becomes_first_is_pre_called_at_once(clinic):
    signed_in(clinic, 3)
    call(clinic)  # a is with the doctor; b is first in line (pre-called by the call itself)
    _booker, appointment = clinic.book(name="欧阳娜娜", birth=date(1940, 1, 1))  # aged: priority lane
    elderly = clinic.sign_in(appointment, at(9, 5)).entry
    assert order_seqs(clinic)[0] == elderly.seq
    [event] = _precalls(clinic)
    assert event.entry_id == elderly.pk and event.text == f"请{elderly.seq}号欧阳娜娜准备"
    board = selectors.board(queue_of(clinic))
    assert board["last_call"]["precall"] == event.text and board["last_call"]["text"] == ""
    assert board["last_call"]["screen_text"] == f"请{elderly.seq}号欧**娜准备"  # masked on screen


def test_a_priority_set_at_the_desk_pre_calls_the_new_head(clinic):
    _a, _b, c = signed_in(clinic, 3)
    call(clinic)
    services.set_priority(
        actor=clinic.nurse_actor,
        entry_id=c.pk,
        evidence=rules.EVIDENCE_PREGNANCY,
        certificate="孕检卡",
        at=at(9, 6),
    )
    [event] = _precalls(clinic)
    assert event.entry_id == c.pk


def test_no_pre_call_when_the_head_does_not_change_or_nobody_is_with_the_doctor(clinic):
    signed_in(clinic, 2)
    _booker, appointment = clinic.book(name="欧阳娜娜", birth=date(1940, 1, 1))
    clinic.sign_in(appointment, at(8, 10))  # first in line, but the clinic has not started calling
    assert _precalls(clinic) == []
    call(clinic)
    signed_in(clinic, 1, when=at(9, 10))  # joins at the back: the head stays the same
    assert _precalls(clinic) == []
