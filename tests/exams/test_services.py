"""Exam centre services against a real database: E-1..E-5 and PE-1 (access.md §2, §6)."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.common.errors import InvalidInput, NotFound, PermissionDenied
from yilian.common.models import AuditEvent
from yilian.exams import errors, rules, services
from yilian.exams.models import ExamAppointment, ExamSlot, PackageOrder
from yilian.notifications.models import InboxMessage

pytestmark = pytest.mark.django_db


def choice(centre, order, resource_code, hour, minute=0, day=None):
    return services.Choice(order.pk, centre.resources[resource_code].pk, centre.at(hour, minute, day))


def test_only_a_doctor_or_an_integrating_system_places_orders(centre):
    with pytest.raises(PermissionDenied):
        services.place_order(
            actor=centre.nurse_actor, patient=centre.patient, exam_type=centre.types["CT-HEAD"]
        )
    order, created = services.place_order(
        actor=centre.doctor_actor,
        patient=centre.patient,
        exam_type=centre.types["CT-HEAD"],
        placer_number="A1",
    )
    again, created_again = services.place_order(
        actor=centre.doctor_actor,
        patient=centre.patient,
        exam_type=centre.types["CT-HEAD"],
        placer_number="A1",
    )
    assert created and not created_again and again.pk == order.pk
    assert order.status == rules.ORDER_ACTIVE
    assert AuditEvent.objects.filter(action="exams.order_place", object_id=str(order.pk)).exists()


def test_an_unpaid_or_revoked_order_cannot_be_booked(centre):
    unpaid = centre.order("CT-HEAD", paid=False)
    with pytest.raises(errors.OrderNotActive):
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, unpaid, "CT1", 9)]
        )
    revoked = centre.order("CT-CHEST")
    services.revoke_order(actor=centre.doctor_actor, order_id=revoked.pk)
    with pytest.raises(errors.OrderNotActive):
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, revoked, "CT1", 9)]
        )
    assert not ExamAppointment.objects.exists()
    # Unpaid orders are listed apart in the proposal, not planned.
    proposal = services.propose_plan(actor=centre.nurse_actor, patient=centre.patient)
    assert [o.pk for o in proposal.unpaid] == [unpaid.pk] and not proposal.plan.items


def test_one_active_appointment_per_order_and_rebooking_is_atomic(centre):
    order = centre.order("MR-HEAD")  # MR1: one place per segment
    first = services.book_plan(
        actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, order, "MR1", 9)]
    )[0]
    # A double submit of the same plan changes nothing.
    same = services.book_plan(
        actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, order, "MR1", 9)]
    )
    assert [a.pk for a in same] == [first.pk]
    # Rebooking cancels the previous appointment and frees its place, in one go.
    second = services.book_plan(
        actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, order, "MR1", 10)]
    )[0]
    first.refresh_from_db()
    assert first.status == rules.CANCELLED and first.cancel_reason == rules.REASON_RESCHEDULED
    assert ExamSlot.objects.get(pk=first.slot_id).status == rules.SLOT_FREE
    assert ExamAppointment.objects.filter(order=order, status__in=rules.ACTIVE).count() == 1
    # Rebooking into a full segment fails and leaves the current appointment untouched.
    other = f.make_patient(centre.community.village, name="李四", birth=date(1970, 1, 2))
    other_order = centre.order("MR-HEAD", patient=other)
    services.book_plan(actor=centre.nurse_actor, patient=other, plan=[choice(centre, other_order, "MR1", 11)])
    with pytest.raises(errors.SlotUnavailable):
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, order, "MR1", 11)]
        )
    second.refresh_from_db()
    assert second.status == rules.BOOKED
    assert ExamAppointment.objects.filter(order=order, status__in=rules.ACTIVE).get().pk == second.pk


def test_a_plan_breaking_a_preparation_rule_is_refused_whole(centre):
    barium, us = centre.order("GI-BA"), centre.order("US-ABD")
    plan = [choice(centre, barium, "RF1", 8), choice(centre, us, "US1", 10)]
    with pytest.raises(errors.ExamConflict) as caught:
        services.book_plan(actor=centre.nurse_actor, patient=centre.patient, plan=plan)
    body = caught.value.as_dict()
    assert body["code"] == "EXAM_CONFLICT" and {v["code"] for v in body["violations"]} >= {"gi_contrast"}
    assert not ExamAppointment.objects.exists()
    assert not ExamSlot.objects.filter(status=rules.SLOT_BOOKED).exists()
    # A fasting exam in the afternoon is refused too.
    with pytest.raises(errors.ExamConflict):
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, us, "US1", 14)]
        )


def test_a_new_booking_respects_the_patients_other_appointments(centre):
    ct = centre.order("CT-HEAD")
    services.book_plan(actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, ct, "CT1", 9)])
    ecg = centre.order("ECG-12")
    # CT in 医技楼 ends 09:30; the ECG room is in 门诊楼: 09:30 is too close (E-3, 30 min).
    with pytest.raises(errors.ExamConflict) as caught:
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, ecg, "ECG1", 9, 30)]
        )
    assert caught.value.as_dict()["violations"][0]["code"] == "site_gap"
    services.book_plan(
        actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, ecg, "ECG1", 10)]
    )


def test_propose_and_book_all_open_orders_on_one_day_with_preparation(centre):
    orders = [centre.order(c) for c in ("US-ABD", "GI-BA", "ES-GAS", "ECG-12")]
    proposal = services.propose_plan(actor=centre.patient_actor, patient=centre.patient)
    assert proposal.plan.optimal and len(proposal.plan.days) == 1
    placed = [
        rules.Placed(i.key, i.spec, i.candidate.start, i.candidate.end, i.candidate.site)
        for i in proposal.plan.items
    ]
    assert rules.violations(placed) == []
    sequence = [proposal.orders[i.key].exam_type.code for i in proposal.plan.items]
    assert sequence.index("US-ABD") < sequence.index("ES-GAS") < sequence.index("GI-BA")
    booked = services.book_plan(
        actor=centre.patient_actor, patient=centre.patient, plan=services.choices_from(proposal.plan)
    )
    assert {a.order_id for a in booked} == {o.pk for o in orders}
    assert all("禁食" in a.preparation for a in booked)
    assert "钡餐" in booked[0].preparation
    message = InboxMessage.objects.get(recipient=centre.account.user)
    assert "腹部超声" in message.body and "禁食" in message.body
    assert services.open_orders(centre.patient) == []


def test_bad_input_is_refused_before_anything_is_written(centre, community):
    order = centre.order("CT-HEAD")
    yesterday = timezone.localdate() - timedelta(days=1)
    with pytest.raises(InvalidInput):  # past
        services.book_plan(
            actor=centre.nurse_actor,
            patient=centre.patient,
            plan=[choice(centre, order, "CT1", 9, day=yesterday)],
        )
    with pytest.raises(InvalidInput):  # no such segment (CT1 has none at 07:00)
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, order, "CT1", 7)]
        )
    with pytest.raises(NotFound):  # no such resource
        services.book_plan(
            actor=centre.nurse_actor,
            patient=centre.patient,
            plan=[services.Choice(order.pk, 999999, centre.at(9))],
        )
    with pytest.raises(InvalidInput):  # the resource cannot do the exam
        services.book_plan(
            actor=centre.nurse_actor, patient=centre.patient, plan=[choice(centre, order, "US1", 9)]
        )
    # Another account's patient looks missing.
    stranger = f.make_patient_account("13700137000")
    with pytest.raises(NotFound):
        services.book_plan(
            actor=actor_for_user(stranger.user),
            patient=centre.patient,
            plan=[choice(centre, order, "CT1", 9)],
        )
    # An order of another patient cannot ride on this patient's plan.
    other = f.make_patient(community.village, name="王五", birth=date(1960, 3, 3))
    with pytest.raises(NotFound):
        services.book_plan(actor=centre.nurse_actor, patient=other, plan=[choice(centre, order, "CT1", 9)])
    assert not ExamAppointment.objects.exists()


def test_cancel_frees_the_place_and_reopens_the_order(centre):
    order = centre.order("MR-HEAD")
    appointment = services.book_plan(
        actor=centre.patient_actor, patient=centre.patient, plan=[choice(centre, order, "MR1", 9)]
    )[0]
    services.cancel_exam_appointment(actor=centre.patient_actor, appointment_id=appointment.pk)
    appointment.refresh_from_db()
    assert appointment.status == rules.CANCELLED and appointment.cancel_reason == rules.REASON_PATIENT
    assert ExamSlot.objects.get(pk=appointment.slot_id).status == rules.SLOT_FREE
    assert [o.pk for o in services.open_orders(centre.patient)] == [order.pk]


def test_segment_capacity_is_never_exceeded(centre):
    """Sequential on every database (the threaded race is ``test_concurrency.py``)."""
    capacity = centre.resources["CT1"].capacity_per_segment
    outcomes = []
    for i in range(capacity + 3):
        patient = f.make_patient(centre.community.village, name=f"患者{i}", birth=date(1970, 1, 1 + i))
        order = centre.order("CT-HEAD", patient=patient)
        try:
            services.book_plan(
                actor=centre.nurse_actor, patient=patient, plan=[choice(centre, order, "CT1", 9)]
            )
            outcomes.append("ok")
        except errors.SlotUnavailable:
            outcomes.append("full")
    assert outcomes.count("ok") == capacity and outcomes.count("full") == 3


def test_package_daily_capacity_and_eligibility(centre):
    day = centre.day
    women = centre.packages["PE-F"]
    with pytest.raises(errors.PackageNotEligible) as caught:
        services.order_package(
            actor=centre.patient_actor, patient=centre.patient, package=women, service_date=day
        )
    assert "妇科检查" in str(caught.value.message)
    elder = centre.packages["PE-ELDER"]
    with pytest.raises(errors.PackageNotEligible):  # born 1980: under 65
        services.order_package(
            actor=centre.patient_actor, patient=centre.patient, package=elder, service_date=day
        )
    basic = centre.packages["PE-BASIC"]
    basic.daily_capacity = 2
    basic.save()
    people = [centre.patient] + [
        f.make_patient(centre.community.village, name=f"体检{i}", birth=date(1975, 2, 1 + i))
        for i in range(2)
    ]
    results = []
    for p in people:
        try:
            services.order_package(actor=centre.nurse_actor, patient=p, package=basic, service_date=day)
            results.append("ok")
        except errors.SlotUnavailable:
            results.append("full")
    assert results == ["ok", "ok", "full"]
    assert PackageOrder.objects.filter(package=basic, service_date=day, status="booked").count() == 2
    with pytest.raises(InvalidInput):  # today or earlier
        services.order_package(
            actor=centre.nurse_actor, patient=people[2], package=basic, service_date=timezone.localdate()
        )
    message = InboxMessage.objects.filter(recipient=centre.account.user).latest("id")
    assert "空腹" in message.body or "禁食" in message.body


def test_seed_command_is_idempotent(centre):
    from django.core.management import call_command

    from yilian.exams.models import ExamResource, ExamType

    before = (ExamType.objects.count(), ExamResource.objects.count(), ExamSlot.objects.count())
    out = io.StringIO()
    call_command("exams_seed", days=3, stdout=out)
    assert "exam types" in out.getvalue()
    assert (ExamType.objects.count(), ExamResource.objects.count()) == before[:2]
    assert ExamSlot.objects.count() == before[2]


def test_a_plan_can_swap_two_appointments_in_full_segments(centre):
    """All places a plan gives up are freed before the new ones are claimed (E-1 atomic rebooking)."""
    head, spine = centre.order("MR-HEAD"), centre.order("MR-LS")  # MR1: one place per segment
    services.book_plan(
        actor=centre.nurse_actor,
        patient=centre.patient,
        plan=[choice(centre, head, "MR1", 9), choice(centre, spine, "MR1", 10)],
    )
    swapped = services.book_plan(
        actor=centre.nurse_actor,
        patient=centre.patient,
        plan=[choice(centre, head, "MR1", 10), choice(centre, spine, "MR1", 9)],
    )
    assert {(a.order_id, a.starts_at) for a in swapped} == {
        (head.pk, centre.at(10)),
        (spine.pk, centre.at(9)),
    }
    assert ExamAppointment.objects.filter(status__in=rules.ACTIVE).count() == 2


def test_demo_activity_fills_the_calendar_and_the_work_list(centre):
    import random

    from yilian.exams import catalogue

    patients = [centre.patient] + [
        f.make_patient(centre.community.village, name=f"演示{i}", birth=date(1965, 1, 1 + i))
        for i in range(5)
    ]
    from yilian.accounts.selectors import actor_for_user

    counts = catalogue.demo_activity(
        orderer=actor_for_user(centre.doctor.user),
        desk=actor_for_user(centre.nurse.user),
        patients=patients,
        rng=random.Random(1),
        booked_share=0.5,
    )
    assert counts["orders"] >= len(patients) and counts["appointments"] > 0
    assert ExamAppointment.objects.filter(status__in=rules.ACTIVE).count() == counts["appointments"]
