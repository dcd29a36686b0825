"""Build the demo county in the database: organisations, staff, then patients in bulk.

The demo bypasses the services for speed (100,000 patients in batches of 2,000, written by
``rawinsert``: ``executemany`` on SQLite, ``COPY`` on PostgreSQL) but writes
rows of the same shape as ``patients.services.register_patient`` (identifiers encrypted by the
model field, blind indexes, last-4, area head and pinyin initials set the same way, one active
``YL`` + 16-digit card each), ``accounts.services`` (patient-account users ``p-<hex>`` with an
unusable password) and ``patients.family`` (family links with consent version and guardianship).

Everything is drawn from ``random.Random(seed)`` against a fixed reference date, so one seed
always gives the same county, people, ID numbers, phones and card numbers.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from django.apps import apps
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, transaction
from django.utils import timezone

from yilian.accounts.models import PatientAccount, User
from yilian.common import audit, crypto, pinyin
from yilian.common.models import AuditEvent
from yilian.community.models import Organisation
from yilian.ops.demo import county as county_mod
from yilian.ops.demo.people import Household, PeopleFactory, households
from yilian.ops.demo.rawinsert import RawTable
from yilian.patients import family
from yilian.patients.models import FamilyLink, HealthCard, Patient

AS_OF = date(2026, 1, 1)  # ages are counted from here, so a seed means the same people every day
BATCH = 2000
# Tables the demo may clear with --force: everything the project writes, except the audit log.
# Transient tables emptied with --force besides the people and organisations: sign-in sessions
# and queued background tasks (their arguments name rows that are about to go).
_TRANSIENT_APPS = {"sessions", "django_tasks_database"}


class DatabaseNotEmpty(RuntimeError):
    """The database already holds data; the demo refuses to mix with it."""


@dataclass
class DemoResult:
    seed: int
    patients: int = 0
    households: int = 0
    accounts: int = 0
    staff: int = 0
    organisations: int = 0
    villages: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def database_is_empty() -> bool:
    return not (Organisation.objects.exists() or User.objects.exists() or Patient.objects.exists())


def _rows_to_clear() -> list[tuple[type, list[str]]]:
    """Models whose rows depend on users or organisations, with the columns that say so.

    Users and organisations go entirely; so does every row that points at a row that goes
    (followed through the foreign-key graph). Reference data seeded by migrations (message
    templates, catalogues) points at neither and stays. ``[]`` columns means every row.
    """
    models = [
        m
        for m in apps.get_models(include_auto_created=True)
        if m is not AuditEvent and m._meta.managed and not m._meta.proxy
    ]
    doomed: dict[type, list[str]] = {User: [], Organisation: []}
    for m in models:
        if m._meta.app_config.label in _TRANSIENT_APPS:
            doomed[m] = []
    changed = True
    while changed:
        changed = False
        for m in models:
            if m in doomed and not doomed[m]:
                continue
            columns = [
                f.column
                for f in m._meta.concrete_fields
                if (f.many_to_one or f.one_to_one) and f.remote_field.model in doomed
            ]
            if columns and doomed.get(m) != columns:
                doomed[m] = columns
                changed = True
    return list(doomed.items())


def clear_database() -> None:
    """Delete the people and organisations (and all that hangs on them); keep the audit log.

    The audit log refuses deletion by design; when it names a user, that user cannot go either,
    so the caller is told to start from a fresh database instead.
    """
    if AuditEvent.objects.filter(actor__isnull=False).exists():
        raise DatabaseNotEmpty(
            "the audit log names existing users and is append-only, so this database cannot be emptied; "
            "start from a fresh one (remove var/yilian.sqlite3, or create a new PostgreSQL database)"
        )
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys are checked at commit (Django creates them DEFERRABLE INITIALLY DEFERRED),
        # so the order of the deletes does not matter.
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for model, columns in _rows_to_clear():
            where = " OR ".join(f"{quote(c)} IS NOT NULL" for c in columns)
            sql = f"DELETE FROM {quote(model._meta.db_table)}" + (f" WHERE {where}" if where else "")  # noqa: S608
            cursor.execute(sql)


def _chunks(items: Iterable[Household], size: int):
    chunk: list[Household] = []
    count = 0
    for house in items:
        chunk.append(house)
        count += len(house.members)
        if count >= size:
            yield chunk
            chunk, count = [], 0
    if chunk:
        yield chunk


def build_demo(
    *,
    patients: int,
    seed: int = 2026,
    villages: int = 400,
    password: str = county_mod.DEMO_PASSWORD,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Create the demo county and ``patients`` patients; refuse a non-empty database unless ``force``."""
    started = time.perf_counter()
    result = DemoResult(seed=seed)
    if not database_is_empty():
        if not force:
            raise DatabaseNotEmpty(
                "the database already holds organisations, users or patients; "
                "use --force to delete them and build the demo anyway"
            )
        clear_database()
    rng = random.Random(seed)
    with transaction.atomic():
        county = county_mod.build_organisations(rng, villages=villages)
        county = county_mod.build_staff(rng, county, as_of=AS_OF, password=password)
        result.timings["county"] = time.perf_counter() - started
        result.staff = county.staff_count
        result.villages = len(county.villages)
        result.organisations = 1 + len(county.townships) + len(county.villages)

        people = PeopleFactory(
            random.Random(rng.getrandbits(64)), as_of=AS_OF, max_members=family.FAMILY_BIND_MAX
        )
        village_of_login = county.logins["village"].organisation
        village_index = next(i for i, v in enumerate(county.villages) if v.org.pk == village_of_login.pk)
        first = people.demo_family(village_index, county_mod.DEMO_PATIENT_PHONE) if patients else None
        houses = households(
            people, patients=patients, villages=[v.weight for v in county.villages], first=first
        )
        now = timezone.now()
        initials: dict[str, str] = {}
        tables = _Tables(now)
        for chunk in _chunks(houses, BATCH):
            _write_households(chunk, county, people.rng, now, initials, tables)
            made = sum(len(h.members) for h in chunk)
            result.patients += made
            result.households += len(chunk)
            if progress:
                progress(made)
        result.accounts = result.households
        audit.record(
            None,
            "demo.generate",
            detail={
                "seed": seed,
                "patients": result.patients,
                "villages": result.villages,
                "staff": result.staff,
            },
        )
    result.seconds = time.perf_counter() - started
    result.timings["patients"] = result.seconds - result.timings["county"]
    return result


