"""``yilian periodic``: the timed housekeeping runs every job, and one failure stops none of the others."""

import pytest
from django.core.management import call_command

from yilian.ops.management.commands import periodic

pytestmark = pytest.mark.django_db


def test_once_runs_every_job(monkeypatch):
    ran = []
    monkeypatch.setattr(periodic, "call_command", lambda name, **kw: ran.append(name))
    monkeypatch.setattr("yilian.patients.card.purge_token_uses", lambda: ran.append("purge_card_nonces"))
    call_command("periodic", "--once")
    assert sorted(ran) == sorted(name for name, _every in periodic.JOBS)


def test_a_failing_job_does_not_stop_the_others(monkeypatch, capsys):
    ran = []

    def fake(name, **kw):
        if name == "dispatch_sms":
            raise RuntimeError("gateway down")
        ran.append(name)

    monkeypatch.setattr(periodic, "call_command", fake)
    call_command("periodic", "--once")
    assert "scheduling_tick" in ran and "close_queues" in ran
    assert "dispatch_sms" in capsys.readouterr().err


def test_the_real_jobs_run_on_an_empty_database():
    assert all(periodic.run_job(name) for name, _every in periodic.JOBS)
