"""The booking service against a real database: access.md B-1..B-16."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.db import IntegrityError, transaction

from tests import factories as f
from tests.scheduling.factories import (
    DAY,
    NOW,
    at,
    book,
    desk,
    make_booker,
    make_department,
    make_doctor,
    make_session,
)
from yilian.common.errors import NotFound, PermissionDenied
from yilian.common.models import AuditEvent
from yilian.community.models import Staff
from yilian.scheduling import errors, rules, services
from yilian.scheduling.models import Appointment, AppointmentStatusHistory, BookingPolicy, Slot


@pytest.fixture
def county(community):
    return community.county


def test_session_generates_one_slot_per_number_with_referral_reserve(county):
    session = make_session(county, windows=[(time(8), time(9), 4), (time(9), time(10), 6)])
    slots = list(session.slots.order_by("seq"))
    assert [s.seq for s in slots] == list(range(1, 11))
    assert [s.starts_at for s in slots[:4]] == [at(DAY, 8)] * 4
    assert slots[4].starts_at == at(DAY, 9)
    assert sum(s.pool == rules.REFERRAL for s in slots) == 3
    assert session.release_at == at(DAY - timedelta(days=7), 7)
    assert session.fee_class == rules.GENERAL


def test_expert_session_reserves_half_and_department_policy_sets_release(county):
    dept = make_department(county)
    BookingPolicy.objects.create(department=dept, booking_window_days=14, release_time=time(8, 30))
    doctor = make_doctor(county, dept, title=Staff.Title.CHIEF_PHYSICIAN)
    session = make_session(county, department=dept, doctor=doctor)
    assert session.fee_class == rules.EXPERT
    assert session.slots.filter(pool=rules.REFERRAL).count() == 5
    assert session.release_at == at(DAY - timedelta(days=14), 8, 30)


def test_only_schedule_managers_create_sessions(county):
    with pytest.raises(PermissionDenied):
        make_session(county, actor=desk(county))


def test_overlapping_windows_are_refused(county):
    from yilian.common.errors import InvalidInput

    with pytest.raises(InvalidInput):
        make_session(county, windows=[(time(8), time(10), 2), (time(9), time(11), 2)])


def test_booking_takes_the_first_public_number_and_writes_history_and_audit(county):
    session = make_session(county)
    booker = make_booker(county)
    result = book(booker, session)
    a = result.appointment
    assert result.created and a.status == rules.BOOKED and a.fhir_status == "booked"
    assert a.slot.seq == 1 and a.slot.pool == rules.PUBLIC
    assert Slot.objects.get(pk=a.slot_id).status == rules.SLOT_BOOKED
    assert list(a.history.values_list("from_status", "to_status")) == [("", rules.BOOKED)]
    assert AuditEvent.objects.filter(action="scheduling.book", patient_id=booker.patient.pk).exists()


def test_unverified_patient_is_refused(county):  # B-1
    session = make_session(county)
    with pytest.raises(errors.RealnameRequired) as exc:
        book(make_booker(county, verified=False), session)
    assert exc.value.status == 403
    assert not Appointment.objects.exists()


def test_account_cannot_book_a_patient_it_does_not_manage(county):  # B-16
    session = make_session(county)
    mine, other = make_booker(county), make_booker(county)
    with pytest.raises(NotFound):
        services.book_appointment(
            actor=mine.actor, patient_id=other.patient.pk, session_id=session.pk, now=NOW
        )


def test_child_under_fourteen_only_from_a_guardian_account(county):  # B-16
    session = make_session(county)
    adult = make_booker(county)
    child = f.make_patient(county, name="小明", birth=date(2015, 3, 1))
    f.link(adult.account, child, relationship="sibling")
    with pytest.raises(errors.GuardianRequired):
        services.book_appointment(actor=adult.actor, patient_id=child.pk, session_id=session.pk, now=NOW)
    link = child.family_links.get()
    link.is_guardian = True
    link.save()
    booking = services.book_appointment(
        actor=adult.actor, patient_id=child.pk, session_id=session.pk, now=NOW
    )
    assert booking.appointment.patient_id == child.pk


def test_desk_staff_book_with_the_desk_permission(county, staff_of):
    session = make_session(county)
    patient = f.make_patient(county)
    booking = services.book_appointment(
        actor=desk(county), patient_id=patient.pk, session_id=session.pk, channel="counter", now=NOW
    )
    assert booking.appointment.channel == "counter"
    from yilian.accounts.selectors import actor_for_user

    auditor = actor_for_user(staff_of("auditor").user)
    with pytest.raises(PermissionDenied):
        services.book_appointment(actor=auditor, patient_id=patient.pk, session_id=session.pk, now=NOW)


def test_not_yet_released(county):  # B-3
    session = make_session(county)
    release = at(DAY - timedelta(days=7), 7)
    with pytest.raises(errors.NotYetReleased) as exc:
        book(make_booker(county), session, now=release - timedelta(seconds=1))
    assert exc.value.status == 422 and exc.value.as_dict()["release_at"]
    assert book(make_booker(county), session, now=release).created


def test_online_booking_closes_thirty_minutes_before_the_end(county):  # B-4
    session = make_session(county)
    with pytest.raises(errors.BookingClosed):
        book(make_booker(county), session, now=at(DAY, 11, 30))
    assert book(make_booker(county), session, now=at(DAY, 11, 29)).created


def test_second_booking_same_session_and_department_is_refused(county):  # B-5
    dept = make_department(county)
    first = make_session(county, department=dept, doctor=make_doctor(county, dept))
    other_doctor = make_session(county, department=dept, doctor=make_doctor(county, dept))
    afternoon = make_session(
        county,
        department=dept,
        doctor=make_doctor(county, dept),
        period=rules.PM,
        windows=[(time(14), time(17), 5)],
    )
    other_dept = make_session(county)
    booker = make_booker(county)
    book(booker, first)
    with pytest.raises(errors.DuplicateSessionBooking) as exc:
        book(booker, other_doctor)
    assert exc.value.status == 409
    assert book(booker, afternoon).created
    assert book(booker, other_dept).created


def test_duplicate_session_is_guaranteed_by_the_database(county):  # B-5 partial unique index
    dept = make_department(county)
    s1 = make_session(county, department=dept, doctor=make_doctor(county, dept))
    s2 = make_session(county, department=dept, doctor=make_doctor(county, dept))
    booker = make_booker(county)
    a = book(booker, s1).appointment
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            patient=booker.patient,
            session=s2,
            slot=s2.slots.first(),
            service_date=DAY,
            period=rules.AM,
            department=dept,
            status=rules.BOOKED,
            channel="app",
            created_by=a.created_by,
            booked_at=NOW,
        )


def test_a_slot_never_holds_two_active_appointments(county):  # B-10 partial unique index
    session = make_session(county)
    a = book(make_booker(county), session).appointment
    other = make_booker(county)
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            patient=other.patient,
            session=session,
            slot=a.slot,
            service_date=DAY,
            period=rules.AM,
            department=session.department,
            status=rules.BOOKED,
            channel="app",
            created_by=other.account.user,
            booked_at=NOW,
        )


def test_cancelled_booking_does_not_block_a_new_one(county):  # B-5: cancelled does not count
    session = make_session(county)
    booker = make_booker(county)
    a = book(booker, session).appointment
    services.cancel_appointment(actor=booker.actor, appointment_id=a.pk, now=NOW)
    assert book(booker, session).created


def _past_booking(booker, day, status=rules.BOOKED, **extra):
    """A booking on another (past or future) date, written directly (history fixture)."""
    dept = make_department(booker.patient.home_org)
    session = make_session(
        booker.patient.home_org, department=dept, day=day, windows=[(time(8), time(9), 1)], now=at(day, 0)
    )
    slot = session.slots.first()
    return Appointment.objects.create(
        patient=booker.patient,
        session=session,
        slot=slot,
        service_date=day,
        period=rules.AM,
        department=dept,
        status=status,
        channel="app",
        created_by=booker.account.user,
        booked_at=at(day, 0),
        **extra,
    )


def test_weekly_cap_of_eight(county):  # B-6
    booker = make_booker(county)
    week = [date(2026, 11, 30) + timedelta(days=i) for i in range(7)]
    for d in (*week, week[0]):
        _past_booking(booker, d, status=rules.FULFILLED)
    with pytest.raises(errors.QuotaExceeded) as exc:
        book(booker, make_session(county), now=at(date(2026, 11, 30), 0))
    assert exc.value.status == 422 and exc.value.as_dict()["window"] == "week"


def test_cancelled_bookings_do_not_count_towards_the_cap(county):  # B-6
    booker = make_booker(county)
    for i in range(8):
        _past_booking(
            booker,
            date(2026, 11, 30) + timedelta(days=i % 7),
            status=rules.CANCELLED,
            cancel_reason="maint",
            cancelled_at=NOW,
        )
    assert book(booker, make_session(county), now=at(date(2026, 11, 30), 0)).created


def test_monthly_cap_of_twelve(county):  # B-6
    booker = make_booker(county)
    for d in [1, 2, 8, 9, 10, 15, 16, 17, 22, 23, 24, 29]:
        _past_booking(booker, date(2026, 12, d), status=rules.NO_SHOW if d == 1 else rules.BOOKED)
    with pytest.raises(errors.QuotaExceeded) as exc:
        book(booker, make_session(county), now=at(date(2026, 11, 30), 0))
    assert exc.value.as_dict()["window"] == "month"


def test_cancel_before_deadline_returns_the_number_after_a_delay(county):  # B-7, B-9
    dept = make_department(county)
    BookingPolicy.objects.create(department=dept, referral_reserved_ratio=0)
    session = make_session(county, department=dept, windows=[(time(8), time(12), 1)])
    first = make_booker(county)
    a = book(first, session).appointment
    with pytest.raises(errors.SlotUnavailable):
        book(make_booker(county), session)
    cancelled_at = at(DAY - timedelta(days=1), 16, 59)
    services.cancel_appointment(actor=first.actor, appointment_id=a.pk, now=cancelled_at)
    a.refresh_from_db()
    assert a.status == rules.CANCELLED and a.cancel_reason == "pat" and a.fhir_status == "cancelled"
    slot = Slot.objects.get(pk=a.slot_id)
    assert slot.status == rules.SLOT_FREE
    assert timedelta(minutes=5) <= slot.available_from - cancelled_at <= timedelta(minutes=30)
    assert slot.fhir_status(cancelled_at) == "busy-unavailable"
    with pytest.raises(errors.SlotUnavailable):  # not immediately (anti-scalper)
        book(make_booker(county), session, now=cancelled_at + timedelta(minutes=4))
    again = book(make_booker(county), session, now=slot.available_from)
    assert again.appointment.slot_id == a.slot_id
    assert list(a.history.values_list("to_status", flat=True)) == [rules.BOOKED, rules.CANCELLED]


def test_cancel_after_deadline_is_refused_and_booking_stays(county):  # B-7
    session = make_session(county)
    booker = make_booker(county)
    a = book(booker, session).appointment
    with pytest.raises(errors.CancelDeadlinePassed) as exc:
        services.cancel_appointment(
            actor=booker.actor, appointment_id=a.pk, now=at(DAY - timedelta(days=1), 17, 1)
        )
    assert exc.value.status == 422
    a.refresh_from_db()
    assert a.status == rules.BOOKED


def test_another_account_cannot_cancel(county):
    session = make_session(county)
    a = book(make_booker(county), session).appointment
    with pytest.raises(NotFound):
        services.cancel_appointment(actor=make_booker(county).actor, appointment_id=a.pk, now=NOW)


def test_three_patient_cancellations_in_thirty_days_suspend_booking(county):  # B-14
    booker = make_booker(county)
    dept = make_department(county)
    t = NOW
    for i in range(3):
        s = make_session(county, department=dept, day=DAY + timedelta(days=i))
        a = book(booker, s, now=t).appointment
        services.cancel_appointment(actor=booker.actor, appointment_id=a.pk, now=t + timedelta(hours=i))
    later = make_session(county, department=dept, day=DAY + timedelta(days=5))
    with pytest.raises(errors.BookingSuspended) as exc:
        book(booker, later, now=t + timedelta(days=1))
    body = exc.value.as_dict()
    assert exc.value.status == 403 and body["until"].startswith("2026-12-31T10:00")
    january = make_session(county, department=dept, day=date(2027, 1, 5))
    with pytest.raises(errors.BookingSuspended):
        book(booker, january, now=at(date(2026, 12, 31), 9, 59))
    assert book(booker, january, now=at(date(2026, 12, 31), 10, 0)).created


def test_three_no_shows_suspend_booking_and_counter_same_day_still_works(county):  # B-11, B-12
    booker = make_booker(county)
    for d in (date(2026, 10, 1), date(2026, 11, 1)):
        _past_booking(booker, d, status=rules.NO_SHOW)
    missed = _past_booking(booker, date(2026, 11, 30))
    suspended = services.mark_no_shows(actor=desk(county), now=NOW)
    missed.refresh_from_db()
    assert missed.status == rules.NO_SHOW and suspended == [booker.patient.pk]
    assert missed.history.filter(to_status=rules.NO_SHOW).exists()
    session = make_session(county)
    with pytest.raises(errors.BookingSuspended) as exc:
        book(booker, session)
    assert exc.value.as_dict()["until"].startswith("2027-02-28")  # 30 Nov + 90 days, 00:00
    # (b) same-day registration at the counter is still allowed
    today = make_session(county, day=NOW.date(), windows=[(time(9), time(12), 5)])
    counter = services.book_appointment(
        actor=desk(county), patient_id=booker.patient.pk, session_id=today.pk, channel="counter", now=NOW
    )
    assert counter.created
    # B-13: correcting a no-show lifts the suspension
    services.correct_no_show(
        actor=make_session.__globals__["scheduler"](county),
        appointment_id=missed.pk,
        reason="患者当日已到诊，系统未签到",
        now=NOW,
    )
    assert book(booker, session).created


def test_six_no_shows_in_a_year_suspend_for_one_eighty_days(county):  # B-12 escalation
    booker = make_booker(county)
    for d in (
        date(2026, 3, 1),
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 11, 20),
        date(2026, 11, 21),
        date(2026, 11, 22),
    ):
        _past_booking(booker, d, status=rules.NO_SHOW)
    with pytest.raises(errors.BookingSuspended) as exc:
        book(booker, make_session(county))
    assert exc.value.as_dict()["until"].startswith("2027-05-21")  # 22 Nov 2026 + 180 days


def test_stop_session_cancels_notifies_and_does_not_penalise(
    county, django_capture_on_commit_callbacks
):  # B-15
    from yilian.notifications.models import InboxMessage, SmsMessage

    dept = make_department(county)
    doctor = make_doctor(county, dept)
    session = make_session(county, department=dept, doctor=doctor)
    bookers = [make_booker(county) for _ in range(3)]
    appointments = [book(b, session).appointment for b in bookers]
    after_deadline = at(DAY, 7)
    from yilian.accounts.selectors import actor_for_user

    with django_capture_on_commit_callbacks(execute=False):
        services.stop_session(
            actor=actor_for_user(doctor.user), session_id=session.pk, reason="外出会诊", now=after_deadline
        )
    session.refresh_from_db()
    assert session.status == "stopped" and not session.fhir_active
    for a in appointments:
        a.refresh_from_db()
        assert a.status == rules.CANCELLED and a.cancel_reason == rules.REASON_PROVIDER
    assert set(Slot.objects.filter(session=session).values_list("status", flat=True)) == {
        rules.SLOT_UNAVAILABLE
    }
    assert InboxMessage.objects.filter(template_code="booking_cancelled_by_hospital").count() == 3
    sms = SmsMessage.objects.filter(template_code="booking_cancelled_by_hospital")
    assert sms.count() == 3 and all(m.urgent for m in sms)
    assert "外出会诊" in sms.first().body
    # no penalty: three hospital cancellations are not patient cancellations (B-13, B-14)
    for b in bookers:
        assert services.suspension_of(patient_id=b.patient.pk, now=after_deadline) is None
    with pytest.raises(errors.SlotUnavailable):
        book(make_booker(county), session, now=after_deadline)


def test_other_doctor_cannot_stop_a_session(county):
    from yilian.accounts.selectors import actor_for_user

    dept = make_department(county)
    session = make_session(county, department=dept, doctor=make_doctor(county, dept))
    with pytest.raises(PermissionDenied):
        services.stop_session(
            actor=actor_for_user(make_doctor(county, dept).user), session_id=session.pk, reason="x", now=NOW
        )


def test_same_key_returns_the_same_booking(county):  # idempotency
    session = make_session(county)
    booker = make_booker(county)
    first = book(booker, session, key="k-1")
    again = book(booker, session, key="k-1")
    assert first.created and not again.created
    assert again.appointment.pk == first.appointment.pk
    assert Appointment.objects.count() == 1
    other_session = make_session(county)
    with pytest.raises(errors.IdempotencyKeyReused):
        book(booker, other_session, key="k-1")


def test_key_reused_for_another_patient_loses_at_the_unique_index_and_rolls_back(county, monkeypatch):
    """If the look-up misses (a race), the idempotency index still refuses the second insert, and
    the loser's number goes back: nothing half-made."""
    session = make_session(county)
    booker = make_booker(county)
    book(booker, session, key="race")
    sibling = f.make_patient(county, name="张四")
    f.link(booker.account, sibling, relationship="sibling")
    real = services.booking._match_key
    calls = {"n": 0}

    def miss_once(*args, **kwargs):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args, **kwargs)

    monkeypatch.setattr(services.booking, "_match_key", miss_once)
    with pytest.raises(errors.IdempotencyKeyReused):
        services.book_appointment(
            actor=booker.actor, patient_id=sibling.pk, session_id=session.pk, idempotency_key="race", now=NOW
        )
    assert Appointment.objects.count() == 1
    assert Slot.objects.filter(session=session, status=rules.SLOT_BOOKED).count() == 1


