"""Waitlist (候补, access.md B-20) and payment holds (B-8)."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from tests import factories as f
from tests.scheduling.factories import NOW, book, make_booker, make_department, make_session
from yilian.scheduling import errors, rules, services
from yilian.scheduling.models import Appointment, BookingPolicy, Slot, WaitlistEntry


@pytest.fixture
def full_session(community):
    """A one-number session (no referral reserve), booked by ``holder``."""
    county = community.county
    dept = make_department(county)
    BookingPolicy.objects.create(department=dept, referral_reserved_ratio=0)
    session = make_session(county, department=dept, windows=[(time(8), time(12), 1)])
    holder = make_booker(county)
    appointment = book(holder, session).appointment
    return county, session, holder, appointment


def _join(booker, session, now=NOW):
    return services.join_waitlist(
        actor=booker.actor, patient_id=booker.patient.pk, session_id=session.pk, now=now
    )


def _free_up(holder, appointment, now=NOW):
    services.cancel_appointment(actor=holder.actor, appointment_id=appointment.pk, now=now)
    return Slot.objects.get(pk=appointment.slot_id)


def test_join_only_a_full_session(community):
    county = community.county
    session = make_session(county)
    with pytest.raises(errors.SlotsStillAvailable) as exc:
        _join(make_booker(county), session)
    assert exc.value.status == 409


def test_joining_twice_returns_the_same_entry(full_session):
    county, session, _holder, _a = full_session
    waiter = make_booker(county)
    assert _join(waiter, session).pk == _join(waiter, session).pk


def test_waitlist_refuses_what_booking_refuses(full_session):
    county, session, holder, _a = full_session
    with pytest.raises(errors.DuplicateSessionBooking):
        _join(holder, session)
    with pytest.raises(errors.RealnameRequired):
        _join(make_booker(county, verified=False), session)


def test_freed_number_goes_to_the_first_waiting_patient_as_a_hold(
    full_session, django_capture_on_commit_callbacks
):
    from yilian.notifications.models import InboxMessage

    county, session, holder, appointment = full_session
    first, second = make_booker(county), make_booker(county)
    e1 = _join(first, session)
    e2 = _join(second, session, now=NOW + timedelta(seconds=1))
    slot = _free_up(holder, appointment)
    assert slot.for_waitlist and slot.available_from > NOW
    # the public cannot take it, before or after the delay
    with pytest.raises(errors.SlotUnavailable):
        book(make_booker(county), session, now=slot.available_from + timedelta(minutes=1))
    assert services.offer_waitlist(now=slot.available_from - timedelta(seconds=1)) == 0  # B-9: not before
    with django_capture_on_commit_callbacks(execute=False):
        assert services.offer_waitlist(now=slot.available_from) == 1
    e1.refresh_from_db()
    e2.refresh_from_db()
    assert e1.status == WaitlistEntry.Status.OFFERED and e2.status == WaitlistEntry.Status.WAITING
    held = e1.appointment
    assert held.status == rules.HELD and held.fhir_status == "pending" and held.slot_id == slot.pk
    assert held.hold_expires_at == slot.available_from + timedelta(minutes=15)
    assert Slot.objects.get(pk=slot.pk).fhir_status(slot.available_from) == "busy-tentative"
    assert InboxMessage.objects.filter(recipient=first.account.user, template_code="waitlist_offer").exists()
    services.confirm_hold(
        actor=first.actor, appointment_id=held.pk, now=held.hold_expires_at - timedelta(seconds=1)
    )
    held.refresh_from_db()
    e1.refresh_from_db()
    assert held.status == rules.BOOKED and e1.status == WaitlistEntry.Status.BOOKED
    assert Slot.objects.get(pk=slot.pk).status == rules.SLOT_BOOKED


def test_unpaid_hold_expires_without_penalty_and_passes_to_the_next(full_session):
    county, session, holder, appointment = full_session
    first, second = make_booker(county), make_booker(county)
    _join(first, session)
    _join(second, session, now=NOW + timedelta(seconds=1))
    slot = _free_up(holder, appointment)
    services.offer_waitlist(now=slot.available_from)
    held = Appointment.objects.get(patient=first.patient, status=rules.HELD)
    late = held.hold_expires_at
    with pytest.raises(errors.HoldExpired) as exc:
        services.confirm_hold(actor=first.actor, appointment_id=held.pk, now=late)
    assert exc.value.status == 422
    assert services.expire_holds(now=late) == 1
    held.refresh_from_db()
    assert held.status == rules.CANCELLED and held.cancel_reason == rules.REASON_HOLD_EXPIRED
    assert services.suspension_of(patient_id=first.patient.pk, now=late) is None  # not a patient cancellation
    again = Slot.objects.get(pk=slot.pk)
    assert again.status == rules.SLOT_FREE and again.for_waitlist and again.available_from > late
    assert services.offer_waitlist(now=again.available_from) == 1
    assert Appointment.objects.get(patient=second.patient, status=rules.HELD).slot_id == slot.pk


def test_waiting_patient_who_no_longer_qualifies_is_passed_over(full_session):
    county, session, holder, appointment = full_session
    first, second = make_booker(county), make_booker(county)
    _join(first, session)
    _join(second, session, now=NOW + timedelta(seconds=1))
    # first books another doctor of the same department and session (B-5) meanwhile
    other = make_session(county, department=session.department, doctor=f.make_staff("doctor", county))
    book(first, other)
    slot = _free_up(holder, appointment)
    assert services.offer_waitlist(now=slot.available_from) == 1
    assert Appointment.objects.get(session=session, status=rules.HELD).patient_id == second.patient.pk


def test_number_nobody_can_take_joins_the_public_pool(full_session):
    county, session, holder, appointment = full_session
    waiter = make_booker(county)
    entry = _join(waiter, session)
    services.leave_waitlist(actor=waiter.actor, entry_id=entry.pk)
    slot = _free_up(holder, appointment)
    assert not slot.for_waitlist  # nobody waiting any more
    assert book(make_booker(county), session, now=slot.available_from).created


def test_stop_session_closes_the_waitlist(full_session, staff_of):
    county, session, _holder, _a = full_session
    entry = _join(make_booker(county), session)
    services.stop_session(
        actor=make_session.__globals__["scheduler"](county), session_id=session.pk, reason="停诊", now=NOW
    )
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.CANCELLED
