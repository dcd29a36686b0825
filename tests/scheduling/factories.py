"""Scheduling test helpers: a department, a session built by the real service, booking personas."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.common.policy import Actor
from yilian.community.models import Department, Staff
from yilian.patients.models import Patient
from yilian.scheduling import rules, services
from yilian.scheduling.models import ClinicSession

_seq = itertools.count(1)

# A fixed "now" for service-level tests: Tuesday 1 December 2026, 08:00 in the hospital.
NOW = rules.local_datetime(date(2026, 12, 1), time(8, 0))
DAY = date(2026, 12, 3)  # Thursday; released on 26 November at 07:00


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return rules.local_datetime(day, time(hh, mm))


def make_department(org, name: str = "心血管内科") -> Department:
    n = next(_seq)
    return Department.objects.create(organisation=org, code=f"S{n:04d}", name=name)


def scheduler(org) -> Actor:
    """A member of the medical-affairs office (schedule permission)."""
    staff = f.make_staff("coordinator", org, username=f"sched{next(_seq)}")
    return actor_for_user(staff.user)


def desk(org) -> Actor:
    staff = f.make_staff("service_operator", org, username=f"desk{next(_seq)}")
    return actor_for_user(staff.user)


def make_doctor(org, department, title=Staff.Title.ATTENDING_PHYSICIAN, name="李医生") -> Staff:
    return f.make_staff(
        "doctor", org, username=f"doc{next(_seq)}", department=department, title=title, name=name
    )


def make_session(
    org,
    *,
    department=None,
    doctor=None,
    day: date = DAY,
    period: str = rules.AM,
    windows=((time(8, 0), time(12, 0), 10),),
    now: datetime = NOW,
    actor: Actor | None = None,
    special: bool = False,
) -> ClinicSession:
    department = department or make_department(org)
    return services.create_session(
        actor=actor or scheduler(org),
        department=department,
        doctor=doctor,
        service_date=day,
        period=period,
        windows=list(windows),
        special=special,
        now=now,
    )


@dataclass
class Booker:
    account: object
    patient: Patient

    @property
    def actor(self) -> Actor:
        return actor_for_user(self.account.user)


def make_booker(org, *, verified: bool = True, birth: date = date(1980, 5, 17), name: str = "张三") -> Booker:
    n = next(_seq)
    account = f.make_patient_account(phone=f"139{n:08d}")
    patient = f.make_patient(org, name=name, birth=birth, verified=verified)
    f.link(account, patient)
    return Booker(account, patient)


def book(booker: Booker, session: ClinicSession, *, now: datetime = NOW, key: str = "", **kwargs):
    return services.book_appointment(
        actor=booker.actor,
        patient_id=booker.patient.pk,
        session_id=session.pk,
        idempotency_key=key,
        now=now,
        **kwargs,
    )


def shift(dt: datetime, **kwargs) -> datetime:
    return dt + timedelta(**kwargs)
