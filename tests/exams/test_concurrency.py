"""E-2 (atomicity as B-10) under real concurrent clients: N patients racing for one segment of k
places get exactly k appointments; the rest are told SLOT_UNAVAILABLE. Real concurrency needs
PostgreSQL (row locks, SKIP LOCKED); the sequential version runs in ``test_services.py``."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.conf import settings
from django.db import connections

from tests import factories as f
from yilian.exams import errors, rules, services
from yilian.exams.models import ExamAppointment, ExamSlot, PackageOrder

IS_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]
RACERS = 40

pytestmark = pytest.mark.skipif(
    not IS_POSTGRES,
    reason="needs concurrent writers: runs in the PostgreSQL pass (SQLite serialises writers; "
    "the sequential capacity tests are in test_services.py)",
)


def _race(jobs):
    out: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, job):
        barrier.wait()
        try:
            job()
            out[i] = "ok"
        except errors.SlotUnavailable as exc:
            out[i] = exc.code
        except Exception as exc:  # any other outcome fails the test
            out[i] = f"{type(exc).__name__}: {exc}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


@pytest.mark.django_db(transaction=True)
def test_forty_patients_race_for_one_segment(centre, concurrent_db):
    resource = centre.resources["CT1"]
    capacity = resource.capacity_per_segment
    start = centre.at(9)
    jobs = []
    for i in range(RACERS):
        patient = f.make_patient(
            centre.community.village, name=f"抢约{i}", id_number=f.valid_id(date(1960, 1, 1), seq=500 + i)
        )
        order = centre.order("CT-HEAD", patient=patient)

        def job(patient=patient, order=order):
            services.book_plan(
                actor=centre.nurse_actor,
                patient=patient,
                plan=[services.Choice(order.pk, resource.pk, start)],
            )

        jobs.append(job)
    out = _race(jobs)
    assert out.count("ok") == capacity, out
    assert out.count("SLOT_UNAVAILABLE") == RACERS - capacity, out
    booked = ExamAppointment.objects.filter(resource=resource, starts_at=start, status__in=rules.ACTIVE)
    assert booked.count() == capacity
    assert len(set(booked.values_list("slot_id", flat=True))) == capacity
    assert (
        ExamSlot.objects.filter(resource=resource, starts_at=start, status=rules.SLOT_BOOKED).count()
        == capacity
    )


@pytest.mark.django_db(transaction=True)
def test_package_daily_capacity_holds_under_a_race(centre, concurrent_db):
    package = centre.packages["PE-BASIC"]
    package.daily_capacity = 5
    package.save()
    jobs = []
    for i in range(30):
        patient = f.make_patient(
            centre.community.village, name=f"体检{i}", id_number=f.valid_id(date(1970, 2, 1), seq=700 + i)
        )

        def job(patient=patient):
            services.order_package(
                actor=centre.nurse_actor, patient=patient, package=package, service_date=centre.day
            )

        jobs.append(job)
    out = _race(jobs)
    assert out.count("ok") == 5, out
    assert set(out) == {"ok", "SLOT_UNAVAILABLE"}, out
    assert PackageOrder.objects.filter(package=package, service_date=centre.day, status="booked").count() == 5


@pytest.mark.django_db(transaction=True)
def test_racing_plans_are_all_or_nothing(centre, concurrent_db):
    """Twenty patients race with two-item plans (CT 1 at 09:00, 4 places; MR 1 at 10:30, 1 place),
    listed in either order: one plan books whole, the rest book nothing — no stray CT place."""
    ct1, mr1 = centre.resources["CT1"], centre.resources["MR1"]
    jobs = []
    for i in range(20):
        patient = f.make_patient(
            centre.community.village, name=f"方案{i}", id_number=f.valid_id(date(1955, 3, 1), seq=900 + i)
        )
        ct, mr = centre.order("CT-HEAD", patient=patient), centre.order("MR-HEAD", patient=patient)
        plan = [
            services.Choice(ct.pk, ct1.pk, centre.at(9)),
            services.Choice(mr.pk, mr1.pk, centre.at(10, 30)),
        ]
        if i % 2:
            plan.reverse()

        def job(patient=patient, plan=plan):
            services.book_plan(actor=centre.nurse_actor, patient=patient, plan=plan)

        jobs.append(job)
    out = _race(jobs)
    assert out.count("ok") == 1, out
    assert set(out) == {"ok", "SLOT_UNAVAILABLE"}, out
    assert ExamAppointment.objects.filter(status__in=rules.ACTIVE).count() == 2
    assert (
        ExamSlot.objects.filter(resource=ct1, starts_at=centre.at(9), status=rules.SLOT_BOOKED).count() == 1
    )
