"""Booking rush (放号抢号): N patients race over HTTP for one session's numbers on PostgreSQL.

Not a test: it prints figures. ``.venv/bin/python bench/booking_rush.py [--clients 2000]``

1. A throwaway PostgreSQL server (``yilian.ops.pgtmp``), ``fsync=on`` by default so that the commit
   rate is honest (``--no-fsync`` to compare), migrated.
2. One session with ``--numbers`` (300) bookable numbers, N verified patients each with a patient
   account, and a signed-in Django session per account written straight into ``django_session``
   (with a CSRF cookie), so the race measures booking, not the SMS sign-in.
3. The real site served exactly as ``yilian up`` serves it (``python -m yilian up --no-demo
   --no-worker --no-migrate``): on PostgreSQL that is gunicorn with ``--workers`` processes
   (default: the number of cores, as ``yilian up``) x ``--threads`` threads, on a free loopback port.
4. N clients (asyncio, raw HTTP/1.1 with keep-alive, ``--concurrency`` in flight) POST ``/api/v1/scheduling/appointments``
   at once, each with its own session cookie and idempotency key.
5. Checks: booked count, oversold (a slot with more than one occupying appointment, or more
   bookings than numbers) — must be 0.
6. In the same run, the database's own commit rate for the comparable raw transaction (the app's SKIP LOCKED
   claim (one UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)) + INSERT, on a copy of the slot and appointment tables) with pgbench at
   16 clients (a psycopg loop if pgbench is missing), and ``ratio`` = app throughput / db rate.

The last line is one JSON object (ARCHITECTURE.md "Where the figures go").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- set-up through the ORM ------------------------------------------------------------------------


def build_world(n_patients: int, numbers: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from yilian.accounts.models import PatientAccount, User
    from yilian.accounts.selectors import actor_for_user
    from yilian.common import crypto, pinyin, resident_id
    from yilian.community.models import Department, Organisation, RoleAssignment, Staff
    from yilian.patients.models import FamilyLink, Patient
    from yilian.scheduling import services
    from yilian.scheduling.models import BookingPolicy

    call_command("migrate", verbosity=0)
    org = Organisation.objects.create(
        code="BENCH01",
        name="海阳县人民医院",
        kind="county_hospital",
        path="0001.",
        province="山东省",
        city="烟台市",
        county="海阳县",
    )
    dept = Department.objects.create(organisation=org, code="XNK", name="心血管内科")
    # The whole session is bookable: no referral reserve, so the race is for all the numbers.
    BookingPolicy.objects.create(department=dept, referral_reserved_ratio=0, expert_referral_reserved_ratio=0)
    admin_user = User.objects.create_user(username="bench-admin", password=None, kind=User.Kind.STAFF)
    admin = Staff.objects.create(user=admin_user, name="医务科", organisation=org)
    # The medical-affairs office makes the schedule: whichever of the two roles carries the schedule
    # permission in this version of common.policy (organisation manager, or the dedicated one).
    for role in ("sysadmin", "coordinator"):
        RoleAssignment.objects.create(staff=admin, role=role, organisation=org)
    day = timezone.localdate() + timedelta(days=4)
    segments = 10
    per = numbers // segments
    windows = [
        (dtime(8 + i // 2, 30 * (i % 2)), dtime(8 + (i + 1) // 2, 30 * ((i + 1) % 2)), per)
        for i in range(segments)
    ]
    windows[-1] = (windows[-1][0], windows[-1][1], numbers - per * (segments - 1))
    session = services.create_session(
        actor=actor_for_user(admin_user),
        department=dept,
        doctor=None,
        service_date=day,
        period="am",
        windows=windows,
    )

    users = User.objects.bulk_create(
        [User(username=f"rush{i}", kind=User.Kind.PATIENT, password="!") for i in range(n_patients)],
        batch_size=1000,
    )
    accounts = PatientAccount.objects.bulk_create(
        [
            PatientAccount(user=u, phone=f"137{i:08d}", phone_hash=crypto.blind_index("phone", f"137{i:08d}"))
            for i, u in enumerate(users)
        ],
        batch_size=1000,
    )
    from datetime import date

    patients = []
    for i in range(n_patients):
        birth = date(1950, 1, 1) + timedelta(days=i)
        sex = "M" if i % 2 else "F"
        number = resident_id.build("370687", birth, 100 + i % 800, sex)
        patients.append(
            Patient(
                name=f"患者{i}",
                name_initials=pinyin.initials("患者"),
                sex=sex,
                birth_date=birth,
                id_number=number,
                id_hash=crypto.blind_index("id", number),
                id_last4=number[-4:],
                home_org=org,
                realname_verified=True,
            )
        )
    patients = Patient.objects.bulk_create(patients, batch_size=1000)
    now = timezone.now()
    FamilyLink.objects.bulk_create(
        [
            FamilyLink(account=a, patient=p, relationship="self", consent_version="2026-01", consent_at=now)
            for a, p in zip(accounts, patients, strict=True)
        ],
        batch_size=1000,
    )
    # Signed-in sessions, as the OTP sign-in would have left them.
    store = SessionStore()
    rows, clients = [], []
    for u, p in zip(users, patients, strict=True):
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = {
            SESSION_KEY: str(u.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: u.get_session_auth_hash(),
            # Opened the booking page a minute before the release: the first request of the rush
            # rewrites the idle-timeout stamp (a session write), as it would for a real patient.
            "last_seen": time.time() - 60,
        }
        rows.append(
            Session(session_key=key, session_data=store.encode(data), expire_date=now + timedelta(hours=2))
        )
        clients.append({"sessionid": key, "csrftoken": get_random_string(32), "patient_id": p.pk})
    Session.objects.bulk_create(rows, batch_size=1000)
    from django.db import connections

    connections.close_all()
    return {"session_id": session.pk, "clients": clients}


def count_outcome(session_id: int, numbers: int) -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM scheduling_appointment WHERE session_id = %s AND status IN "
            "('held','booked','arrived','fulfilled','no_show')",
            [session_id],
        )
        booked = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM (SELECT slot_id FROM scheduling_appointment WHERE session_id = %s AND status IN "
            "('held','booked','arrived','fulfilled','no_show') GROUP BY slot_id HAVING count(*) > 1) d",
            [session_id],
        )
        doubled = cur.fetchone()[0]
    return booked, doubled + max(0, booked - numbers)


# --- CPU accounting (Linux /proc): who used the cores during the race --------------------------------


def _tree_cpu_s(root: int | None) -> float:
    """CPU seconds (user + system, with reaped children) of ``root`` and its live descendants."""
    if root is None or not Path("/proc").exists():
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(status.parent.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == pid)
    return total


def _postmaster_pid(url: str) -> int | None:
    port = url.rsplit(":", 1)[1].split("/")[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"port={port} " in text and "unix_socket_directories" in text and "pg_ctl" not in text:
            return int(cmdline.parent.name)
    return None


# --- the race over HTTP ------------------------------------------------------------------------------


async def _post(conn: list, port: int, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 POST on a kept-alive connection (``conn`` holds reader and writer, reopened
    when the server closed it). Hand-written rather than httpx: the client shares the machine's
    cores with the server, and httpx spends about 4 ms of CPU per request, a third of the server's."""
    for attempt in (1, 2):
        if not conn:
            conn.extend(await asyncio.open_connection("127.0.0.1", port))
        reader, writer = conn
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
        try:
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("closed by the server")
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            payload = await reader.readexactly(length)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            conn.clear()
            if attempt == 2:
                raise
            continue
        if close:
            writer.close()
            conn.clear()
        return int(status_line.split()[1]), payload
    raise ConnectionError("unreachable")