def test_status_history_is_append_only_per_transition(county):
    session = make_session(county)
    booker = make_booker(county)
    a = book(booker, session).appointment
    services.cancel_appointment(actor=booker.actor, appointment_id=a.pk, now=NOW)
    services.cancel_appointment(actor=booker.actor, appointment_id=a.pk, now=NOW)  # repeat: no-op
    assert AppointmentStatusHistory.objects.filter(appointment=a).count() == 2


def test_booking_a_chosen_time_segment_takes_a_number_of_that_segment_only(county):  # B-19
    from yilian.common.errors import InvalidInput

    session = make_session(county, windows=[(time(8), time(9), 3), (time(9), time(10), 10)])
    first = make_booker(county)
    got = services.book_appointment(
        actor=first.actor,
        patient_id=first.patient.pk,
        session_id=session.pk,
        now=NOW,
        segment_start=at(DAY, 9),
    )
    assert got.appointment.slot.starts_at == at(DAY, 9)
    public_at_8 = session.slots.filter(starts_at=at(DAY, 8)).count()  # reserve returned (B-17)
    for _n in range(public_at_8):
        b = make_booker(county)
        services.book_appointment(
            actor=b.actor, patient_id=b.patient.pk, session_id=session.pk, now=NOW, segment_start=at(DAY, 8)
        )
    second = make_booker(county)
    with pytest.raises(errors.SlotUnavailable) as exc:  # 08:00 is full although 09:00 is not
        services.book_appointment(
            actor=second.actor,
            patient_id=second.patient.pk,
            session_id=session.pk,
            now=NOW,
            segment_start=at(DAY, 8),
        )
    assert "该分时段" in str(exc.value.message)
    with pytest.raises(InvalidInput):
        services.book_appointment(
            actor=second.actor,
            patient_id=second.patient.pk,
            session_id=session.pk,
            now=NOW,
            segment_start=at(DAY, 11),
        )
    assert Appointment.objects.count() == 1 + public_at_8


