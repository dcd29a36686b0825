"""``yilian up``: the first run, and the everyday way to run one server.

1. migrate the database (SQLite under ``var/`` unless ``DATABASE_URL`` says otherwise);
2. on an empty database (no organisations), build the demo county with
   ``YILIAN_DEMO_PATIENTS`` patients (default 2000; ``--no-demo`` skips it);
3. start the task worker (``yilian db_worker``) as a child process, restarted if it dies; on a
   demo database without an SMS gateway configured, its SMS (sign-in codes) are printed on
   this console (``ops.demo.sms``);
4. collect the static files and serve the site with waitress (a production WSGI server,
   8 threads), static files through WhiteNoise, on ``127.0.0.1:8000`` (``--host/--port`` or ``YILIAN_HOST/YILIAN_PORT``);
5. on Ctrl-C or SIGTERM, stop serving and stop the worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from yilian.common.env import env_int, env_str
from yilian.common.models import AuditEvent
from yilian.community.models import Organisation
from yilian.ops.demo import sms as demo_sms
from yilian.ops.demo.county import DEMO_PASSWORD
from yilian.ops.demo.logins import logins_table

WORKER_RESTART_DELAY_S = 5


class Worker:
    """The ``db_worker`` child process; restarted (after a pause) if it exits on its own."""

    def __init__(self, out, env: dict[str, str]) -> None:
        self.out = out
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="yilian-worker-watch", daemon=True)

    def _spawn(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "yilian", "db_worker", "--queue-name", "*", "--no-reload"]
        return subprocess.Popen(command, env=self.env)

    def start(self) -> None:
        self.proc = self._spawn()
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self.stopping.is_set():
                self.out.write(
                    f"task worker exited with status {proc.returncode}; "
                    f"restarting in {WORKER_RESTART_DELAY_S} s\n"
                )
                if self.stopping.wait(WORKER_RESTART_DELAY_S):
                    return
                self.proc = self._spawn()
            self.stopping.wait(1)

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def worker_environment(*, demo: bool) -> dict[str, str]:
    """The worker's environment: ours, plus the demo SMS sender for a demo without a gateway."""
    env = os.environ.copy()
    if demo and not env.get("YILIAN_SMS_SENDER"):
        env["YILIAN_SMS_SENDER"] = demo_sms.PATH
    return env


def _port_is_free(host: str, port: int) -> bool:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Migrate, build the demo county on an empty database, start the task worker and serve the site."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default=env_str("YILIAN_HOST", "127.0.0.1"), help="address to listen on"
        )
        parser.add_argument(
            "--port",
            type=int,
            default=env_int("YILIAN_PORT", 8000, minimum=0),
            help="port (0 = any free port)",
        )
        parser.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
        parser.add_argument(
            "--trusted-proxy",
            default=env_str("YILIAN_TRUSTED_PROXY", ""),
            help="address of the TLS reverse proxy in front (e.g. 127.0.0.1): its X-Forwarded-For/-Proto/"
            "-Host then give the client address and https; from anyone else they are dropped",
        )
        parser.add_argument("--no-demo", action="store_true", help="never build the demo county")
        parser.add_argument("--no-worker", action="store_true", help="do not start the task worker")
        parser.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")

    def handle(self, *args, **options) -> None:
        from waitress.server import create_server

        host, port = options["host"], options["port"]
        if port and not _port_is_free(host, port):
            raise CommandError(f"{host}:{port} is in use or not an address of this machine; try --port")
        if not options["no_migrate"]:
            self.stdout.write("Migrating the database…")
            call_command("migrate", interactive=False, verbosity=0)
        if not options["no_demo"] and not Organisation.objects.exists():
            patients = env_int("YILIAN_DEMO_PATIENTS", 2000, minimum=0)
            self.stdout.write(f"Empty database: building the demo county with {patients} patients…")
            call_command("demo", patients=patients, verbosity=0)

        # Gathered and compressed once, so that WhiteNoise serves them with far-future caching.
        call_command("collectstatic", interactive=False, verbosity=0)
        from django.core.wsgi import get_wsgi_application

        application = get_wsgi_application()
        try:
            server = create_server(
                application, host=host, port=port, threads=options["threads"], ident="Yilian"
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
        actual_port = server.effective_port
        demo = AuditEvent.objects.filter(action="demo.generate").exists()
        env = worker_environment(demo=demo)
        worker = None if options["no_worker"] else Worker(self.stdout, env)

        def on_signal(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_signal)
        try:
            if worker:
                worker.start()
            self._banner(host, actual_port, worker is not None)
            if worker and env.get("YILIAN_SMS_SENDER") == demo_sms.PATH:
                self.stdout.write("Demo mode: SMS messages (sign-in codes) are printed here, not sent.")
            server.run()
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            server.close()
            if worker:
                worker.stop()
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write("Stopped.")

    @staticmethod
    def _waitress_options(options) -> dict:
        config = {
            "host": options["host"],
            "port": options["port"],
            "threads": options["threads"],
            "ident": "Yilian",
            "clear_untrusted_proxy_headers": True,
        }
        if options["trusted_proxy"]:
            config["trusted_proxy"] = options["trusted_proxy"]
            config["trusted_proxy_headers"] = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
        return config

    def _banner(self, host: str, port: int, with_worker: bool) -> None:
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else shown}:{port}/"  # noqa: S104
        from yilian.accounts.models import User

        doctor = User.objects.filter(username="doctor").first()
        password = DEMO_PASSWORD if doctor and doctor.check_password(DEMO_PASSWORD) else None
        table = logins_table(password)
        self.stdout.write("")
        if table:
            self.stdout.write(table)
        self.stdout.write(
            f"Yilian 医联 is serving at {url}  (waitress; task worker: {'on' if with_worker else 'off'})"
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.stdout.write(
                "Reached by another name or address? List it in YILIAN_ALLOWED_HOSTS (and "
                "YILIAN_CSRF_TRUSTED_ORIGINS behind HTTPS)."
            )
        self.stdout.write(f"Listening on {host}:{port}. Press Ctrl-C to stop.")
        self.stdout.flush()
