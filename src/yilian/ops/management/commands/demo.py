"""``yilian demo --patients N [--seed S] [--villages V] [--force]``: build a demo county.

One county hospital, 15 township health centres, village clinics (400 by default), staff of every
role, fixed demo sign-ins, and N patients in households with patient accounts and e-health cards.
The same seed always builds the same county. A database that already holds data is refused
unless ``--force``, which first deletes the users and organisations and every row that hangs on
them (patients, cards, appointments …), keeping reference data and the append-only audit log.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from yilian.ops.demo import chronic, county, exams, schedule
from yilian.ops.demo.build import DatabaseNotEmpty, build_demo
from yilian.ops.demo.logins import logins_table


def _positive(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Build a demo county medical community with N patients (repeatable by seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--patients", type=_positive, default=2000, help="number of patients (default 2000)"
        )
        parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
        parser.add_argument(
            "--villages", type=_positive, default=400, help="village clinics (default 400; fewer for tests)"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="first delete the users, organisations and all that hangs on them (audit log kept)",
        )
        parser.add_argument(
            "--password",
            default=county.DEMO_PASSWORD,
            help="password of the fixed demo sign-ins (default: %(default)s)",
        )

    def handle(self, *args, **options) -> None:
        if options["villages"] < 1:
            raise CommandError("--villages must be at least 1")
        quiet = options["verbosity"] == 0
        bar = tqdm(total=options["patients"], unit="患者", disable=quiet, desc="demo", mininterval=0.5)
        try:
            result = build_demo(
                patients=options["patients"],
                seed=options["seed"],
                villages=options["villages"],
                password=options["password"],
                force=options["force"],
                progress=bar.update,
            )
        except DatabaseNotEmpty as exc:
            raise CommandError(f"yilian demo: {exc}") from exc
        finally:
            bar.close()
        schedule.build_week(seed=options["seed"])  # the outpatient week (出诊排班 and bookings)
        exams.build_exam_centre(seed=options["seed"])  # the exam centre's catalogue and calendar
        chronic.build_chronic(seed=options["seed"])  # a year of chronic-disease history (慢病管理)
        if quiet:
            return
        self.stdout.write(
            f"\nDemo county built in {result.seconds:.1f} s (seed {result.seed}): "
            f"{result.organisations} organisations ({result.villages} village clinics), "
            f"{result.staff} staff, {result.patients} patients in {result.households} households "
            f"with {result.accounts} patient accounts.\n"
        )
        self.stdout.write(logins_table(options["password"]))
