"""Simultaneous clicks on 下一个 and sign-ins racing a call: the queue row lock applies them one
after another, so no patient is called twice, no call is lost, and the call ordinals (the Q-7
state) stay 1, 2, 3 … Real concurrency needs PostgreSQL; on SQLite (one writer at a time) the same
invariants are asserted with the same calls made one after another."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from tests.queueing.conftest import at
from yilian.queueing import rules, services
from yilian.queueing.models import Queue, QueueEntry, QueueEvent

CALLERS = 8


def _run_all(jobs):
    results: list = [None] * len(jobs)

    def run(i, job):
        try:
            results[i] = job()
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    if connection.vendor == "postgresql":
        barrier = threading.Barrier(len(jobs))

        def gated(i, job):
            barrier.wait()
            run(i, job)

        threads = [threading.Thread(target=gated, args=(i, job)) for i, job in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, job in enumerate(jobs):
            results[i] = job()
    return results


@pytest.mark.django_db(transaction=True)
def test_simultaneous_next_clicks_call_distinct_patients_in_order(flushable_db, clinic):
    for i in range(CALLERS + 2):
        _b, appointment = clinic.book(name=f"并发{i:02d}")
        clinic.sign_in(appointment, at(9, 30))
    queue = Queue.objects.get(session=clinic.session)
    actor = clinic.doctor_actor
    jobs = [lambda: services.call_next(actor=actor, queue_id=queue.pk, at=at(9, 40)) for _ in range(CALLERS)]
    results = _run_all(jobs)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    called = [r.pk for r in results]
    assert len(set(called)) == CALLERS
    queue.refresh_from_db()
    assert queue.calls == CALLERS
    ordinals = list(
        QueueEvent.objects.filter(queue=queue, kind=QueueEvent.Kind.CALLED).values_list("ordinal", flat=True)
    )
    assert sorted(ordinals) == list(range(1, CALLERS + 1))
    states = Counter(QueueEntry.objects.filter(queue=queue).values_list("state", flat=True))
    assert states == {rules.DONE: CALLERS - 1, rules.CALLED: 1, rules.WAITING: 2}
