"""``yilian exams_seed [--days N]``: load the exam catalogue, resources, packages and open segments."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from yilian.exams import catalogue


class Command(BaseCommand):
    help = "Load the exam centre's reference data (catalogue, devices, packages) and open segments."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=14, help="days of segments to open from today")

    def handle(self, *args, days: int, **options):
        counts = catalogue.seed(days=max(0, min(days, 60)))
        self.stdout.write(
            "exams: {exam_types} exam types, {resources} resources, {packages} packages, {places} places".format(
                **counts
            )
        )
