"""The demo week (ops/demo/schedule.py) that ``yilian demo`` builds after the county."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from yilian.accounts.selectors import actor_for_user
from yilian.community.models import Department
from yilian.patients.models import FamilyLink
from yilian.scheduling import rules, services
from yilian.scheduling.models import Appointment, ClinicSession, Slot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo_county():
    call_command("demo", patients=400, seed=11, villages=10, verbosity=0)


def test_demo_builds_a_week_of_sessions_for_the_hospital_clinics(demo_county):
    today = timezone.localdate()
    sessions = ClinicSession.objects.select_related("department", "doctor")
    assert sessions.exists()
    assert {s.service_date for s in sessions} <= {today + timedelta(days=i) for i in range(7)}
    assert all(s.department.organisation.kind == "county_hospital" for s in sessions)
    assert not sessions.filter(department__name="急诊科").exists()
    clinical = Department.objects.filter(organisation__kind="county_hospital", kind="clinical").exclude(
        name="急诊科"
    )
    assert set(sessions.values_list("department_id", flat=True)) == set(clinical.values_list("pk", flat=True))
    assert set(sessions.values_list("period", flat=True)) == {rules.AM, rules.PM}
    assert not sessions.filter(service_date__week_day=1).exists()  # no Sunday clinics
    for s in sessions.filter(fee_class=rules.EXPERT)[:5]:
        assert s.doctor.title in ("chief_physician", "assoc_chief_physician")
        assert s.capacity == 3 * 8 if s.period == rules.AM else 3 * 6
    one = sessions.filter(fee_class=rules.GENERAL, period=rules.AM).first()
    segments = Counter((x.starts_at, x.ends_at) for x in one.slots.all())
    assert len(segments) == 8 and set(segments.values()) == {5}
    assert all(b - a == timedelta(minutes=30) for a, b in segments)
    assert one.slots.filter(pool=rules.REFERRAL).count() == 12  # 30% of 40 held for referrals (B-17)
    assert all(s.release_at == rules.release_at(s.service_date) for s in sessions)


def test_demo_bookings_are_consistent_and_the_service_books_on_top(demo_county):
    appointments = Appointment.objects.all()
    assert appointments.count() > 20
    booked_slots = Slot.objects.filter(status=rules.SLOT_BOOKED)
    assert booked_slots.count() == appointments.count()
    assert set(appointments.values_list("slot_id", flat=True)) == set(
        booked_slots.values_list("id", flat=True)
    )
    assert not appointments.values("patient").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert all(a.history.filter(to_status=rules.BOOKED).exists() for a in appointments[:20])
    assert not appointments.filter(
        slot__pool=rules.REFERRAL, slot__session__starts_at__gt=timezone.now() + timedelta(days=2)
    ).exists()
    # The demo sign-in's family has an open booking to show on the phone.
    demo_links = FamilyLink.objects.filter(account__phone_hash__isnull=False).order_by("id")[:2]
    assert appointments.filter(
        patient_id__in=[link.patient_id for link in demo_links], status=rules.BOOKED
    ).exists()
    # And the real booking service works on the demo rows.
    session = (
        ClinicSession.objects.filter(
            release_at__lte=timezone.now(), ends_at__gt=timezone.now() + timedelta(hours=1)
        )
        .order_by("-service_date")
        .first()
    )
    link = (
        FamilyLink.objects.filter(patient__realname_verified=True)
        .exclude(patient__appointments__isnull=False)
        .first()
    )
    booking = services.book_appointment(
        actor=actor_for_user(link.account.user),
        patient_id=link.patient_id,
        session_id=session.pk,
        idempotency_key="demo",
    )
    assert booking.created


def test_demo_week_is_the_same_for_the_same_seed():
    def snapshot():
        return sorted(
            Appointment.objects.values_list(
                "session__doctor__name", "service_date", "period", "slot__seq", "patient__name"
            )
        )

    call_command("demo", patients=200, seed=5, villages=8, verbosity=0)
    first = snapshot()
    call_command("demo", patients=200, seed=5, villages=8, verbosity=0, force=True)
    assert snapshot() == first
