"""Booking through a referral order from a member institution (医共体转诊预留号): access.md B-17."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from tests.scheduling.factories import NOW, book, desk, make_booker, make_session
from yilian.accounts.selectors import actor_for_user
from yilian.common.errors import InvalidInput
from yilian.scheduling import errors, rules, services
from yilian.scheduling.models import Slot


@pytest.fixture
def world(community, staff_of):
    session = make_session(community.county)  # 10 numbers, 3 reserved for referrals
    township_doctor = staff_of("doctor", community.township)
    patient = make_booker(community.village).patient
    return community, session, actor_for_user(township_doctor.user), patient


# After the public release, before the unused reserve returns to the public pool (start − 48 h).
RELEASED = NOW - timedelta(days=2)


def refer(actor, patient, session, *, now=RELEASED, ref="ZZ-2026-0001", **kwargs):
    return services.book_appointment(
        actor=actor,
        patient_id=patient.pk,
        session_id=session.pk,
        channel=rules.CHANNEL_REFERRAL,
        referral_ref=ref,
        now=now,
        **kwargs,
    )


def test_a_township_doctor_books_a_reserved_number_before_public_release(world):
    _community, session, township, patient = world
    before_public = session.release_at - timedelta(days=3)
    booking = refer(township, patient, session, now=before_public)
    a = booking.appointment
    assert a.channel == rules.CHANNEL_REFERRAL and a.referral_ref == "ZZ-2026-0001"
    assert Slot.objects.get(pk=a.slot_id).pool == rules.REFERRAL


def test_the_reserve_opens_referral_lead_days_before_public_release(world):
    _community, session, township, patient = world
    opens = rules.referral_opens_at(session.service_date)
    with pytest.raises(errors.NotYetReleased):
        refer(township, patient, session, now=opens - timedelta(minutes=1))
    assert refer(township, patient, session, now=opens).created


def test_public_bookers_never_get_a_reserved_number(world):
    community, session, township, _patient = world
    for _ in range(7):
        book(make_booker(community.county), session, now=RELEASED)
    with pytest.raises(errors.SlotUnavailable):
        book(make_booker(community.county), session, now=RELEASED)
    # The three reserved numbers are still there for referrals.
    for i in range(3):
        patient = make_booker(community.village).patient
        assert refer(township, patient, session, ref=f"ZZ-{i}").appointment.slot.pool == rules.REFERRAL


def test_after_public_release_a_referral_takes_a_public_number_when_the_reserve_is_gone(world):
    community, session, township, _patient = world
    for i in range(4):
        refer(township, make_booker(community.village).patient, session, ref=f"ZZ-{i}")
    pools = list(
        Slot.objects.filter(session=session, status=rules.SLOT_BOOKED).values_list("pool", flat=True)
    )
    assert sorted(pools) == [rules.PUBLIC, rules.REFERRAL, rules.REFERRAL, rules.REFERRAL]


def test_the_hospitals_own_desk_cannot_use_the_referral_channel(world):
    community, session, _township, patient = world
    with pytest.raises(errors.ReferralRequired):
        refer(desk(community.county), patient, session)


def test_a_referral_needs_its_order_number(world):
    _community, session, township, patient = world
    with pytest.raises(errors.ReferralRequired):
        refer(township, patient, session, ref="  ")


def test_a_patient_account_asking_for_a_reserved_number_is_told_a_referral_is_required(world):
    community, session, _township, _patient = world
    booker = make_booker(community.county)
    c = Client()
    c.force_login(booker.account.user)
    r = c.post(
        "/api/v1/scheduling/appointments",
        json.dumps(
            {
                "patient_id": booker.patient.pk,
                "session_id": session.pk,
                "channel": "referral",
                "referral_ref": "ZZ-1",
            }
        ),
        content_type="application/json",
    )
    assert r.status_code == 403 and r.json()["code"] == "REFERRAL_REQUIRED", r.content


def test_a_referral_number_on_another_channel_is_refused(world):
    community, session, _township, _patient = world
    booker = make_booker(community.county)
    with pytest.raises(InvalidInput):
        services.book_appointment(
            actor=booker.actor,
            patient_id=booker.patient.pk,
            session_id=session.pk,
            referral_ref="ZZ-1",
            now=RELEASED,
        )
