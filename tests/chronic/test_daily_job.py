"""``yilian chronic_daily``, run once a day by ``yilian periodic``: R7.4 reminders and contract expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests import factories as f
from tests.chronic.factories import make_chronic_patient, make_registry
from yilian.chronic.models import FamilyDoctorContract, FamilyDoctorTeam, Reminder
from yilian.common import policy
from yilian.notifications.models import SmsMessage
from yilian.ops.management.commands import periodic

pytestmark = pytest.mark.django_db


def test_the_daily_job_reminds_overdue_patients_and_ends_expired_contracts(community):
    today = timezone.localdate()
    patient = make_chronic_patient(community.village, name="王秀英", phone="13900000001")
    make_registry(patient=patient, next_follow_up_on=today - timedelta(days=5), reminder_consent=True)
    doctor = f.make_staff(policy.VILLAGE_DOCTOR, community.village, name="村医")
    team = FamilyDoctorTeam.objects.create(organisation=community.village, name="一组", leader=doctor)
    contract = FamilyDoctorContract.objects.create(
        patient=patient,
        team=team,
        signed_on=today - timedelta(days=400),
        starts_on=today - timedelta(days=400),
        ends_on=today - timedelta(days=35),
    )

    call_command("chronic_daily", verbosity=0)

    assert Reminder.objects.filter(registry__patient=patient).count() == 1
    assert [m.phone for m in SmsMessage.objects.all()] == ["13900000001"]
    contract.refresh_from_db()
    assert contract.status == FamilyDoctorContract.Status.ENDED


def test_the_daily_job_is_scheduled_once_a_day():
    assert ("chronic_daily", 24 * 60 * periodic.MINUTE) in periodic.JOBS
