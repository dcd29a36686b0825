"""Call results (R7.3) and SMS reminders (R7.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from tests.chronic.factories import make_chronic_patient, make_follow_up, make_registry
from yilian.accounts.selectors import actor_for_user
from yilian.chronic import tasks
from yilian.chronic.errors import DateInFuture, RegistryClosed
from yilian.chronic.models import CallAttempt, Registry, Reminder
from yilian.chronic.selectors import worklists as wl
from yilian.chronic.services import worklists as services
from yilian.common import policy
from yilian.common.errors import NotFound
from yilian.common.models import AuditEvent
from yilian.notifications.models import SmsMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def village_doctor(community):
    return actor_for_user(f.make_staff(policy.VILLAGE_DOCTOR, community.village, name="村医").user)


def _overdue(
    org, days: int, today, *, phone="13900001111", consent=True, name="李建国", disease="htn", patient=None
):
    patient = patient or make_chronic_patient(org, name=name, phone=phone)
    return make_registry(
        patient=patient,
        disease=disease,
        registered_on=today - timedelta(days=800),
        next_follow_up_on=today - timedelta(days=days),
        reminder_consent=consent,
    )


# --- Call results -----------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "snooze_days"), [("reached", 30), ("remind_later", 7), ("no_answer", 1)])
def test_a_call_result_snoozes_the_registry_on_the_call_list(
    community, village_doctor, today, outcome, snooze_days
):
    registry = _overdue(community.village, 5, today)
    assert registry.pk in [r.registry_id for r in wl.worklist(village_doctor, wl.CALL).rows]

    call = services.record_call(
        actor=village_doctor, registry_id=registry.pk, outcome=outcome, note="儿子接的"
    )

    registry.refresh_from_db()
    assert registry.call_snoozed_until == today + timedelta(days=snooze_days)
    assert (call.outcome, call.called_on, call.note) == (outcome, today, "儿子接的")
    assert registry.status == Registry.Status.ACTIVE
    assert registry.pk not in [r.registry_id for r in wl.worklist(village_doctor, wl.CALL).rows]
    assert registry.pk in [r.registry_id for r in wl.worklist(village_doctor, wl.OVERDUE).rows]
    back = wl.worklist(village_doctor, wl.CALL, today=today + timedelta(days=snooze_days))
    assert registry.pk in [r.registry_id for r in back.rows]
    event = AuditEvent.objects.get(action="chronic.call")
    assert (event.patient_id, event.detail["outcome"]) == (registry.patient_id, outcome)


@pytest.mark.parametrize(("outcome", "reason"), [("moved", "moved_out"), ("died", "death")])
def test_moved_or_died_closes_the_registry(community, village_doctor, today, outcome, reason):
    registry = _overdue(community.village, 5, today)

    services.record_call(actor=village_doctor, registry_id=registry.pk, outcome=outcome)

    registry.refresh_from_db()
    assert (registry.status, registry.close_reason, registry.closed_on) == ("closed", reason, today)
    assert CallAttempt.objects.filter(registry=registry, outcome=outcome).count() == 1
    assert wl.worklist_counts(village_doctor) == dict.fromkeys(wl.KINDS, 0)


def test_a_bad_outcome_is_refused_and_nothing_is_written(community, village_doctor, today):
    registry = _overdue(community.village, 5, today)
    with pytest.raises(services.InvalidCallOutcome) as exc:
        services.record_call(actor=village_doctor, registry_id=registry.pk, outcome="hung_up")
    assert (exc.value.status, exc.value.field) == (422, "outcome")
    with pytest.raises(DateInFuture):
        services.record_call(
            actor=village_doctor, registry_id=registry.pk, outcome="reached", on=today + timedelta(days=1)
        )
    with pytest.raises(services.NoteTooLong):
        services.record_call(
            actor=village_doctor, registry_id=registry.pk, outcome="reached", note="长" * 201
        )
    assert not CallAttempt.objects.exists()
    registry.refresh_from_db()
    assert registry.call_snoozed_until is None


def test_another_villages_registry_looks_missing_and_a_closed_one_is_refused(community, staff_of, today):
    registry = _overdue(community.village, 5, today)
    other = actor_for_user(staff_of(policy.VILLAGE_DOCTOR, community.other_village).user)
    with pytest.raises(NotFound):
        services.record_call(actor=other, registry_id=registry.pk, outcome="died")
    with pytest.raises(NotFound):
        services.record_call(actor=other, registry_id=999_999, outcome="died")
    registry.refresh_from_db()
    assert registry.status == "active"

    township = actor_for_user(staff_of(policy.DOCTOR, community.township).user)
    services.record_call(actor=township, registry_id=registry.pk, outcome="died")
    with pytest.raises(RegistryClosed):
        services.record_call(actor=township, registry_id=registry.pk, outcome="reached")


# --- Reminders (R7.4) -------------------------------------------------------------------------


def _sms_to(phone: str) -> list[SmsMessage]:
    return [m for m in SmsMessage.objects.all() if m.phone == phone]


def test_reminder_once_per_planned_date_with_consent_and_at_least_3_days(community, village_doctor, today):
    due = _overdue(community.village, 3, today, phone="13900000001", name="王秀英")
    _overdue(community.village, 2, today, phone="13900000002")  # only 2 days
    _overdue(community.village, 10, today, phone="13900000003", consent=False)
    _overdue(community.village, 10, today, phone="")  # no phone
    _overdue(community.village, 400, today, phone="13900000005")  # lost (R7.3): not reminded

    assert services.send_due_reminders(actor=services.SYSTEM) == 1
    assert services.send_due_reminders(actor=services.SYSTEM) == 0

    [sms] = SmsMessage.objects.all()
    assert sms.phone == "13900000001"
    assert "王秀英" in sms.body and "高血压" in sms.body and community.village.name in sms.body
    reminder = Reminder.objects.get()
    assert (reminder.registry_id, reminder.planned_on, reminder.notification_id) == (
        due.pk,
        due.next_follow_up_on,
        sms.pk,
    )
    assert AuditEvent.objects.filter(action="chronic.reminder", patient_id=due.patient_id).count() == 1


def test_a_new_plan_that_is_missed_again_is_reminded_again(community, today):
    registry = _overdue(community.village, 20, today, phone="13900000001")
    assert services.send_due_reminders(actor=services.SYSTEM) == 1
    make_follow_up(
        registry, visit_on=today - timedelta(days=18), sbp=150, dbp=95, next_due_on=today - timedelta(days=4)
    )
    assert services.send_due_reminders(actor=services.SYSTEM) == 1
    assert Reminder.objects.filter(registry=registry).count() == 2


def test_one_sms_for_a_patient_with_two_due_registries(community, today):
    htn = _overdue(community.village, 5, today, phone="13900000001")
    dm = _overdue(community.village, 8, today, patient=htn.patient, disease="t2dm")
    assert services.send_due_reminders(actor=services.SYSTEM) == 1
    [sms] = SmsMessage.objects.all()
    assert "高血压" in sms.body and "2型糖尿病" in sms.body
    assert {r.registry_id for r in Reminder.objects.all()} == {htn.pk, dm.pk}


def test_a_doctor_reminds_only_within_their_own_scope(community, staff_of, today):
    _overdue(community.village, 5, today, phone="13900000001")
    _overdue(community.other_village, 5, today, phone="13900000002")
    other = actor_for_user(staff_of(policy.VILLAGE_DOCTOR, community.other_village).user)
    assert services.send_due_reminders(actor=other) == 1
    assert [m.phone for m in SmsMessage.objects.all()] == ["13900000002"]
    with pytest.raises(NotFound):
        services.send_due_reminders(actor=other, org_id=community.village.pk)


def test_the_daily_task_reminds_across_the_community(community, today):
    _overdue(community.village, 5, today, phone="13900000001")
    _overdue(community.other_village, 5, today, phone="13900000002")
    assert tasks.send_due_reminders_task.call() == 2


def test_reminders_cannot_be_sent_for_a_future_day(community, village_doctor, today):
    _overdue(community.village, 5, today)
    with pytest.raises(DateInFuture):
        services.send_due_reminders(actor=village_doctor, on=today + timedelta(days=4))
    assert not Reminder.objects.exists()