def _sell_out(county, session) -> None:
    """Book every bookable number of ``session`` (the referral reserve stays locked away)."""
    for _ in range(Slot.objects.filter(session=session, pool=rules.PUBLIC, status=rules.SLOT_FREE).count()):
        book(make_booker(county), session)
    Slot.objects.filter(session=session, status=rules.SLOT_FREE).update(status=rules.SLOT_BOOKED)


def test_sold_out_session_is_refused_in_one_read_without_the_patient_lock(county, django_assert_num_queries):
    """B-10 fast path: after the last number goes, a rush request costs one read, no lock, no write."""
    session = make_session(county, windows=[(time(8), time(9), 3)])
    _sell_out(county, session)
    late = make_booker(county)
    actor = late.actor  # resolved outside the counted block
    with django_assert_num_queries(1), pytest.raises(errors.SlotUnavailable):
        services.book_appointment(
            actor=actor, patient_id=late.patient.pk, session_id=session.pk, idempotency_key="k-late", now=NOW
        )
    assert not Appointment.objects.filter(patient=late.patient).exists()


def test_sold_out_replay_still_returns_the_original_booking(county):
    session = make_session(county, windows=[(time(8), time(9), 3)])
    first = make_booker(county)
    original = book(first, session, key="k-1").appointment
    _sell_out(county, session)
    replay = book(first, session, key="k-1")
    assert not replay.created and replay.appointment.pk == original.pk


def test_sold_out_stopped_or_unreleased_session_gives_the_specific_refusal(county):
    session = make_session(county, windows=[(time(8), time(9), 3)])
    _sell_out(county, session)
    late = make_booker(county)
    with pytest.raises(errors.NotYetReleased):
        book(late, session, now=session.release_at - timedelta(minutes=1))
    type(session).objects.filter(pk=session.pk).update(status="stopped", stopped_at=NOW)
    with pytest.raises(errors.SessionStopped):
        book(late, session)
