"""``yilian up``: migrate, demo on an empty database, worker, waitress; stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from yilian.ops.demo.county import DEMO_PATIENT_PHONE


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to find the worker process")
def test_up_builds_the_demo_serves_pages_and_static_files_and_stops_its_worker(tmp_path):
    env = {**os.environ, "YILIAN_VAR_DIR": str(tmp_path), "YILIAN_DEMO_PATIENTS": "30"}
    env.pop("DATABASE_URL", None)  # its own SQLite under tmp_path, never the suite's database
    proc = subprocess.Popen(
        [sys.executable, "-m", "yilian", "up", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        port = None
        deadline = time.monotonic() + 180
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            match = re.search(r"Listening on 127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, "".join(output)
        text = "".join(output)
        assert "doctor" in text and "Yilian-demo-2026" in text and "13800000001" in text
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=10) as page:
            assert page.status == 200
        with urllib.request.urlopen(f"{base}/static/vendor/htmx.min.js", timeout=10) as asset:
            assert asset.status == 200 and asset.headers["Server"].startswith("Yilian")
        workers = [
            pid for pid in _children(proc.pid) if "db_worker" in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert len(workers) == 1
        periodic = [
            pid for pid in _children(proc.pid) if "periodic" in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert len(periodic) == 1, "the housekeeping jobs run beside the server"
        _demo_patient_signs_in_with_the_code_printed_on_the_console(base, proc, output)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        assert not _alive(workers[0]), "the worker stops with the server"
        assert not _alive(periodic[0]), "the periodic jobs stop with the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _demo_patient_signs_in_with_the_code_printed_on_the_console(base: str, proc, output: list[str]) -> None:
    """The demo mode's SMS sender: the worker prints the sign-in code on ``yilian up``'s console."""
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    with httpx.Client(base_url=base, timeout=10) as client:
        client.get("/accounts/patient/login/").raise_for_status()
        form = {"phone": DEMO_PATIENT_PHONE, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
        client.post("/accounts/patient/login/code/", data=form).raise_for_status()
        code = None
        deadline = time.monotonic() + 60
        while code is None and time.monotonic() < deadline:
            printed = "".join(output)
            match = re.search(r"\[演示短信 demo SMS\] 138\*\*\*\*0001: .*?(\d{6})", printed)
            code = match.group(1) if match else None
            time.sleep(0.2)
        assert code, "".join(output)
        assert DEMO_PATIENT_PHONE not in "".join(output).split("Listening on")[-1], "phones stay masked"
        verified = client.post("/accounts/patient/login/verify/", data={**form, "code": code})
        assert verified.status_code in (200, 302)
        family = client.get("/h5/family/")
        assert family.status_code == 200 and "/accounts/patient/login/" not in str(family.url)


def test_demo_sms_sender_prints_the_message_with_the_phone_masked(capsys):
    from yilian.ops.demo.sms import DemoSmsSender

    DemoSmsSender().send("13800000001", "【医联】您的登录验证码是 123456")
    printed = capsys.readouterr().out
    assert "123456" in printed and "138****0001" in printed and "13800000001" not in printed


def test_worker_gets_the_demo_sms_sender_only_for_a_demo_without_a_gateway(monkeypatch):
    from yilian.ops.demo.sms import PATH
    from yilian.ops.management.commands.up import worker_environment

    monkeypatch.delenv("YILIAN_SMS_SENDER", raising=False)
    assert worker_environment(demo=True)["YILIAN_SMS_SENDER"] == PATH
    assert "YILIAN_SMS_SENDER" not in worker_environment(demo=False)
    monkeypatch.setenv("YILIAN_SMS_SENDER", "hospital.sms.Gateway")
    assert worker_environment(demo=True)["YILIAN_SMS_SENDER"] == "hospital.sms.Gateway"


def test_up_refuses_a_port_in_use_before_touching_the_database():
    from django.core.management import CommandError, call_command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(CommandError, match="in use"):
            call_command("up", host="127.0.0.1", port=busy.getsockname()[1])


def test_forwarded_headers_are_trusted_only_from_the_named_proxy():
    from yilian.ops.management.commands.up import Command

    base = {"host": "127.0.0.1", "port": 8000, "threads": 8}
    direct = Command._waitress_options({**base, "trusted_proxy": ""})
    assert "trusted_proxy" not in direct and direct["clear_untrusted_proxy_headers"] is True
    proxied = Command._waitress_options({**base, "trusted_proxy": "10.0.0.2"})
    assert proxied["trusted_proxy"] == "10.0.0.2"
    assert proxied["trusted_proxy_headers"] == {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}


def test_postgresql_is_served_by_several_processes_and_sqlite_by_one():
    """A single process is bound by the interpreter lock; SQLite has one writer for the whole file."""
    from yilian.ops.management.commands.up import choose_server

    assert choose_server("auto", vendor="postgresql") == "gunicorn"
    assert choose_server("auto", vendor="sqlite") == "waitress"
    assert choose_server("waitress", vendor="postgresql") == "waitress"


def _seen_by_app(wrapper_factory, environ: dict) -> dict:
    seen = {}

    def app(env, start_response):
        seen.update(env)
        return []

    wrapper_factory(app)(environ, lambda *a: None)
    return seen


def test_gunicorn_believes_forwarded_headers_only_from_the_named_proxy():
    from yilian.ops.management.commands.up import ProxyHeaders

    forwarded = {
        "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "yilian.example.cn",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
    }
    proxied = _seen_by_app(lambda a: ProxyHeaders(a, "10.0.0.2"), {**forwarded, "REMOTE_ADDR": "10.0.0.2"})
    assert proxied["REMOTE_ADDR"] == "198.51.100.7"  # the hop the proxy itself saw
    assert proxied["wsgi.url_scheme"] == "https" and proxied["HTTP_HOST"] == "yilian.example.cn"
    assert "HTTP_X_FORWARDED_FOR" not in proxied
    spoofed = _seen_by_app(lambda a: ProxyHeaders(a, "10.0.0.2"), {**forwarded, "REMOTE_ADDR": "192.0.2.50"})
    assert spoofed["REMOTE_ADDR"] == "192.0.2.50" and spoofed["wsgi.url_scheme"] == "http"
    assert spoofed["HTTP_HOST"] == "127.0.0.1:8000" and "HTTP_X_FORWARDED_FOR" not in spoofed
    direct = _seen_by_app(lambda a: ProxyHeaders(a, ""), {**forwarded, "REMOTE_ADDR": "10.0.0.2"})
    assert direct["REMOTE_ADDR"] == "10.0.0.2" and "HTTP_X_FORWARDED_PROTO" not in direct


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="gunicorn serves PostgreSQL set-ups"
)
@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to count the processes")
def test_up_on_postgresql_serves_with_worker_processes_and_stops_them_all(tmp_path):
    env = {**os.environ, "YILIAN_VAR_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "yilian", "up", "--no-demo", "--port", "0", "--workers", "2"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        port = None
        deadline = time.monotonic() + 180
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            match = re.search(r"Listening on 127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, "".join(output)
        assert "gunicorn, 2 processes" in "".join(output)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as page:
            assert page.status == 200
        deadline = time.monotonic() + 30  # the banner comes before gunicorn forks its workers
        while len(children := _children(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [pid for pid in children if "db_worker" in Path(f"/proc/{pid}/cmdline").read_text()]
        periodic = [pid for pid in children if "periodic" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(workers) == 1 and len(periodic) == 1 and len(children) == 4, (
            "one task worker, one periodic-jobs process and two web workers"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        assert not any(_alive(pid) for pid in children), "every child stops with the server"
        output.append(proc.stdout.read())
        assert "".join(output).count("Stopped.") == 1, "forked web workers never run the master's clean-up"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