async def race(port: int, session_id: int, clients: list[dict], concurrency: int) -> tuple[list, float]:
    results: list[tuple[int, float, str]] = []
    queue: asyncio.Queue = asyncio.Queue()
    for c in clients:
        queue.put_nowait(c)

    async def worker() -> None:
        conn: list = []
        while True:
            try:
                c = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            headers = {
                "Cookie": f"sessionid={c['sessionid']}; csrftoken={c['csrftoken']}",
                "X-CSRFToken": c["csrftoken"],
                "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            }
            body = json.dumps({"patient_id": c["patient_id"], "session_id": session_id}).encode()
            t0 = time.perf_counter()
            try:
                status, payload = await _post(conn, port, "/api/v1/scheduling/appointments", headers, body)
                code = json.loads(payload).get("code", "") if status >= 400 else ""
                results.append((status, time.perf_counter() - t0, code))
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                results.append((0, time.perf_counter() - t0, type(exc).__name__))
        if conn:
            conn[1].close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return results, elapsed


def start_server(
    env: dict, port: int, workers: int | None, threads: int, log: Path
) -> tuple[subprocess.Popen, str]:
    """``yilian up`` on ``port`` (no demo, no task worker, already migrated); returns it and how it serves."""
    command = [sys.executable, "-m", "yilian", "up", "--no-demo", "--no-worker", "--no-migrate"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)]
    if workers:
        command += ["--workers", str(workers)]
    # The server's output goes to a file: an unread pipe fills up and blocks the server's logging.
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(1200):
        text = log.read_text()
        if "Listening on" in text:
            found = re.search(r"serving at \S+\s+\(([^;]+);", text)
            return proc, found.group(1) if found else "?"
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {text[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


# --- the database's own rate ---------------------------------------------------------------------------

RAW_SETUP = """
DROP TABLE IF EXISTS bench_slot, bench_appointment;
CREATE TABLE bench_slot (LIKE scheduling_slot INCLUDING ALL);
CREATE TABLE bench_appointment (LIKE scheduling_appointment INCLUDING ALL);
INSERT INTO bench_slot (session_id, seq, starts_at, ends_at, pool, status, for_waitlist)
  SELECT 1, g, now(), now() + interval '30 minutes', 'public', 'free', false FROM generate_series(1, {rows}) g;
ANALYZE bench_slot;
"""

PGBENCH_SCRIPT = """\\set pid random(1, 1000000000)
BEGIN;
UPDATE bench_slot SET status = 'booked' WHERE id = (SELECT id FROM bench_slot WHERE session_id = 1 AND status = 'free' AND pool = 'public' AND NOT for_waitlist AND (available_from IS NULL OR available_from <= now()) ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id AS slot_id \\gset
INSERT INTO bench_appointment (patient_id, session_id, slot_id, service_date, period, department_id, status, cancel_reason, channel, idempotency_key, referral_ref, created_by_id, booked_at) VALUES (:pid, 1, :slot_id, current_date, 'am', 1, 'booked', '', 'app', md5(random()::text), '', 1, now());
END;
"""


def db_rate(url: str, clients: int, seconds: int) -> tuple[float, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RAW_SETUP.format(rows=max(50_000, seconds * 6000)))
    pgbench = shutil.which("pgbench")
    if pgbench:
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(PGBENCH_SCRIPT)
            script = f.name
        m = re.match(r"postgres://(\w+)@([\d.]+):(\d+)/(\w+)", url)
        user, host, port, db = m.groups()
        out = subprocess.run(
            [
                pgbench,
                "-h",
                host,
                "-p",
                port,
                "-U",
                user,
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                script,
                db,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        os.unlink(script)
        found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
        if found:
            return float(found.group(1)), f"pgbench -c {clients} -T {seconds}"
        print(out.stdout[-1500:], out.stderr[-1500:], file=sys.stderr)
    # Fallback: the same transaction from psycopg threads.
    done = [0] * clients
    failures: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        try:
            _loop(i)
        except Exception as exc:  # a broken transaction must not pass for a rate of 0
            failures.append(exc)

    def _loop(i: int) -> None:
        with psycopg.connect(url) as conn:
            while time.perf_counter() < stop:
                with conn.transaction():
                    row = conn.execute(
                        "UPDATE bench_slot SET status = 'booked' WHERE id = (SELECT id FROM bench_slot "
                        "WHERE session_id = 1 AND status = 'free' AND pool = 'public' AND NOT for_waitlist "
                        "AND (available_from IS NULL OR available_from <= now()) "
                        "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO bench_appointment (patient_id, session_id, slot_id, service_date, period, "
                        "department_id, status, cancel_reason, channel, idempotency_key, referral_ref, created_by_id, "
                        "booked_at) VALUES (1, 1, %s, current_date, 'am', 1, 'booked', '', 'app', md5(random()::text), "
                        "'', 1, now())",
                        row,
                    )
                done[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"the raw transaction failed: {failures[0]}")
    return sum(done) / (time.perf_counter() - t0), f"psycopg loop x{clients} for {seconds}s"


# --- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000, help="patients racing (default 2000)")
    parser.add_argument("--numbers", type=int, default=300, help="numbers in the session (default 300)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--workers", type=int, default=None, help="server processes (default: as `yilian up`, one per core)"
    )
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per server process (default 8, as `yilian up`)"
    )
    parser.add_argument("--db-clients", type=int, default=16, help="pgbench clients (default 16)")
    parser.add_argument("--db-seconds", type=int, default=10, help="pgbench duration (default 10 s)")
    parser.add_argument("--no-fsync", action="store_true", help="run PostgreSQL with fsync off")
    args = parser.parse_args()

    from yilian.ops.pgtmp import throwaway_postgres

    # A SIGTERM (timeout, Ctrl-C in a pipeline) unwinds the context managers: server and database go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    var_dir = tempfile.mkdtemp(prefix="yilian-bench-")
    fsync = not args.no_fsync
    try:
        with throwaway_postgres(fsync=fsync, max_connections=300) as url:
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "YILIAN_VAR_DIR": var_dir,
                "DJANGO_SETTINGS_MODULE": "yilian.settings",
                "YILIAN_LOG_LEVEL": "WARNING",
                # The 2,000 simulated patients all come from one loopback address: B-18's per-address
                # limit would refuse them; the per-account limit stays on (one call per account).
                "YILIAN_BOOKING_PER_IP_MINUTE": "0",
                "YILIAN_AVAILABILITY_PER_IP_MINUTE": "0",
                "PYTHONPATH": str(ROOT / "src"),
            }
            os.environ.update(
                {k: env[k] for k in ("DATABASE_URL", "YILIAN_VAR_DIR", "DJANGO_SETTINGS_MODULE")}
            )
            t0 = time.perf_counter()
            world = build_world(args.clients, args.numbers)
            print(
                f"set-up: {args.clients} patients, accounts and sessions in {time.perf_counter() - t0:.1f}s"
            )
            port = _free_port()
            server, serving = start_server(
                env, port, args.workers, args.threads, Path(var_dir) / "server.log"
            )
            load_during = []  # the load average, sampled during the race
            try:
                base = f"http://127.0.0.1:{port}"
                import httpx

                with httpx.Client(
                    timeout=30
                ) as warm:  # every process builds its URL resolver and schemas once
                    for _ in range(20):
                        warm.get(f"{base}/api/v1/scheduling/sessions?department=1&date=2000-01-01")
                sampler_stop = threading.Event()

                def sample_load() -> None:
                    while not sampler_stop.wait(1):
                        load_during.append(os.getloadavg()[0])

                sampler = threading.Thread(target=sample_load, daemon=True)
                postmaster = _postmaster_pid(url)
                cpu0 = (_tree_cpu_s(server.pid), _tree_cpu_s(postmaster), time.process_time())
                sampler.start()
                results, elapsed = asyncio.run(
                    race(port, world["session_id"], world["clients"], args.concurrency)
                )
                sampler_stop.set()
                load_during.append(os.getloadavg()[0])
                cpu1 = (_tree_cpu_s(server.pid), _tree_cpu_s(postmaster), time.process_time())
                cpu_ms = [
                    round((b - a) * 1000 / len(world["clients"]), 2) for a, b in zip(cpu0, cpu1, strict=True)
                ]
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
            booked, oversold = count_outcome(world["session_id"], args.numbers)
            from django.db import connections

            connections.close_all()
            rate, how = db_rate(url, args.db_clients, args.db_seconds)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    latencies = [r[1] * 1000 for r in results]
    statuses: dict[str, int] = {}
    for status, _lat, code in results:
        key = f"{status} {code}".strip()
        statuses[key] = statuses.get(key, 0) + 1
    answered = sum(1 for r in results if r[0] in (200, 201, 409))
    throughput = answered / elapsed
    figures = {
        "bench": "booking_rush",
        "clients": args.clients,
        "numbers": args.numbers,
        "concurrency": args.concurrency,
        "server": serving,
        "load_avg_1m": round(max(load_during), 2),
        "cpu_ms_per_request": {"app": cpu_ms[0], "postgres": cpu_ms[1], "bench_client": cpu_ms[2]},
        "fsync": fsync,
        "throughput_per_s": round(throughput, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_percentile(latencies, 99), 1),
        "booked": booked,
        "oversold": oversold,
        "db_rate_per_s": round(rate, 1),
        "db_rate_method": how,
        "ratio": round(throughput / rate, 3) if rate else None,
        "cpus": os.cpu_count(),
    }
    print()
    print(
        f"{'requests':<22}{len(results)} in {elapsed:.2f}s  ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))})"
    )
    print(f"{'throughput':<22}{throughput:.1f} answered requests/s (booked + refused)")
    print(f"{'latency':<22}p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    print(f"{'booked / numbers':<22}{booked} / {args.numbers}")
    print(f"{'oversold':<22}{oversold}")
    print(f"{'database rate':<22}{rate:.1f} tx/s  ({how}, fsync={'on' if fsync else 'off'})")
    print(f"{'server':<22}{serving} (yilian up); {args.concurrency} requests in flight")
    print(
        f"{'load average (1 min)':<22}{figures['load_avg_1m']} at most during the race, {os.cpu_count()} cores"
    )
    print(
        f"{'CPU per request':<22}app {cpu_ms[0]} ms, PostgreSQL {cpu_ms[1]} ms, bench client {cpu_ms[2]} ms"
        f" (= {sum(cpu_ms) * throughput / 1000:.2f} of {os.cpu_count()} cores busy at this throughput)"
    )
    print(f"{'ratio':<22}{figures['ratio']}")
    print(json.dumps(figures, ensure_ascii=False))
    return 0 if oversold == 0 and booked == min(args.numbers, args.clients) else 1


if __name__ == "__main__":
    sys.exit(main())
