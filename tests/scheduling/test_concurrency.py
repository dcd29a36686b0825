"""B-10 under real concurrent clients: N bookings for k numbers give exactly min(N, k).

Each thread is a separate client with its own database connection (``transactional_db``). Real
concurrency needs PostgreSQL (row locks, SKIP LOCKED); ``make test`` runs this file in its
PostgreSQL pass. On SQLite (one writer at a time) the same invariants are asserted with the same
attempts made one after another.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import time, timedelta

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import Count

from tests import factories as f
from tests.scheduling.factories import DAY, NOW, make_department, make_session
from yilian.accounts.models import PatientAccount, User
from yilian.accounts.selectors import actor_for_user
from yilian.common import crypto
from yilian.patients.models import FamilyLink, Patient
from yilian.scheduling import errors, rules, services
from yilian.scheduling.models import Appointment, Slot

PATIENTS = 200
PUBLIC_NUMBERS = 50
TWINS = 20  # patients who also fire a second, simultaneous request with the same idempotency key


def _patients(org, n: int) -> list[tuple[object, int]]:
    """n verified patients, each with its own account (bulk, like a real morning's users)."""
    users = User.objects.bulk_create(
        [User(username=f"rush{i}", kind=User.Kind.PATIENT, password="!") for i in range(n)]
    )
    accounts = PatientAccount.objects.bulk_create(
        [
            PatientAccount(user=u, phone=f"137{i:08d}", phone_hash=crypto.blind_index("phone", f"137{i:08d}"))
            for i, u in enumerate(users)
        ]
    )
    patients = []
    for i in range(n):
        number = f.valid_id(seq=100 + i)
        patients.append(
            Patient(
                name=f"患者{i}",
                name_initials="HZ",
                sex="M",
                birth_date=f.date(1980, 5, 17),
                id_number=number,
                id_hash=crypto.blind_index("id", number),
                id_last4=number[-4:],
                home_org=org,
                realname_verified=True,
            )
        )
    patients = Patient.objects.bulk_create(patients)
    FamilyLink.objects.bulk_create(
        [
            FamilyLink(account=a, patient=p, relationship="self", consent_version="2026-01", consent_at=NOW)
            for a, p in zip(accounts, patients, strict=True)
        ]
    )
    return [(actor_for_user(u), p.pk) for u, p in zip(users, patients, strict=True)]


IS_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _attempt(actor, patient_id, session_id, key, out, index, *, own_connection):
    try:
        booking = services.book_appointment(
            actor=actor, patient_id=patient_id, session_id=session_id, idempotency_key=key, now=NOW
        )
        out[index] = ("ok", booking.appointment.pk)
    except errors.SlotUnavailable as exc:
        out[index] = (exc.code, None)
    except Exception as exc:  # any other outcome is a failure of the test
        out[index] = (f"{type(exc).__name__}: {exc}", None)
    finally:
        if own_connection:
            connections.close_all()


@pytest.mark.django_db(transaction=IS_POSTGRES)
def test_two_hundred_clients_race_for_fifty_numbers(concurrent_db):
    county = f.make_org("海阳县人民医院", "county_hospital", code="RUSH01")
    # 72 numbers: 22 (30%, rounded up) reserved for referrals, 50 public.
    # Two days after NOW + 48 h: the referral reserve has not yet returned to the public pool.
    session = make_session(
        county,
        department=make_department(county),
        day=DAY + timedelta(days=2),
        windows=[(time(8), time(12), 72)],
    )
    assert session.slots.filter(pool=rules.PUBLIC).count() == PUBLIC_NUMBERS
    clients = _patients(county, PATIENTS)
    jobs = [(actor, pid, f"key-{i}") for i, (actor, pid) in enumerate(clients)]
    jobs += [(actor, pid, f"key-{i}") for i, (actor, pid) in enumerate(clients[:TWINS])]
    out: list = [None] * len(jobs)

    if connection.vendor == "postgresql":
        barrier = threading.Barrier(len(jobs))

        def run(i, job):
            barrier.wait()
            _attempt(*job[:2], session.pk, job[2], out, i, own_connection=True)

        threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    else:
        # SQLite serialises writers (and its shared in-memory test database takes no concurrent
        # writers): the same attempts, one after another, must give the same invariants.
        for i, job in enumerate(jobs):
            _attempt(*job[:2], session.pk, job[2], out, i, own_connection=False)

    outcomes = Counter(o[0] for o in out)
    assert set(outcomes) <= {"ok", "SLOT_UNAVAILABLE"}, outcomes
    booked = Appointment.objects.filter(session=session, status=rules.BOOKED)
    assert booked.count() == PUBLIC_NUMBERS
    assert not booked.values("slot").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not booked.filter(slot__pool=rules.REFERRAL).exists()
    assert Slot.objects.filter(session=session, status=rules.SLOT_BOOKED).count() == PUBLIC_NUMBERS
    assert Slot.objects.filter(session=session, status=rules.SLOT_FREE, pool=rules.PUBLIC).count() == 0
    # every winner's id is one of the 50; a twin got exactly what its original got
    ids = {o[1] for o in out if o[0] == "ok"}
    assert ids == set(booked.values_list("pk", flat=True))
    for i in range(TWINS):
        assert out[i] == out[PATIENTS + i], (i, out[i], out[PATIENTS + i])
    # every loser was told clearly that the numbers are gone
    assert outcomes["SLOT_UNAVAILABLE"] == PATIENTS + TWINS - outcomes["ok"]
    assert len({o[1] for o in out[:PATIENTS] if o[0] == "ok"}) == PUBLIC_NUMBERS

    # a retry with the same key returns the same booking
    winner = next(i for i in range(PATIENTS) if out[i][0] == "ok")
    actor, pid = clients[winner]
    again = services.book_appointment(
        actor=actor, patient_id=pid, session_id=session.pk, idempotency_key=f"key-{winner}", now=NOW
    )
    assert not again.created and again.appointment.pk == out[winner][1]
