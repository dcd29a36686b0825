"""``yilian up``: the first run, and the everyday way to run one server.

1. migrate the database (SQLite under ``var/`` unless ``DATABASE_URL`` says otherwise);
2. on an empty database (no organisations), build the demo county with
   ``YILIAN_DEMO_PATIENTS`` patients (default 2000; ``--no-demo`` skips it);
3. start the task worker (``yilian db_worker``) as a child process, restarted if it dies; on a
   demo database without an SMS gateway configured, its SMS (sign-in codes) are printed on
   this console (``ops.demo.sms``);
4. collect the static files and serve the site, static files through WhiteNoise, on
   ``127.0.0.1:8000`` (``--host/--port`` or ``YILIAN_HOST/YILIAN_PORT``);
5. on Ctrl-C or SIGTERM, stop serving and stop the worker.

The process model (``--server``, default ``auto``):

* **PostgreSQL: gunicorn**, ``--workers`` processes (default: the number of cores,
  ``YILIAN_WORKERS``), each with ``--threads`` threads (gthread workers). One Python process is
  bound by its interpreter lock: a busy hour's requests are mostly Python CPU (middleware, ORM,
  serialisation), so one process uses one core however many threads it has. Several processes
  use all the cores; PostgreSQL takes concurrent writers from many connections. The socket is
  bound here, before the fork, so ``--port 0`` works and the address is known for the banner.
* **SQLite, or no gunicorn (Windows): waitress**, one process with ``--threads`` threads.
  SQLite allows one writer at a time for the whole file; writers in several processes wait on
  the file lock (``timeout``) instead of on a lock in one process, which only adds contention and
  "database is locked" errors under load. A single process with threads is the right shape there.

Behind a TLS reverse proxy, ``--trusted-proxy`` names it: only its ``X-Forwarded-For/-Proto/-Host``
are believed (both servers), and the headers are dropped from anyone else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from yilian.common.env import env_int, env_str
from yilian.common.models import AuditEvent
from yilian.community.models import Organisation
from yilian.ops.demo import sms as demo_sms
from yilian.ops.demo.county import DEMO_PASSWORD
from yilian.ops.demo.logins import logins_table

WORKER_RESTART_DELAY_S = 5
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


WORKER_COMMAND = ["db_worker", "--queue-name", "*", "--no-reload"]
PERIODIC_COMMAND = ["periodic"]


class Worker:
    """A child process (the ``db_worker`` task worker, or the ``periodic`` housekeeping jobs);
    restarted (after a pause) if it exits on its own."""

    def __init__(self, out, env: dict[str, str], command: list[str] | None = None) -> None:
        self.out = out
        self.env = env
        self.command = command or WORKER_COMMAND
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="yilian-worker-watch", daemon=True)

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "yilian", *self.command], env=self.env)

    def start(self) -> None:
        self.proc = self._spawn()
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self.stopping.is_set():
                self.out.write(
                    f"{self.command[0]} exited with status {proc.returncode}; "
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


def default_workers() -> int:
    """Worker processes for gunicorn: ``YILIAN_WORKERS``, else the cores this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return env_int("YILIAN_WORKERS", max(1, cores), minimum=1)


def choose_server(requested: str, *, vendor: str) -> str:
    """``auto``: gunicorn on PostgreSQL (and other client/server databases) where it can be
    imported (not on Windows), waitress otherwise (SQLite: see the module docstring)."""
    if requested != "auto":
        return requested
    if vendor == "sqlite":
        return "waitress"
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return "waitress"
    return "gunicorn"


class ProxyHeaders:
    """WSGI wrapper with waitress's ``trusted_proxy`` behaviour, for gunicorn: from the trusted proxy,
    ``X-Forwarded-For`` (its last hop) becomes ``REMOTE_ADDR`` and ``-Proto``/``-Host`` the scheme
    and host; from anyone else (or with no proxy named) the three headers are removed, so nothing
    downstream (``common.middleware.client_ip``, Django's host checks) can be fooled."""

    def __init__(self, application: Callable, trusted_proxy: str = "") -> None:
        self.application = application
        self.trusted_proxy = trusted_proxy

    def __call__(self, environ, start_response):
        if self.trusted_proxy and environ.get("REMOTE_ADDR") == self.trusted_proxy:
            hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
            if hops:
                environ["REMOTE_ADDR"] = hops[-1]
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
            host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
            if host:
                environ["HTTP_HOST"] = host
        for name in FORWARDED:
            environ.pop(name, None)
        return self.application(environ, start_response)


def gunicorn_options(options: dict, listener: socket.socket) -> dict:
    """gunicorn settings for ``yilian up``: gthread workers on a socket already bound here."""
    return {
        "bind": [f"fd://{listener.fileno()}"],
        "workers": options["workers"],
        "worker_class": "gthread",
        "threads": options["threads"],
        "backlog": 2048,
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": 10,
        "forwarded_allow_ips": "",  # ProxyHeaders decides
        "proc_name": "yilian",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "control_socket_disable": True,  # gunicorn >= 24's control socket: not used here
    }


