"""Queueing fixtures: a cardiology clinic with a doctor's session, a triage nurse and bookings."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, time

import pytest
from django.utils import timezone

from tests import factories as f
from tests.scheduling import factories as sf
from yilian.accounts.selectors import actor_for_user
from yilian.queueing import services
from yilian.queueing.models import ClinicRoom
from yilian.scheduling import rules as scheduling_rules

_seq = itertools.count(1)
DAY = sf.DAY  # Thursday 3 December 2026


def at(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return scheduling_rules.local_datetime(day, time(hh, mm))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Clinic:
    org: object
    department: object
    doctor: object
    nurse: object
    room: object
    session: object
    patients: list = field(default_factory=list)

    @property
    def doctor_actor(self):
        return actor_for_user(self.doctor.user)

    @property
    def nurse_actor(self):
        return actor_for_user(self.nurse.user)

    def book(self, name: str = "张三丰", birth: date = date(1980, 5, 17), session=None):
        booker = sf.make_booker(self.org, name=name, birth=birth)
        now = sf.NOW if self.session.service_date == DAY else timezone.now()
        booking = sf.book(booker, session or self.session, now=now)
        self.patients.append(booker)
        return booker, booking.appointment

    def sign_in(self, appointment, when: datetime | None = None):
        return services.check_in(actor=self.nurse_actor, appointment_id=appointment.pk, at=when or at(8, 0))


def make_clinic(
    org,
    *,
    windows=((time(8, 0), time(9, 0), 4), (time(9, 0), time(10, 0), 4), (time(10, 0), time(12, 0), 12)),
    day: date = DAY,
    now: datetime | None = None,
):
    department = sf.make_department(org)
    doctor = sf.make_doctor(org, department, name="李医生")
    nurse = f.make_staff("nurse", org, username=f"nurse{next(_seq)}", department=department, name="王护士")
    room = ClinicRoom.objects.create(department=department, name="3诊室", zone="二楼候诊区")
    session = sf.make_session(
        org, department=department, doctor=doctor, windows=windows, day=day, now=now or sf.NOW
    )
    return Clinic(org, department, doctor, nurse, room, session)


@pytest.fixture
def clinic(community):
    c = make_clinic(community.county)
    queue = services.open_queue(actor=c.nurse_actor, session_id=c.session.pk)
    services.assign_room(actor=c.nurse_actor, queue_id=queue.pk, room_id=c.room.pk)
    return c


@pytest.fixture
def today_clinic(community):
    """A clinic whose session runs today, all day (for pages and the browser, which use the clock)."""
    c = make_clinic(
        community.county,
        windows=((time(0, 0), time(23, 59), 30),),
        day=timezone.localdate(),
        now=timezone.now(),
    )
    queue = services.open_queue(actor=c.nurse_actor, session_id=c.session.pk)
    services.assign_room(actor=c.nurse_actor, queue_id=queue.pk, room_id=c.room.pk)
    return c
