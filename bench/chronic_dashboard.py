"""Chronic-disease dashboard on PostgreSQL: a county of 200,000 registries and 2,000,000 follow-ups.

Not a test: it prints figures. ``.venv/bin/python bench/chronic_dashboard.py [--htn 150000 --dm 50000
--follow-ups 2000000 --runs 5]``

1. A throwaway PostgreSQL server (``yilian.ops.pgtmp``), migrated.
2. A county tree: one county hospital, ``--townships`` (15) township centres with ``--villages``
   (27) village clinics each; patients spread over the villages (HTN on the first ``--htn``
   patients, T2DM on ``--dm`` patients of which a quarter also have HTN); registrations over the
   last seven years, 3 % closed (death / moved out); ``--follow-ups`` follow-ups over the last two
   years (clinic 85 %, home 8 %, phone 7 %), BP and FPG drawn so that 40–60 % are at target, the
   evaluation columns filled as the rules would (R4.1 age-adjusted, R4.2), the registries' plan
   columns (last / next follow-up) set from their latest visit. All set-based SQL
   (``INSERT … SELECT … generate_series``): timed as ``generate_s``.
3. The year roll-up ``services.rollup.rebuild_all()`` (timed as ``rollup_s``).
4. Measures, each the median of ``--runs`` runs:
   - the county-wide national indicator set (IND-1..IND-5) for last calendar year (roll-up path);
   - the same county for this year to date (an arbitrary period: computed from the follow-ups);
   - the breakdown of last year by township (one grouped query);
   - the Simple/HEARTS shares (SIM-4/SIM-5) of the county for last month, and its 12-month trend
     with a cold cache (once);
   - a village doctor's overdue list (``selectors.worklists.worklist(actor, "overdue")``, page 1,
     ``--worklist-runs`` look-ups over 20 doctors in different villages): p50 and p99.

``--covering-index`` also builds a candidate index on follow-ups (``visit_on, registry_id`` INCLUDE
the read columns) and VACUUMs, to measure it: it did not speed up the Simple/HEARTS or
custom-period queries on the reference run, so there is no such index in the migrations.

Ends with one JSON line (ARCHITECTURE.md "Where the figures go"). On a shared machine the figures
measure the neighbours too: the load average is printed next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def _timed(fn, runs: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def build_tree(townships: int, villages: int):
    from yilian.community.models import Organisation

    common = {"province": "山东省", "city": "烟台市", "county": "海阳县"}
    county = Organisation.objects.create(
        code="BENCH-COUNTY", name="海阳县人民医院", kind="county_hospital", path="0001.", depth=0, **common
    )
    towns, vills = [], []
    for t in range(1, townships + 1):
        town = Organisation.objects.create(
            code=f"BT{t:03d}",
            name=f"第{t}乡镇卫生院",
            kind="township_centre",
            parent=county,
            path=f"0001.{t:04d}.",
            depth=1,
            township=f"第{t}镇",
            **common,
        )
        towns.append(town)
        batch = [
            Organisation(
                code=f"BV{t:03d}{v:03d}",
                name=f"第{t}镇{v}村卫生室",
                kind="village_clinic",
                parent=town,
                path=f"{town.path}{v:04d}.",
                depth=2,
                township=f"第{t}镇",
                village=f"{v}村",
                **common,
            )
            for v in range(1, villages + 1)
        ]
        vills.extend(Organisation.objects.bulk_create(batch))
    return county, towns, vills


GENERATE = [
    # patients: spread evenly over the villages; one ciphertext for every ID (never read here)
    """
    INSERT INTO patients_patient (name, name_initials, sex, birth_date, id_type, id_number, id_hash, id_last4,
        id_head, phone, phone_hash, phone_last4, nationality, ethnicity, province, city, county, township, village,
        address_detail, home_org_id, realname_verified, status, merged_into_id, created_at, updated_at)
    SELECT (ARRAY['王','李','张','刘','陈','杨','赵','黄','周','吴'])[1 + g %% 10]
             || (ARRAY['秀','建','国','淑','志','桂','玉','明','海','德'])[1 + (g / 10) %% 10]
             || (ARRAY['英','华','兰','军','芳','林','珍','强','平','荣'])[1 + (g / 100) %% 10],
           'wxy', CASE WHEN g %% 2 = 0 THEN 'F' ELSE 'M' END,
           DATE '1935-01-01' + (random() * 18000)::int,
           'resident_id', %(cipher)s, md5('bench' || g), lpad((g %% 10000)::text, 4, '0'), '370687',
           '', '', '', 'CHN', '', '山东省', '烟台市', '海阳县', '', '', '',
           v.id, true, 'active', NULL, now(), now()
    FROM generate_series(1, %(patients)s) g
    JOIN bench_villages v ON v.rn = 1 + (g %% %(villages)s)
    """,
    # registries: HTN on patients 1..htn, T2DM on the last dm patients (a quarter overlap HTN)
    """
    INSERT INTO chronic_registry (patient_id, disease, status, registered_on, diagnosed_on, diagnosis_source,
        managing_org_id, responsible_doctor_id, high_risk, prior_cvd, reminder_consent, closed_on, close_reason,
        last_follow_up_on, next_follow_up_on, last_classification, call_snoozed_until, created_by_id,
        created_at, updated_at)
    SELECT p.id, d.disease, 'active', r.day, r.day, 'county_hospital', p.home_org_id, NULL,
           random() < 0.08, random() < 0.05, random() < 0.6, NULL, '', NULL, NULL, '', NULL, NULL, now(), now()
    FROM (SELECT id, home_org_id, row_number() OVER (ORDER BY id) AS n FROM patients_patient) p
    CROSS JOIN (VALUES ('htn'), ('t2dm')) d(disease)
    CROSS JOIN LATERAL (SELECT %(today)s::date - (random() * 2555 + p.n * 0)::int AS day) r
    WHERE (d.disease = 'htn' AND p.n <= %(htn)s) OR (d.disease = 't2dm' AND p.n > %(patients)s - %(dm)s)
    """,
    """
    UPDATE chronic_registry SET status = 'closed',
        closed_on = registered_on + ((%(today)s::date - registered_on) * random())::int,
        close_reason = CASE WHEN random() < 0.6 THEN 'death' ELSE 'moved_out' END
    WHERE random() < 0.03
    """,
    """
    CREATE TEMP TABLE bench_registries AS
    SELECT row_number() OVER (ORDER BY r.id) AS rn, r.id, r.patient_id, r.disease, r.managing_org_id,
           GREATEST(r.registered_on, %(today)s::date - 730) AS lo,
           GREATEST(COALESCE(r.closed_on, %(today)s::date), r.registered_on, %(today)s::date - 730) AS hi, p.birth_date
    FROM chronic_registry r JOIN patients_patient p ON p.id = r.patient_id
    """,
    """
    INSERT INTO chronic_followup (registry_id, patient_id, disease, organisation_id, visit_key, visit_on, mode,
        sbp, dbp, sbp2, dbp2, fpg_mmol, glucose_any_mmol, heart_rate, temperature_c, height_cm, weight_kg, waist_cm,
        symptoms, pregnant_or_lactating, unmanageable_other_disease, adr, adr_uncontrollable, new_complication,
        complication_worsened, adherence, medications, lifestyle, note, age_at_visit, bp_at_target, fpg_at_target,
        classification, urgent, referral, referral_reasons, rules_fired, next_due_on, client_uuid, recorded_by_id,
        recorded_at)
    SELECT v.id, v.patient_id, v.disease, v.managing_org_id, gen_random_uuid(), v.day, v.mode,
           v.sbp, v.dbp, NULL, NULL, v.fpg, NULL, 60 + (random() * 40)::int, NULL, NULL, NULL, NULL,
           '[]'::jsonb, false, false, false, false, false, false, 'regular', '[]'::jsonb, '{}'::jsonb, '',
           v.age, v.bp_ok, v.fpg_ok,
           CASE WHEN v.mode = 'phone' THEN ''
                WHEN (CASE WHEN v.disease = 'htn' THEN v.bp_ok ELSE v.fpg_ok END) THEN 'satisfied'
                ELSE 'unsatisfied' END,
           false, 'none', '[]'::jsonb, '[]'::jsonb,
           v.day + CASE WHEN (CASE WHEN v.disease = 'htn' THEN v.bp_ok ELSE v.fpg_ok END) IS FALSE
                        THEN 14 ELSE 90 END,
           NULL, NULL, now()
    FROM (
        SELECT b.*, s.day, s.mode, s.age,
               CASE WHEN s.mode <> 'phone' THEN s.sbp END AS sbp, CASE WHEN s.mode <> 'phone' THEN s.dbp END AS dbp,
               CASE WHEN s.mode <> 'phone' AND b.disease = 't2dm' THEN s.fpg END AS fpg,
               CASE WHEN s.mode = 'phone' THEN NULL
                    ELSE s.sbp < CASE WHEN s.age >= 65 THEN 150 ELSE 140 END AND s.dbp < 90 END AS bp_ok,
               CASE WHEN s.mode = 'phone' OR b.disease <> 't2dm' THEN NULL ELSE s.fpg < 7.0 END AS fpg_ok
        FROM (SELECT g, 1 + floor(random() * %(registries)s)::int AS rn, random() AS u, random() AS w,
                     random() AS x, random() AS y
              FROM generate_series(1, %(follow_ups)s) g) q
        JOIN bench_registries b ON b.rn = q.rn
        CROSS JOIN LATERAL (
            SELECT b.lo + floor(q.u * (b.hi - b.lo + 1))::int AS day,
                   CASE WHEN q.w < 0.85 THEN 'clinic' WHEN q.w < 0.93 THEN 'home' ELSE 'phone' END AS mode,
                   (118 + q.x * 42 + (q.y - 0.5) * 10)::int AS sbp,
                   (66 + q.y * 30)::int AS dbp,
                   round((4.8 + q.x * 4.6)::numeric, 1) AS fpg,
                   date_part('year', age(b.lo + floor(q.u * (b.hi - b.lo + 1))::int, b.birth_date))::int AS age
        ) s
    ) v
    """,
    """
    UPDATE chronic_registry r SET last_follow_up_on = x.day, next_follow_up_on = x.next_due_on,
        last_classification = x.classification
    FROM (SELECT DISTINCT ON (registry_id) registry_id, visit_on AS day, next_due_on, classification
          FROM chronic_followup ORDER BY registry_id, visit_on DESC, id DESC) x
    WHERE x.registry_id = r.id
    """,
    "ANALYZE",
]


COVERING_INDEX = """
    CREATE INDEX bench_follow_up_window ON chronic_followup (visit_on, registry_id)
    INCLUDE (id, mode, sbp, dbp, fpg_mmol, bp_at_target, fpg_at_target)