def serve_with_gunicorn(application: Callable, config: dict) -> None:
    """Run gunicorn's arbiter in this process (the master) until SIGTERM/SIGINT."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in config.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return application

    Server().run()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


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
        parser.add_argument(
            "--server",
            choices=("auto", "gunicorn", "waitress"),
            default=env_str("YILIAN_SERVER", "auto"),
            help="auto: gunicorn (several processes) on PostgreSQL, waitress (one process) on SQLite",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="gunicorn worker processes (default: YILIAN_WORKERS or the number of cores)",
        )
        parser.add_argument("--threads", type=int, default=8, help="threads per worker process (default 8)")
        parser.add_argument(
            "--trusted-proxy",
            default=env_str("YILIAN_TRUSTED_PROXY", ""),
            help="address of the TLS reverse proxy in front (e.g. 127.0.0.1): its X-Forwarded-For/-Proto/"
            "-Host then give the client address and https; from anyone else they are dropped",
        )
        parser.add_argument("--no-demo", action="store_true", help="never build the demo county")
        parser.add_argument(
            "--no-worker", action="store_true", help="do not start the task worker and the periodic jobs"
        )
        parser.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")

    def handle(self, *args, **options) -> None:
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
        from django.db import connection, connections

        application = get_wsgi_application()
        kind = choose_server(options["server"], vendor=connection.vendor)
        options["workers"] = options["workers"] or default_workers()
        demo = AuditEvent.objects.filter(action="demo.generate").exists()
        if kind == "gunicorn":
            try:
                listener = _listen(host, port)
            except OSError as exc:
                raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
            actual_port = listener.getsockname()[1]
            server = None
        else:
            from waitress.server import create_server

            listener = None
            try:
                server = create_server(application, **self._waitress_options(options))
            except OSError as exc:
                raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
            actual_port = server.effective_port
        env = worker_environment(demo=demo)
        worker = None if options["no_worker"] else Worker(self.stdout, env)
        periodic = None if options["no_worker"] else Worker(self.stdout, env, PERIODIC_COMMAND)

        def on_signal(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_signal)
        master = os.getpid()  # gunicorn's workers are forks of this process and unwind through here
        previous_chld = signal.getsignal(signal.SIGCHLD) if hasattr(signal, "SIGCHLD") else None
        try:
            if worker:
                worker.start()
            if periodic:
                periodic.start()
            self._banner(host, actual_port, worker is not None, self._describe(kind, options))
            if worker and env.get("YILIAN_SMS_SENDER") == demo_sms.PATH:
                self.stdout.write("Demo mode: SMS messages (sign-in codes) are printed here, not sent.")
            if server is not None:
                server.run()
            else:
                connections.close_all()  # never share the master's connection with forked workers
                try:
                    serve_with_gunicorn(
                        ProxyHeaders(application, options["trusted_proxy"]),
                        gunicorn_options(options, listener),
                    )
                except SystemExit as exc:  # gunicorn's arbiter exits when it has stopped its workers
                    if os.getpid() != master or exc.code not in (0, None):
                        raise
        except KeyboardInterrupt:
            if os.getpid() != master:
                raise
            self.stdout.write("\nStopping…")
        finally:
            if os.getpid() == master:
                if periodic:
                    periodic.stop()
                self._cleanup(server, listener, worker, previous, previous_chld)
        self.stdout.write("Stopped.")

    @staticmethod
    def _cleanup(server, listener, worker, previous, previous_chld) -> None:
        """In the master only: a forked gunicorn worker must never stop the task worker."""
        if previous_chld is not None:
            signal.signal(signal.SIGCHLD, previous_chld)  # gunicorn's handler would reap our worker
        if server is not None:
            server.close()
        elif listener is not None:
            with contextlib.suppress(OSError):  # gunicorn closes the descriptor it was given
                listener.close()
        if worker:
            worker.stop()
        signal.signal(signal.SIGTERM, previous)

    @staticmethod
    def _describe(kind: str, options) -> str:
        if kind == "gunicorn":
            return f"gunicorn, {options['workers']} processes x {options['threads']} threads"
        return f"waitress, {options['threads']} threads"

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

    def _banner(self, host: str, port: int, with_worker: bool, server: str = "waitress") -> None:
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
            f"Yilian 医联 is serving at {url}  ({server}; task worker: {'on' if with_worker else 'off'})"
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.stdout.write(
                "Reached by another name or address? List it in YILIAN_ALLOWED_HOSTS (and "
                "YILIAN_CSRF_TRUSTED_ORIGINS behind HTTPS)."
            )
        self.stdout.write(f"Listening on {host}:{port}. Press Ctrl-C to stop.")
        self.stdout.flush()
