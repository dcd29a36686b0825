"""A year of chronic-disease history for the demo county (慢病管理演示数据): issue #4 item 7.

Among residents aged ≥35 (R1.1/R2.1), diseases are drawn with age-graded prevalence around the
county figures of chronic.md §11 (HTN ≈25 %, T2DM ≈10 %; a few CHD, stroke, COPD, cancer), and a
share of them is under management (HTN ≈55 %, T2DM ≈50 %): a registry at the patient's village
clinic (``home_org``) with one of its village doctors responsible, enrolled over the past years or
this year (some mid-year, R2.1 / IND-1 ``required``).

The last twelve months of follow-ups: most patients 3–5 visits a year at roughly three-month
intervals, some irregular, ≈10 % none (失访 — their last visit is older, so they show as lost,
R7.3); a re-check within two weeks after many an uncontrolled visit (R5.2); clinic, home and a few
phone visits (R2.2); two BP readings, FPG for diabetics, weight, adherence and drugs. A few urgent
readings, adverse reactions and complications; a few deaths and move-outs close registries
(§1 ``Registry``). Control lands around 45–60 %.

Every visit is evaluated by ``rules.evaluate_visit`` with the previous measured face-to-face visit
of the same registry (R3–R5, phone visits skipped as in ``followups._previous``), exactly as the
follow-up service would; referrals open one step up the path (village → township) with the
tracking date ``rules.referral_tracking_due`` and are tracked by the next visit on/after their day
(R7.2, as ``referrals.mark_tracked_by_follow_up``). The registry's plan columns come from its
latest visit (``followups._refresh_plan``). Rows are written in bulk (``rawinsert``), never by the
per-row services, then ``rollup.rebuild_all`` fills ``RegistryYear``.

Deterministic: one seed and one ``today`` give the same history (patients are read in id order;
ages and dates relative to ``today`` so that work lists are current on the day of the build).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from yilian.chronic import rules
from yilian.chronic.models import FollowUp, Referral, Registry, RegistryStatusHistory
from yilian.common import audit, policy
from yilian.community.models import Organisation, RoleAssignment
from yilian.ops.demo.rawinsert import RawTable
from yilian.patients.models import Patient

HTN, T2DM, CHD, STROKE, COPD, CANCER = (
    rules.HTN,
    rules.T2DM,
    rules.CHD,
    rules.STROKE,
    rules.COPD,
    rules.CANCER,
)
# Prevalence among residents aged ≥35 (chronic.md §11) and the share under management.
PREVALENCE = {HTN: 0.25, T2DM: 0.10, CHD: 0.03, STROKE: 0.02, COPD: 0.025, CANCER: 0.01}
MANAGED = {HTN: 0.55, T2DM: 0.50, CHD: 0.35, STROKE: 0.45, COPD: 0.25, CANCER: 0.30}
# Relative risk by age band (per decade from 35): chronic disease climbs steeply with age.
AGE_RISK = ((45, 0.35), (55, 0.7), (65, 1.2), (75, 1.6), (200, 1.8))
MIN_AGE = 35
WINDOW_DAYS = 365
LOST_SHARE = 0.10  # no follow-up in the last twelve months (失访)
IRREGULAR_SHARE = 0.15
DEATH_SHARE = 0.012
MOVED_SHARE = 0.010
SOURCES = [
    (Registry.DiagnosisSource.COUNTY_HOSPITAL, 40),
    (Registry.DiagnosisSource.TOWNSHIP, 25),
    (Registry.DiagnosisSource.SCREENING, 20),
    (Registry.DiagnosisSource.HIGHER_HOSPITAL, 10),
    (Registry.DiagnosisSource.TRANSFER_IN, 3),
    (Registry.DiagnosisSource.OTHER, 2),
]
HTN_DRUGS = [
    ("氨氯地平片", "qd", "5mg"),
    ("硝苯地平缓释片", "bid", "20mg"),
    ("厄贝沙坦片", "qd", "150mg"),
    ("缬沙坦胶囊", "qd", "80mg"),
    ("吲达帕胺片", "qd", "2.5mg"),
    ("美托洛尔缓释片", "qd", "47.5mg"),
]
DM_DRUGS = [("二甲双胍片", "tid", "0.5g"), ("格列美脲片", "qd", "2mg"), ("阿卡波糖片", "tid", "50mg")]
OTHER_DRUGS = {
    CHD: [("阿司匹林肠溶片", "qd", "100mg"), ("阿托伐他汀钙片", "qn", "20mg")],
    STROKE: [("阿司匹林肠溶片", "qd", "100mg"), ("瑞舒伐他汀钙片", "qn", "10mg")],
    COPD: [("噻托溴铵粉吸入剂", "qd", "18μg")],
    CANCER: [],
}
ADVICE = ["low_salt", "quit_smoking", "limit_alcohol", "exercise", "weight", "diet", "mood"]
URGENT_SYMPTOMS = {
    HTN: ["chest_tightness", "severe_headache_or_dizziness", "palpitations"],
    T2DM: ["polydipsia"],
}
BATCH = 5000


@dataclass
class ChronicResult:
    registries: int = 0
    by_disease: dict[str, int] = field(default_factory=dict)
    follow_ups: int = 0
    referrals: int = 0
    closed: int = 0
    rollup_rows: int | None = None
    seconds: float = 0.0


@dataclass
class _Reg:
    pk: int
    patient_id: int
    disease: str
    registered_on: date
    org_id: int
    doctor_id: int | None
    doctor_user_id: int | None
    closed_on: date | None = None
    close_reason: str = ""
    previous: rules.PreviousVisit | None = None
    last: dict[str, Any] | None = None  # the latest stored visit's plan columns
    last_classification: str = ""
    open_referrals: list[dict[str, Any]] = field(default_factory=list)


def _risk(age: int) -> float:
    return next(w for limit, w in AGE_RISK if age < limit)


class _FastTable(RawTable):
    """``RawTable`` with the per-column conversion decided once per table (dates, JSON, UUIDs), so a
    row costs a tuple and not one Python call per cell: the demo writes ~50,000 follow-ups.

    Stores what the ORM stores: dates as ISO text on SQLite (``adapt_datefield_value``), JSON as
    ``json.dumps`` text (``adapt_json_value``; PostgreSQL's COPY parses it into ``jsonb``), UUIDs as
    32 hex digits on SQLite (``UUIDField`` without a native type) and as text on PostgreSQL.
    """

    def __init__(self, model, *, now, with_pk: bool) -> None:
        super().__init__(model, now=now, with_pk=with_pk)
        sqlite = connection.vendor == "sqlite"
        self.converters: list[Callable[[Any], Any] | None] = []
        for f in self.fields:
            if isinstance(f, models.JSONField):
                self.converters.append(json.dumps)
            elif isinstance(f, models.UUIDField):
                self.converters.append((lambda u: u.hex) if sqlite else str)
            elif f.attname in self.dates and sqlite:
                self.converters.append(date.isoformat)
            else:
                self.converters.append(None)

    def insert(self, rows: list[dict[str, Any]]) -> None:
        plan = list(zip(self.attnames, self.converters, strict=True))
        defaults = self.defaults
        values = []
        for row in rows:
            cells = []
            for name, convert in plan:
                if name not in row:
                    cells.append(defaults[name])
                    continue
                value = row[name]
                cells.append(convert(value) if convert is not None and value is not None else value)
            values.append(tuple(cells))
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {self.quoted_table} ({self.columns}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join(["%s"] * len(self.attnames))
                cursor.executemany(
                    f"INSERT INTO {self.quoted_table} ({self.columns}) VALUES ({marks})",  # noqa: S608
                    values,
                )


class _Ids:
    """Primary keys handed out ahead of the insert: blocks of the PostgreSQL sequence; on SQLite one
    ``MAX(id)`` then counted here (the build's transaction holds the write lock)."""

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self.block: list[int] = []
        self.next_sqlite: int | None = None
        self.postgresql = connection.vendor == "postgresql"

    def take(self) -> int:
        if not self.postgresql:
            if self.next_sqlite is None:
                self.next_sqlite = self.table.new_ids(1)[0]
            self.next_sqlite += 1
            return self.next_sqlite - 1
        if not self.block:
            self.block = self.table.new_ids(BATCH)[::-1]
        return self.block.pop()


class _Writer:
    """Buffers rows and writes them in batches through ``RawTable`` (executemany / COPY)."""

    def __init__(self, now) -> None:
        self.registries = _FastTable(Registry, now=now, with_pk=True)
        self.history = _FastTable(RegistryStatusHistory, now=now, with_pk=False)
        self.follow_ups = _FastTable(FollowUp, now=now, with_pk=True)
        self.referrals = _FastTable(Referral, now=now, with_pk=False)
        self.follow_up_ids = _Ids(self.follow_ups)
        self.pending_fu: list[dict] = []
        self.pending_ref: list[dict] = []

    def flush(self, force: bool = False) -> None:
        if self.pending_fu and (force or len(self.pending_fu) >= BATCH):
            self.follow_ups.insert(self.pending_fu)
            self.pending_fu = []
        if self.pending_ref and (force or len(self.pending_ref) >= BATCH):
            self.referrals.insert(self.pending_ref)
            self.pending_ref = []


def _village_doctors() -> dict[int, list[tuple[int, int]]]:
    """Village clinic id → its village doctors as (staff id, user id), in id order."""
    doctors: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for org_id, staff_id, user_id in (
        RoleAssignment.objects.filter(role=policy.VILLAGE_DOCTOR, staff__is_active=True)
        .order_by("staff_id")
        .values_list("organisation_id", "staff_id", "staff__user_id")
    ):
        doctors[org_id].append((staff_id, user_id))
    return doctors


def build_chronic(*, seed: int = 2026, today: date | None = None) -> ChronicResult:
    """Build the county's registries, a year of follow-ups and referrals; then the year roll-ups."""
    started = time.perf_counter()
    today = today or timezone.localdate()
    rng = random.Random(seed ^ 0xC4_0_41C)
    result = ChronicResult()
    window_start = today - timedelta(days=WINDOW_DAYS)
    oldest_birth = date(today.year - MIN_AGE, today.month, min(today.day, 28))
    patients = list(
        Patient.objects.filter(status=Patient.Status.ACTIVE, birth_date__lte=oldest_birth)
        .order_by("id")
        .values_list("id", "birth_date", "sex", "home_org_id")
    )
    villages = dict(
        Organisation.objects.filter(kind=Organisation.Kind.VILLAGE_CLINIC).values_list("id", "parent_id")
    )
    doctors = _village_doctors()
    ages = [rules.age_on(birth, today) for _, birth, _, _ in patients]
    risks = [_risk(a) for a in ages]
    mean_risk = (sum(risks) / len(risks)) if risks else 1.0
    now = timezone.now()
    writer = _Writer(now)
    with transaction.atomic():
        registry_rows: list[dict] = []
        regs_of: dict[int, list[_Reg]] = {}
        plans: list[tuple[int, date, str, int, int]] = []
        for (pid, birth, _sex, home_org_id), age, risk in zip(patients, ages, risks, strict=True):
            if home_org_id not in villages:
                continue  # residents of the hospital or a township centre: not drawn here
            diseases = [
                d
                for d, prevalence in PREVALENCE.items()
                if rng.random() < min(0.9, prevalence * risk / mean_risk) and rng.random() < MANAGED[d]
            ]
            if not diseases:
                continue
            plans.append((pid, birth, ",".join(diseases), home_org_id, age))
        registry_ids = writer.registries.new_ids(sum(len(p[2].split(",")) for p in plans))
        ids = iter(registry_ids)
        for pid, birth, diseases_text, org_id, age in plans:
            staff = doctors.get(org_id) or [(None, None)]
            doctor_id, doctor_user_id = staff[rng.randrange(len(staff))]
            regs = []
            for disease in diseases_text.split(","):
                registered_on = _registered_on(rng, today, birth)
                diagnosed_on = registered_on - timedelta(days=rng.choice([0, 0, 3, 10, 30, 90, 200]))
                reg = _Reg(
                    pk=next(ids),
                    patient_id=pid,
                    disease=disease,
                    registered_on=registered_on,
                    org_id=org_id,
                    doctor_id=doctor_id,
                    doctor_user_id=doctor_user_id,
                )
                regs.append(reg)
                registry_rows.append(
                    {
                        "id": reg.pk,
                        "patient_id": pid,
                        "disease": disease,
                        "status": Registry.Status.ACTIVE,
                        "registered_on": registered_on,
                        "diagnosed_on": diagnosed_on,
                        "diagnosis_source": rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0],
                        "managing_org_id": org_id,
                        "responsible_doctor_id": doctor_id,
                        "high_risk": age >= 65 and rng.random() < 0.3,
                        "prior_cvd": disease in (CHD, STROKE) or rng.random() < 0.05,
                        "reminder_consent": rng.random() < 0.65,
                        "created_by_id": doctor_user_id,
                    }
                )
            regs_of[pid] = regs
            result.by_disease.update({r.disease: result.by_disease.get(r.disease, 0) + 1 for r in regs})

        births = {pid: birth for pid, birth, _, _ in patients}
        for pid, regs in regs_of.items():
            _history_of_patient(rng, pid, births[pid], regs, villages, today, window_start, writer, result)
            writer.flush()

        by_pk = {r["id"]: r for r in registry_rows}
        history = []
        for regs in regs_of.values():
            for reg in regs:
                row = by_pk[reg.pk]
                if reg.last is not None:
                    row["last_follow_up_on"] = reg.last["visit_on"]
                    row["next_follow_up_on"] = reg.last["next_due_on"]
                    row["last_classification"] = reg.last_classification
                history.append(
                    {
                        "registry_id": reg.pk,
                        "from_status": "",
                        "to_status": Registry.Status.ACTIVE,
                        "at": now,
                        "by_id": reg.doctor_user_id,
                        "reason": "enrol",
                    }
                )
                if reg.closed_on is not None:
                    row.update(
                        status=Registry.Status.CLOSED, closed_on=reg.closed_on, close_reason=reg.close_reason
                    )
                    history.append(
                        {
                            "registry_id": reg.pk,
                            "from_status": Registry.Status.ACTIVE,
                            "to_status": Registry.Status.CLOSED,
                            "at": now,
                            "by_id": reg.doctor_user_id,
                            "reason": reg.close_reason,
                        }
                    )
                    result.closed += 1
        for start in range(0, len(registry_rows), BATCH):
            writer.registries.insert(registry_rows[start : start + BATCH])
        for start in range(0, len(history), BATCH):
            writer.history.insert(history[start : start + BATCH])
        writer.flush(force=True)
        result.registries = len(registry_rows)
        result.rollup_rows = _rebuild_rollup()
        audit.record(
            None,
            "demo.chronic",
            detail={
                "seed": seed,
                "registries": result.registries,
                "follow_ups": result.follow_ups,
                "referrals": result.referrals,
            },
        )
    result.seconds = time.perf_counter() - started
    return result


def _rebuild_rollup() -> int | None:
    try:
        from yilian.chronic.services import rollup
    except ImportError:  # area E not there yet: the indicators then read no roll-ups
        return None
    return rollup.rebuild_all()


def _registered_on(rng: random.Random, today: date, birth: date) -> date:
    """Most registries are from past years; about one in six from this year (some mid-year)."""
    earliest = max(
        date(birth.year + MIN_AGE, birth.month, min(birth.day, 28)), today - timedelta(days=9 * 365)
    )
    this_year = rng.random() < 0.17 and today.timetuple().tm_yday > 20
    start = date(today.year, 1, 1) if this_year else earliest
    end = today - timedelta(days=10)
    if start > end:
        start = min(earliest, end)
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _history_of_patient(
    rng: random.Random,
    pid: int,
    birth: date,
    regs: list[_Reg],
    villages: dict[int, int | None],
    today: date,
    window_start: date,
    writer: _Writer,
    result: ChronicResult,
) -> None:
    """One patient's visits: a shared schedule, one row per active registry at each visit (R5.7)."""
    # The patient's usual chance of a visit at target; after a visit needing a re-check the drugs
    # were adjusted (R5.2), so the next one is more often at target.
    usual = 0.8 if rng.random() < 0.45 else 0.2
    chance = usual
    habit = rng.random()
    closed_on, reason = None, ""
    fate = rng.random()
    if fate < DEATH_SHARE:
        reason = Registry.CloseReason.DEATH
    elif fate < DEATH_SHARE + MOVED_SHARE:
        reason = Registry.CloseReason.MOVED_OUT
    first_registered = min(r.registered_on for r in regs)
    if reason:
        start = max(window_start, first_registered) + timedelta(days=1)
        if start < today:
            closed_on = start + timedelta(days=rng.randrange((today - start).days))
            for r in regs:
                r.closed_on, r.close_reason = max(closed_on, r.registered_on), reason
    end = min(today, closed_on) if closed_on else today
    weight = round(rng.gauss(64, 9), 1)
    height = round(rng.gauss(163, 7), 1)
    drugs = {r.disease: _drugs(rng, r.disease) for r in regs}
    adherence = rng.choices(["regular", "intermittent", "none"], [75, 20, 5])[0]

    if habit < LOST_SHARE:
        # 失访: the last visit is older than the window, so the plan is long overdue (R7.3).
        day = window_start - timedelta(days=rng.randint(20, 200))
        if day >= first_registered:
            _visit(
                rng,
                pid,
                birth,
                regs,
                day,
                "clinic",
                chance,
                weight,
                height,
                drugs,
                adherence,
                villages,
                writer,
                result,
            )
        return
    interval = 365 // rng.choice([3, 4, 4, 4, 5]) if habit >= LOST_SHARE + IRREGULAR_SHARE else None
    day = max(window_start, first_registered)
    if first_registered >= window_start and rng.random() < 0.6:
        pass  # the enrolment-day follow-up (R2.1)
    elif interval:
        day += timedelta(days=rng.randint(0, interval))
    else:
        day += timedelta(days=rng.randint(0, 150))
    visits = 0
    while day <= end:
        mode = rng.choices(["clinic", "home", "phone"], [62, 28, 10])[0]
        evaluated = _visit(
            rng,
            pid,
            birth,
            regs,
            day,
            mode,
            chance,
            weight,
            height,
            drugs,
            adherence,
            villages,
            writer,
            result,
        )
        visits += 1
        chance = min(0.9, usual + 0.15) if any(e is not None for e in evaluated) else usual
        if interval is None:
            if visits >= rng.choice([1, 2, 2]):
                break
            day += timedelta(days=rng.randint(90, 200))
            continue
        recheck = min((e for e in evaluated if e is not None), default=None)
        if recheck is not None and recheck < day + timedelta(days=interval) and rng.random() < 0.45:
            day = recheck + timedelta(days=rng.randint(0, 7))
        else:
            day += timedelta(days=interval + rng.randint(-15, 15))


def _drugs(rng: random.Random, disease: str) -> list[dict]:
    pool = HTN_DRUGS if disease == HTN else DM_DRUGS if disease == T2DM else OTHER_DRUGS.get(disease, [])
    if not pool:
        return []
    chosen = rng.sample(pool, k=min(len(pool), rng.choice([1, 1, 2])))
    return [{"name": n, "frequency": f, "dose": d} for n, f, d in chosen]


def _readings(rng: random.Random, diseases: set[str], controlled: bool, mode: str) -> dict[str, Any]:
    if mode == "phone":
        return {}
    values: dict[str, Any] = {}
    urgent = rng.random() < 0.008
    if urgent:
        sbp, dbp = rng.randint(180, 200), rng.randint(95, 115)
    elif controlled:
        sbp, dbp = round(rng.gauss(129, 9)), round(rng.gauss(79, 6))
    else:
        sbp, dbp = round(rng.gauss(150, 11)), round(rng.gauss(91, 7))
    sbp = max(95, min(230, sbp))
    dbp = max(55, min(sbp - 20, dbp))
    values.update(sbp=sbp, dbp=dbp, heart_rate=rng.randint(58, 96))
    if rng.random() < 0.7:
        values.update(
            sbp2=max(90, sbp + rng.randint(-6, 6)), dbp2=max(50, min(sbp - 20, dbp + rng.randint(-4, 4)))
        )
    if T2DM in diseases:
        if rng.random() < 0.004:
            fpg = rng.uniform(16.8, 20.0)
        elif controlled:
            fpg = rng.gauss(6.2, 0.5)
        else:
            fpg = rng.gauss(8.6, 1.4)
        values["fpg_mmol"] = Decimal(str(round(max(3.0, min(25.0, fpg)), 1)))
    return values


def _visit(
    rng: random.Random,
    pid: int,
    birth: date,
    regs: list[_Reg],
    day: date,
    mode: str,
    chance: float,
    weight: float,
    height: float,
    drugs: dict[str, list[dict]],
    adherence: str,
    villages: dict[int, int | None],
    writer: _Writer,
    result: ChronicResult,
) -> list[date | None]:
    """One visit: evaluate and store one follow-up per registry active that day (R3–R5, R5.7)."""
    active = [r for r in regs if r.registered_on <= day and (r.closed_on is None or day <= r.closed_on)]
    if not active:
        return []
    state = rng.random() < chance
    readings = _readings(rng, {r.disease for r in active}, state, mode)
    age = rules.age_on(birth, day)
    symptoms: list[str] = []
    if mode != "phone" and rng.random() < 0.006:
        symptoms = [rng.choice(URGENT_SYMPTOMS[T2DM if active[0].disease == T2DM else HTN])]
    adr = rng.random() < 0.02
    flags = {
        "adr": adr,
        "adr_uncontrollable": adr and rng.random() < 0.15,
        "new_complication": rng.random() < 0.004,
        "complication_worsened": rng.random() < 0.003,
    }
    visit_key = uuid.UUID(int=rng.getrandbits(128), version=4)
    advice = sorted(rng.sample(ADVICE, k=rng.randint(1, 3)))
    waist = round(weight * 1.3 + rng.gauss(0, 3), 1)
    sbp, dbp = readings.get("sbp"), readings.get("dbp")
    if readings.get("sbp2") is not None:  # the rules see the mean of two readings (followups.evaluation_bp)
        sbp = (readings["sbp"] + readings["sbp2"] + 1) // 2
        dbp = (readings["dbp"] + readings["dbp2"] + 1) // 2
    nexts: list[date | None] = []
    for reg in active:
        evaluation = rules.evaluate_visit(
            rules.VisitInput(
                disease=reg.disease,
                visit_on=day,
                mode=mode,
                age=age,
                sbp=sbp,
                dbp=dbp,
                fpg_mmol=readings.get("fpg_mmol"),
                heart_rate=readings.get("heart_rate"),
                symptoms=frozenset(symptoms),
                **flags,
            ),
            reg.previous,
            rules.DEFAULTS,
            current_plan=reg.last["next_due_on"] if reg.last else None,
        )
        row = {
            "registry_id": reg.pk,
            "patient_id": pid,
            "disease": reg.disease,
            "organisation_id": reg.org_id,
            "visit_key": visit_key,
            "visit_on": day,
            "mode": mode,
            **{k: readings.get(k) for k in ("sbp", "dbp", "sbp2", "dbp2", "fpg_mmol", "heart_rate")},
            "weight_kg": Decimal(str(weight)) if mode != "phone" else None,
            "height_cm": Decimal(str(height)) if mode != "phone" else None,
            "waist_cm": Decimal(str(waist)) if mode != "phone" else None,
            "symptoms": symptoms,
            **flags,
            "adherence": adherence,
            "medications": drugs.get(reg.disease, []),
            "lifestyle": {"advice": advice},
            "age_at_visit": age,
            "bp_at_target": evaluation.bp_at_target,
            "fpg_at_target": evaluation.fpg_at_target,
            "classification": evaluation.classification,
            "urgent": evaluation.urgent,
            "referral": evaluation.referral,
            "referral_reasons": list(evaluation.referral_reasons),
            "rules_fired": list(evaluation.rules_fired),
            "urgent_signs": list(evaluation.urgent_signs),
            "next_due_on": evaluation.next_due_on,
            "recorded_by_id": reg.doctor_user_id,
        }
        row["id"] = writer.follow_up_ids.take()
        writer.pending_fu.append(row)
        result.follow_ups += 1
        # R7.2: this visit tracks the registry's open referrals opened on or before it.
        for referral in reg.open_referrals:
            referral.update(status=Referral.Status.TRACKED, tracked_on=day, outcome=f"follow_up:{row['id']}")
        reg.open_referrals = []
        if evaluation.referral != FollowUp.Referral.NONE:
            referral = {
                "patient_id": pid,
                "disease": reg.disease,
                "registry_id": reg.pk,
                "follow_up_id": row["id"],
                "kind": evaluation.referral,
                "reasons": list(evaluation.referral_reasons),
                "rules_fired": list(evaluation.rules_fired),
                "from_org_id": reg.org_id,
                "to_org_id": villages.get(reg.org_id) or reg.org_id,
                "status": Referral.Status.OPEN,
                "opened_on": day,
                "tracking_due_on": rules.referral_tracking_due(day),
                "created_by_id": reg.doctor_user_id,
            }
            writer.pending_ref.append(referral)
            reg.open_referrals.append(referral)
            result.referrals += 1
        measured = evaluation.fpg_at_target if reg.disease == T2DM else evaluation.bp_at_target
        if mode in rules.FACE_TO_FACE and measured is not None:
            reg.previous = rules.PreviousVisit(visit_on=day, at_target=measured)
        reg.last = {"visit_on": day, "next_due_on": evaluation.next_due_on}
        if evaluation.classification:
            reg.last_classification = evaluation.classification
        nexts.append(evaluation.next_due_on if evaluation.next_due_on - day <= timedelta(days=14) else None)
    return nexts