"""


def generate(args, today: date, villages) -> dict:
    from django.db import connection

    from yilian.common import crypto

    patients = args.htn + args.dm - args.dm // 4
    params = {
        "cipher": crypto.encrypt("370687195801011234"),
        "patients": patients,
        "villages": len(villages),
        "htn": args.htn,
        "dm": args.dm,
        "today": today,
        "registries": args.htn + args.dm,
        "follow_ups": args.follow_ups,
    }
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.42)")
        cur.execute("CREATE TEMP TABLE bench_villages (rn int PRIMARY KEY, id bigint)")
        cur.executemany(
            "INSERT INTO bench_villages VALUES (%s, %s)", [(k + 1, v.pk) for k, v in enumerate(villages)]
        )
        for sql in GENERATE:
            cur.execute(sql, params)
        cur.execute("SELECT COUNT(*) FROM chronic_registry")
        registries = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM chronic_followup")
        follow_ups = cur.fetchone()[0]
    return {"patients": patients, "registries": registries, "follow_ups": follow_ups}


def make_doctors(villages, n: int, seed: int = 7):
    from yilian.accounts.models import User
    from yilian.accounts.selectors import actor_for_user
    from yilian.community.models import RoleAssignment, Staff

    rng = random.Random(seed)
    actors = []
    for k, village in enumerate(rng.sample(list(villages), min(n, len(villages)))):
        user = User.objects.create_user(username=f"bench-vd{k}", password=None, kind=User.Kind.STAFF)
        staff = Staff.objects.create(user=user, name="村医", organisation=village)
        RoleAssignment.objects.create(staff=staff, role="village_doctor", organisation=village)
        actors.append(actor_for_user(user))
    return actors


def overdue_lookup(today: date):
    """D's overdue list if it is there; else the same query on Registry (managing_org + next_follow_up_on)."""
    try:
        from yilian.chronic.selectors.worklists import worklist

        return "selectors.worklists.worklist(actor, 'overdue')", lambda actor: worklist(
            actor, "overdue", today=today
        )
    except ImportError:
        from yilian.chronic.models import Registry
        from yilian.common import policy
        from yilian.community.models import Organisation

        def fallback(actor):
            paths = policy.scope_paths(actor, policy.CHRONIC_MANAGE)
            ids = list(Organisation.objects.filter(path__startswith=paths[0]).values_list("pk", flat=True))
            qs = Registry.objects.filter(
                status="active",
                managing_org_id__in=ids,
                next_follow_up_on__lt=today,
                next_follow_up_on__gte=today - timedelta(days=365),
            ).select_related("patient")
            return list(qs.order_by("-high_risk", "-next_follow_up_on", "id")[:50])

        return "fallback Registry query (managing_org + next_follow_up_on)", fallback


