"""Visit states set by the queueing app: check-in, no-show, fulfilment (access.md B-11, B-12,
Q-8/Q-9, §8 F-Appointment transitions)."""

from __future__ import annotations

from datetime import date, time

import pytest

from tests import factories as f
from tests.scheduling.factories import DAY, NOW, at, book, desk, make_booker, make_department, make_session
from yilian.accounts.selectors import actor_for_user
from yilian.common.errors import NotFound
from yilian.common.models import AuditEvent
from yilian.scheduling import errors, rules, services
from yilian.scheduling.models import Appointment, AppointmentStatusHistory

VISIT = at(DAY, 8, 30)


@pytest.fixture
def county(community):
    return community.county


@pytest.fixture
def nurse(county):
    return actor_for_user(f.make_staff("nurse", county, username="visit-nurse").user)


def _booked(county):
    booker = make_booker(county)
    return booker, book(booker, make_session(county)).appointment


def test_check_in_then_finish_moves_booked_to_arrived_to_fulfilled_with_history(county, nurse):
    _b, appointment = _booked(county)
    services.mark_arrived(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    assert Appointment.objects.get(pk=appointment.pk).status == rules.ARRIVED
    services.mark_fulfilled(actor=nurse, appointment_id=appointment.pk, now=at(DAY, 9))
    appointment.refresh_from_db()
    assert appointment.status == rules.FULFILLED and appointment.fhir_status == "fulfilled"
    steps = list(appointment.history.values_list("from_status", "to_status"))
    assert steps == [("", rules.BOOKED), (rules.BOOKED, rules.ARRIVED), (rules.ARRIVED, rules.FULFILLED)]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"scheduling.arrived", "scheduling.fulfilled"} <= actions


def test_repeated_check_in_is_a_no_op(county, nurse):
    _b, appointment = _booked(county)
    services.mark_arrived(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    services.mark_arrived(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    assert (
        AppointmentStatusHistory.objects.filter(appointment=appointment, to_status=rules.ARRIVED).count() == 1
    )


def test_transitions_outside_the_graph_are_refused(county, nurse):
    booker, appointment = _booked(county)
    services.cancel_appointment(actor=booker.actor, appointment_id=appointment.pk, now=NOW)
    with pytest.raises(errors.InvalidTransition):
        services.mark_fulfilled(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    with pytest.raises(errors.InvalidTransition):
        services.mark_arrived(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    with pytest.raises(errors.InvalidTransition):
        services.mark_no_show(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    assert Appointment.objects.get(pk=appointment.pk).status == rules.CANCELLED


def test_patient_may_check_in_own_appointment_but_not_finish_it_nor_a_stranger(county):
    booker, appointment = _booked(county)
    with pytest.raises(NotFound):
        services.mark_arrived(actor=make_booker(county).actor, appointment_id=appointment.pk, now=VISIT)
    services.mark_arrived(actor=booker.actor, appointment_id=appointment.pk, now=VISIT)
    with pytest.raises(NotFound):
        services.mark_fulfilled(actor=booker.actor, appointment_id=appointment.pk, now=VISIT)


def test_staff_of_another_organisation_cannot_set_visit_states(county, community):
    _b, appointment = _booked(county)
    outsider = actor_for_user(f.make_staff("nurse", community.township, username="far-nurse").user)
    with pytest.raises(NotFound):
        services.mark_arrived(actor=outsider, appointment_id=appointment.pk, now=VISIT)


def test_missed_call_void_marks_an_arrived_patient_no_show_with_the_reason(county, nurse):
    _b, appointment = _booked(county)
    services.mark_arrived(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    services.mark_no_show(
        actor=nurse, appointment_id=appointment.pk, now=at(DAY, 11), reason=rules.REASON_MISSED_CALL
    )
    appointment.refresh_from_db()
    assert appointment.status == rules.NO_SHOW and appointment.cancel_reason == rules.REASON_MISSED_CALL
    last = appointment.history.last()
    assert (last.from_status, last.to_status, last.reason) == (
        rules.ARRIVED,
        rules.NO_SHOW,
        "oth-missed-call",
    )


def test_queue_no_shows_count_towards_suspension(county, nurse):  # B-12
    booker = make_booker(county)
    dept = make_department(county)
    days = [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 7)]
    for day in days:
        session = make_session(county, department=dept, day=day)
        appointment = book(booker, session).appointment
        services.mark_no_show(
            actor=nurse, appointment_id=appointment.pk, now=at(day, 12), reason=rules.REASON_MISSED_CALL
        )
    assert AuditEvent.objects.filter(action="scheduling.booking_suspended").count() == 1
    later = make_session(county, department=dept, day=date(2026, 12, 8))
    with pytest.raises(errors.BookingSuspended) as exc:
        book(booker, later, now=at(date(2026, 12, 7), 13))
    assert exc.value.as_dict()["until"].startswith("2027-03-07")  # 7 Dec + 90 days
    assert services.suspension_of(patient_id=booker.patient.pk, now=at(date(2026, 12, 7), 13))


def test_session_end_job_never_marks_an_arrived_patient_no_show(county, nurse):  # B-11
    session = make_session(county, windows=[(time(8), time(12), 5)])
    arrived = book(make_booker(county), session).appointment
    missing = book(make_booker(county), session).appointment
    services.mark_arrived(actor=nurse, appointment_id=arrived.pk, now=VISIT)
    services.mark_no_shows(actor=desk(county), now=at(DAY, 12))
    assert Appointment.objects.get(pk=arrived.pk).status == rules.ARRIVED
    assert Appointment.objects.get(pk=missing.pk).status == rules.NO_SHOW


def test_queueing_hooks_reach_the_visit_services():
    from yilian.queueing.services import base

    for verb in ("mark_arrived", "mark_no_show", "mark_fulfilled"):
        assert getattr(base.scheduling_services, verb) is getattr(services, verb)


def test_finishing_a_visit_without_check_in_records_both_steps(county, nurse):
    _b, appointment = _booked(county)
    services.mark_fulfilled(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    appointment.refresh_from_db()
    assert appointment.status == rules.FULFILLED
    steps = list(appointment.history.values_list("from_status", "to_status"))
    assert steps[1:] == [(rules.BOOKED, rules.ARRIVED), (rules.ARRIVED, rules.FULFILLED)]


def test_a_held_appointment_cannot_be_checked_in(county, nurse):
    _booker, appointment = _booked(county)
    Appointment.objects.filter(pk=appointment.pk).update(status=rules.HELD)
    with pytest.raises(errors.InvalidTransition):
        services.mark_arrived(actor=nurse, appointment_id=appointment.pk, now=VISIT)
    with pytest.raises(errors.InvalidTransition):
        services.mark_fulfilled(actor=nurse, appointment_id=appointment.pk, now=VISIT)
