"""Patient search over HTTP on a demo county: name prefix, pinyin initials, ID number, phone.

    .venv/bin/python bench/patient_search.py                  # 100,000 patients, throwaway PostgreSQL
    .venv/bin/python bench/patient_search.py --patients 20000 --queries 300
    .venv/bin/python bench/patient_search.py --sqlite         # the embedded SQLite instead

What it does, all in a temporary directory that is removed afterwards:

1. starts a throwaway PostgreSQL (``yilian.ops.pgtmp``) unless ``--sqlite``;
2. migrates and times ``yilian demo --patients N`` (the demo generator itself);
3. starts the production server (``yilian up --no-demo --no-worker``: waitress, 8 threads)
   on a free loopback port;
4. creates an API key (``yl_<prefix>_<secret>``, SHA-256 stored) for the county hospital, which
   scopes the whole medical community;
5. sends ``--queries`` look-ups of each kind, one at a time, to ``GET /api/v1/patients/?q=…``
   with ``X-API-Key`` and reports the median and 99th-percentile latency, how many found
   something, and the web server's own CPU time per request (which, unlike latency, does not
   grow with the load other programs put on the machine);
6. then ``--clients`` clients at once (default 8, as many as waitress has threads) for
   ``--seconds``, each cycling through all four kinds: throughput and latency under concurrency.

Queries are taken from real demo patients (seeded): a 2-character name prefix (王秀), the full
pinyin initials of a name (wxy), a full resident ID number, a full mobile number.

Ends with one JSON line (ARCHITECTURE.md "Where the figures go").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["name", "initials", "id", "phone"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yilian(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yilian", *args], env=env, check=True, **kwargs)


SETUP = r"""
import json, random, secrets
from yilian.accounts.models import ApiKey
from yilian.accounts.selectors import hash_api_key
from yilian.community.models import Organisation
from yilian.patients.models import Patient

hospital = Organisation.objects.get(parent__isnull=True)
prefix = secrets.token_hex(4)
full = f"yl_{prefix}_{secrets.token_hex(24)}"
ApiKey.objects.create(organisation=hospital, name="bench patient_search", prefix=prefix, key_hash=hash_api_key(full))
rng = random.Random(SEED)
ids = list(Patient.objects.values_list("pk", flat=True))
picked = rng.sample(ids, min(len(ids), COUNT * 3))
rows = {p.pk: p for p in Patient.objects.filter(pk__in=picked)}
queries = {"name": [], "initials": [], "id": [], "phone": []}
for pk in picked:
    p = rows[pk]
    if len(queries["name"]) < COUNT:
        queries["name"].append(p.name[:2])
    if len(queries["initials"]) < COUNT:
        queries["initials"].append(p.name_initials)
    if len(queries["id"]) < COUNT:
        queries["id"].append(p.id_number)
    if p.phone and len(queries["phone"]) < COUNT:
        queries["phone"].append(p.phone)
print("BENCH-SETUP " + json.dumps({"key": full, "queries": queries}))
"""

VERSION = r"""
from django.db import connection
with connection.cursor() as c:
    if connection.vendor == "postgresql":
        c.execute("SHOW server_version")
        print("BENCH-DB PostgreSQL " + c.fetchone()[0])
    else:
        c.execute("select sqlite_version()")
        print("BENCH-DB SQLite " + c.fetchone()[0])
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yilian",
            "up",
            "--no-demo",
            "--no-worker",
            "--no-migrate",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        if re.search(r"Listening on 127\.0\.0\.1:\d+", line):
            # Keep draining its output so that the pipe never fills up.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def run(args: argparse.Namespace, database_url: str | None, workdir: Path) -> dict:
    env = {**os.environ, "YILIAN_VAR_DIR": str(workdir), "YILIAN_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    yilian(env, "migrate", "-v0")
    db = yilian(env, "shell", "-c", VERSION, capture_output=True, text=True).stdout
    database = next((line[9:] for line in db.splitlines() if line.startswith("BENCH-DB ")), "?")
    print(f"database: {database}")

    print(f"building the demo county with {args.patients:,} patients …", flush=True)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    yilian(env, "demo", "--patients", str(args.patients), "--seed", str(args.seed), "-v0")
    demo_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the demo process itself: unlike the wall time, it does not grow with the neighbours' load.
    demo_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"demo generation: {demo_s:.1f} s wall, {demo_cpu_s:.1f} s CPU "
        f"({args.patients / demo_s:,.0f} patients/s); load average {os.getloadavg()[0]:.1f}"
    )

    script = SETUP.replace("SEED", str(args.seed)).replace("COUNT", str(args.queries))
    out = yilian(env, "shell", "-c", script, capture_output=True, text=True).stdout
    setup = json.loads(next(line[12:] for line in out.splitlines() if line.startswith("BENCH-SETUP ")))

    port = free_port()
    server = start_server(env, port)
    try:
        base = f"http://127.0.0.1:{port}/api/v1/patients/"
        results: dict[str, dict] = {}
        with httpx.Client(headers={"X-API-Key": setup["key"]}, timeout=30) as client:
            for q in setup["queries"]["name"][:20]:  # warm-up: connections, caches, query plans
                client.get(base, params={"q": q}).raise_for_status()
            for kind in KINDS:
                latencies: list[float] = []
                found = 0
                total = 0
                cpu_before = process_cpu_s(server.pid)
                for q in setup["queries"][kind]:
                    t0 = time.perf_counter()
                    response = client.get(base, params={"q": q})
                    latencies.append((time.perf_counter() - t0) * 1000)
                    response.raise_for_status()
                    count = response.json()["count"]
                    found += count > 0
                    total += count
                n = len(latencies)
                cpu_ms = (process_cpu_s(server.pid) - cpu_before) * 1000 / max(n, 1)
                results[kind] = {
                    "server_cpu_ms": cpu_ms,
                    "n": n,
                    "p50": statistics.median(latencies),
                    "p99": percentile(latencies, 0.99),
                    "found": found,
                    "mean_rows": total / n if n else 0,
                }
        mixed = concurrent(base, setup, args.clients, args.seconds) if args.clients else None
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(15)
        if server.poll() is None:
            server.kill()
    return {
        "database": database,
        "demo_s": demo_s,
        "demo_cpu_s": demo_cpu_s,
        "results": results,
        "mixed": mixed,
    }