def measure(args, county, towns, villages, today: date) -> dict:
    from yilian.chronic.selectors import indicators as ind
    from yilian.chronic.services.rollup import rebuild_all

    out: dict = {}
    t0 = time.perf_counter()
    rows = rebuild_all()
    out["rollup_s"] = time.perf_counter() - t0
    out["rollup_rows"] = rows
    year = ind.Period(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))
    ytd = ind.Period(date(today.year, 1, 1), today)
    out["county_indicators_s"], out["county_runs"], result = _timed(
        lambda: ind.national_indicators(county, year), args.runs
    )
    out["indicators"] = {
        d: {k: (str(v) if v is not None else None) for k, v in figs.items() if k != "codes"}
        for d, figs in result.diseases.items()
    }
    out["county_ytd_indicators_s"], _, _ = _timed(lambda: ind.national_indicators(county, ytd), args.runs)
    out["township_breakdown_s"], _, breakdown = _timed(lambda: ind.breakdown(county, year), args.runs)
    out["breakdown_rows"] = len(breakdown)
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    out["sim_month_s"], _, sim = _timed(lambda: ind.sim_month(county, last_month), max(1, args.runs // 2))
    out["sim"] = {k: (str(v) if v is not None else None) for k, v in sim.items()}
    from django.core.cache import cache

    cache.clear()
    t0 = time.perf_counter()
    ind.sim_trend(county, last_month, today=today)
    out["sim_trend_cold_s"] = time.perf_counter() - t0
    out["village_drill_down_s"], _, _ = _timed(
        lambda: ind.figure_queryset(villages[0], figure="not_normative", disease="htn", period=year).count(),
        args.runs,
    )
    label, lookup = overdue_lookup(today)
    actors = make_doctors(villages, 20)
    times = []
    for k in range(args.worklist_runs):
        actor = actors[k % len(actors)]
        t0 = time.perf_counter()
        lookup(actor)
        times.append((time.perf_counter() - t0) * 1000)
    out["worklist"] = label
    out["worklist_p50_ms"] = statistics.median(times)
    out["worklist_p99_ms"] = _percentile(times, 99)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--htn", type=int, default=150_000)
    parser.add_argument("--dm", type=int, default=50_000)
    parser.add_argument("--follow-ups", type=int, default=2_000_000)
    parser.add_argument("--townships", type=int, default=15)
    parser.add_argument("--villages", type=int, default=27, help="village clinics per township")
    parser.add_argument("--runs", type=int, default=5, help="runs of each indicator query (median)")
    parser.add_argument("--worklist-runs", type=int, default=200)
    parser.add_argument(
        "--covering-index",
        action="store_true",
        help="also create the candidate covering index on follow-ups (visit_on, registry_id) INCLUDE "
        "(the columns the SIM and custom-period queries read) and VACUUM, to measure it",
    )
    args = parser.parse_args()

    from yilian.ops.pgtmp import throwaway_postgres

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    var_dir = tempfile.mkdtemp(prefix="yilian-bench-")
    with throwaway_postgres() as url:
        os.environ.update(
            {
                "DATABASE_URL": url,
                "YILIAN_VAR_DIR": var_dir,
                "DJANGO_SETTINGS_MODULE": "yilian.settings",
                "YILIAN_LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        today = date.today()
        t0 = time.perf_counter()
        county, towns, villages = build_tree(args.townships, args.villages)
        counts = generate(args, today, villages)
        generate_s = time.perf_counter() - t0
        if args.covering_index:
            from django.db import connection

            t1 = time.perf_counter()
            with connection.cursor() as cur:
                cur.execute(COVERING_INDEX)
                cur.execute("VACUUM ANALYZE chronic_followup")
            print(f"covering index + VACUUM in {time.perf_counter() - t1:.1f}s")
        print(
            f"generated {counts['patients']:,} patients, {counts['registries']:,} registries, "
            f"{counts['follow_ups']:,} follow-ups over {len(towns)} townships × {args.villages} villages "
            f"in {generate_s:.1f}s (load average {os.getloadavg()[0]:.1f})"
        )
        m = measure(args, county, towns, villages, today)
        load = os.getloadavg()[0]

    rows = [
        ("data generation (set-based SQL)", f"{generate_s:.1f} s"),
        ("year roll-up rebuild_all()", f"{m['rollup_s']:.1f} s ({m['rollup_rows']:,} rows)"),
        (f"county indicators {today.year - 1} (roll-up), median", f"{m['county_indicators_s'] * 1000:.0f} ms"),
        (f"county indicators {today.year} to date (follow-ups), median", f"{m['county_ytd_indicators_s'] * 1000:.0f} ms"),
        (f"township breakdown {today.year - 1}, median", f"{m['township_breakdown_s'] * 1000:.0f} ms"),
        ("county Simple/HEARTS month, median", f"{m['sim_month_s'] * 1000:.0f} ms"),
        ("county Simple/HEARTS 12-month trend, cold cache", f"{m['sim_trend_cold_s']:.1f} s"),
        ("village drill-down count, median", f"{m['village_drill_down_s'] * 1000:.0f} ms"),
        (f"village doctor's overdue list p50 / p99 ({args.worklist_runs} look-ups)",
         f"{m['worklist_p50_ms']:.1f} / {m['worklist_p99_ms']:.1f} ms"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    htn = m["indicators"]["htn"]
    dm = m["indicators"]["t2dm"]
    print(
        f"\nHTN managed {htn['managed']}, 规范管理率 {htn['normative_rate']}%, 血压控制率 {htn['control_rate']}%; "
        f"T2DM managed {dm['managed']}, 规范管理率 {dm['normative_rate']}%, 血糖控制率 {dm['control_rate']}%"
    )
    print(f"overdue list: {m['worklist']}; load average (1 min) at the end: {load:.1f}")
    line = {
        "bench": "chronic_dashboard",
        "county_indicators_s": round(m["county_indicators_s"], 4),
        "county_ytd_indicators_s": round(m["county_ytd_indicators_s"], 4),
        "township_breakdown_s": round(m["township_breakdown_s"], 4),
        "sim_month_s": round(m["sim_month_s"], 4),
        "sim_trend_cold_s": round(m["sim_trend_cold_s"], 2),
        "worklist_p50_ms": round(m["worklist_p50_ms"], 2),
        "worklist_p99_ms": round(m["worklist_p99_ms"], 2),
        "generate_s": round(generate_s, 1),
        "rollup_s": round(m["rollup_s"], 1),
        "patients": counts["patients"],
        "registries": counts["registries"],
        "follow_ups": counts["follow_ups"],
        "organisations": 1 + len(towns) + len(villages),
        "loadavg_1m": round(load, 1),
        "cores": os.cpu_count(),
        "covering_index": args.covering_index,
    }
    print(json.dumps(line, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
