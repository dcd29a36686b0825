"""The exam centre of the demo county: catalogue, resources, packages, open segments, and a day's
worth of orders (some already booked by the planner) so that the calendar looks like a real one.

The orders and bookings go through the exam services (so they obey every rule and are audited),
acting as the demo import, an integrating system of the county hospital: the audit log then names
no person, and ``yilian demo --force`` can still rebuild a demo database.
"""

from __future__ import annotations

import random
from datetime import date

from yilian.common import policy
from yilian.community.models import Organisation
from yilian.exams import catalogue
from yilian.patients.models import Patient

DEMO_EXAM_PATIENTS = 30


def build_exam_centre(*, seed: int, days: int = 14) -> dict[str, int]:
    counts = catalogue.seed(days=days)
    hospital = Organisation.objects.filter(kind=Organisation.Kind.COUNTY_HOSPITAL).order_by("path").first()
    if hospital is None:
        return counts
    demo_import = policy.Actor(
        kind="system",
        label="system:demo",
        assignments=(policy.Assignment(policy.INTEGRATION, hospital.pk, hospital.path),),
    )
    today = date.today()
    adults = Patient.objects.filter(
        status=Patient.Status.ACTIVE, birth_date__lte=today.replace(year=today.year - 18)
    ).order_by("id")[:DEMO_EXAM_PATIENTS]
    counts.update(
        catalogue.demo_activity(
            orderer=demo_import, desk=demo_import, patients=list(adults), rng=random.Random(seed)
        )
    )
    return counts