def concurrent(base: str, setup: dict, clients: int, seconds: float) -> dict:
    """``clients`` clients at once, each cycling through all four kinds, for ``seconds``."""
    queries = [q for kind in KINDS for q in setup["queries"][kind]]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client_loop(index: int) -> None:
        nonlocal errors
        mine = queries[index::clients] or queries
        done: list[float] = []
        failed = 0
        with httpx.Client(headers={"X-API-Key": setup["key"]}, timeout=30) as client:
            i = 0
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                response = client.get(base, params={"q": mine[i % len(mine)]})
                done.append((time.perf_counter() - t0) * 1000)
                failed += response.status_code != 200
                i += 1
        with lock:
            latencies.extend(done)
            errors += failed

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p99": percentile(latencies, 0.99) if latencies else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="look-ups of each kind (default 300)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients of the mixed phase (0 skips it; default 8)"
    )
    parser.add_argument("--seconds", type=float, default=20, help="length of the mixed phase (default 20 s)")
    parser.add_argument(
        "--sqlite", action="store_true", help="bench the embedded SQLite instead of PostgreSQL"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="yilian-bench-"))
    try:
        if args.sqlite:
            figures = run(args, None, workdir)
        else:
            sys.path.insert(0, str(ROOT / "src"))
            from yilian.ops.pgtmp import throwaway_postgres

            with throwaway_postgres() as url:
                figures = run(args, url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    results = figures["results"]
    print()
    print(f"Patient search over HTTP — {args.patients:,} patients, {figures['database']}, one client")
    print(
        f"{'kind':<10}{'n':>6}{'median ms':>12}{'p99 ms':>10}{'found':>10}{'rows/query':>12}{'server CPU ms':>15}"
    )
    for kind in KINDS:
        r = results[kind]
        print(
            f"{kind:<10}{r['n']:>6}{r['p50']:>12.1f}{r['p99']:>10.1f}{r['found']:>6}/{r['n']:<3}{r['mean_rows']:>12.1f}{r['server_cpu_ms']:>15.1f}"
        )
    print(
        f"demo generation: {figures['demo_s']:.1f} s wall, {figures['demo_cpu_s']:.1f} s CPU; "
        f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}"
    )
    line = {
        "bench": "patient_search",
        "patients": args.patients,
        "database": figures["database"],
        "demo_s": round(figures["demo_s"], 1),
        "demo_cpu_s": round(figures["demo_cpu_s"], 1),
        "loadavg_1m": round(os.getloadavg()[0], 1),
    }
    for kind in KINDS:
        line[f"{kind}_p50_ms"] = round(results[kind]["p50"], 2)
        line[f"{kind}_p99_ms"] = round(results[kind]["p99"], 2)
        line[f"{kind}_found"] = results[kind]["found"]
        line[f"{kind}_n"] = results[kind]["n"]
        line[f"{kind}_server_cpu_ms"] = round(results[kind]["server_cpu_ms"], 2)
    mixed = figures["mixed"]
    if mixed:
        print(
            f"mixed, {mixed['clients']} concurrent clients: {mixed['requests']} requests, "
            f"{mixed['rps']:.1f} per second, median {mixed['p50']:.1f} ms, p99 {mixed['p99']:.1f} ms, "
            f"{mixed['errors']} errors"
        )
        line.update(
            {
                "mixed_clients": mixed["clients"],
                "mixed_rps": round(mixed["rps"], 1),
                "mixed_p50_ms": round(mixed["p50"], 2),
                "mixed_p99_ms": round(mixed["p99"], 2),
                "mixed_errors": mixed["errors"],
            }
        )
    print(json.dumps(line, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
