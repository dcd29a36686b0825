"""Fixtures of the exam centre: the shipped catalogue at the county hospital, a doctor, the centre's
nurse and a patient with an account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.exams import catalogue, services
from yilian.exams.models import ExamPackage, ExamResource, ExamType


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def next_weekday(after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@dataclass
class Centre:
    community: object
    day: date  # the first working day after today, fully open
    types: dict
    resources: dict
    packages: dict
    doctor: object
    doctor_actor: object
    nurse: object
    nurse_actor: object
    patient: object
    account: object
    patient_actor: object

    def order(self, code: str, *, paid: bool = True, patient=None):
        order, _ = services.place_order(
            actor=self.doctor_actor,
            patient=patient or self.patient,
            exam_type=self.types[code],
            paid_or_covered=paid,
        )
        return order

    def at(self, hour: int, minute: int = 0, day: date | None = None):
        from yilian.exams import rules

        return rules.local_datetime(day or self.day, timezone.datetime(2000, 1, 1, hour, minute).time())


@pytest.fixture
def centre(community, staff_of) -> Centre:
    day = next_weekday(timezone.localdate())
    catalogue.seed(organisation=community.county, days=(day - timezone.localdate()).days + 3)
    doctor = staff_of("doctor", name="李医生")
    nurse = staff_of("nurse", name="预约中心护士")
    patient = f.make_patient(community.village, name="张三丰", phone="13900139000")
    account = f.make_patient_account("13900139000")
    f.link(account, patient)
    return Centre(
        community=community,
        day=day,
        types={t.code: t for t in ExamType.objects.all()},
        resources={r.code: r for r in ExamResource.objects.all()},
        packages={p.code: p for p in ExamPackage.objects.all()},
        doctor=doctor,
        doctor_actor=actor_for_user(doctor.user),
        nurse=nurse,
        nurse_actor=actor_for_user(nurse.user),
        patient=patient,
        account=account,
        patient_actor=actor_for_user(account.user),
    )