def _unusable_password() -> str:
    """What ``make_password(None)`` stores ("!" + 40 random characters), without its slow generator."""
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_hex(20)


class _Tables:
    """The five tables written per household batch, prepared once."""

    def __init__(self, now) -> None:
        self.users = RawTable(User, now=now, with_pk=True)
        self.accounts = RawTable(PatientAccount, now=now, with_pk=True)
        self.patients = RawTable(Patient, now=now, with_pk=True)
        self.links = RawTable(FamilyLink, now=now, with_pk=False)
        self.cards = RawTable(HealthCard, now=now, with_pk=False)


def _write_households(
    chunk: list[Household],
    county: county_mod.County,
    rng: random.Random,
    now,
    initials: dict[str, str],
    tables: _Tables,
) -> None:
    """One batch: a patient-account user and account per household, its patients, links and cards.

    Shapes: ``accounts.services._create_patient_account`` (user ``p-<hex>``, unusable password),
    ``patients.services.register_patient`` (identifiers, indexes, initials, card ``YL`` + 16
    digits), ``patients.family.bind_family_member`` (consent version, guardian of a minor child).
    """
    user_ids = tables.users.new_ids(len(chunk))
    tables.users.insert(
        [
            {
                "id": uid,
                "username": f"p-{rng.getrandbits(64):016x}",
                "kind": User.Kind.PATIENT,
                "password": _unusable_password(),
            }
            for uid in user_ids
        ]
    )
    account_ids = tables.accounts.new_ids(len(chunk))
    tables.accounts.insert(
        [
            {
                "id": aid,
                "user_id": uid,
                "phone": house.head.phone,
                "phone_hash": crypto.blind_index("phone", house.head.phone),
            }
            for aid, uid, house in zip(account_ids, user_ids, chunk, strict=True)
        ]
    )
    today = timezone.localdate(now)
    people = [
        (aid, house, person)
        for aid, house in zip(account_ids, chunk, strict=True)
        for person in house.members
    ]
    patient_ids = tables.patients.new_ids(len(people))
    patients, links, cards = [], [], []
    for pid, (aid, house, person) in zip(patient_ids, people, strict=True):
        org = county.villages[house.village].org
        number, phone = person.id_number, person.phone
        if person.name not in initials:
            initials[person.name] = pinyin.initials(person.name)
        patients.append(
            {
                "id": pid,
                "name": person.name,
                "name_initials": initials[person.name],
                "sex": person.sex,
                "birth_date": person.birth,
                "id_type": Patient.IdType.RESIDENT_ID,
                "id_number": number,
                "id_hash": crypto.blind_index("id", number),
                "id_last4": number[-4:],
                "id_head": number[:6],
                "phone": phone,
                "phone_hash": crypto.blind_index("phone", phone) if phone else "",
                "phone_last4": phone[-4:] if phone else "",
                "nationality": "CHN",
                "ethnicity": person.ethnicity,
                "province": org.province,
                "city": org.city,
                "county": org.county,
                "township": org.township,
                "village": org.village,
                "address_detail": house.address,
                "home_org_id": org.pk,
                "realname_verified": person.verified,
                "status": Patient.Status.ACTIVE,
            }
        )
        guardian = (
            family.age_on(person.birth, today) < family.ADULT_AGE
            and person.relationship in family.GUARDIAN_RELATIONSHIPS
        )
        links.append(
            {
                "account_id": aid,
                "patient_id": pid,
                "relationship": person.relationship,
                "is_guardian": guardian,
                "consent_version": family.CONSENT_VERSION,
                "consent_at": now,
            }
        )
        cards.append(
            {
                "patient_id": pid,
                "card_no": person.card_no,
                "status": HealthCard.Status.ACTIVE,
                "issued_at": now,
            }
        )
    tables.patients.insert(patients)
    tables.links.insert(links)
    tables.cards.insert(cards)
