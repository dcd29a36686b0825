"""The auditor's audit-log search: filters, paging, CSV export; searching is itself audited."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from yilian.common import policy
from yilian.common.models import AuditEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")


def event(
    action="patient.view", *, actor=None, at=None, patient_id=None, outcome="ok", **extra
) -> AuditEvent:
    user = getattr(actor, "user", actor)
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        actor=user,
        actor_label=user.username if user else "system",
        action=action,
        patient_id=patient_id,
        outcome=outcome,
        **extra,
    )


@pytest.fixture
def auditor(staff_of):
    return staff_of(policy.AUDITOR, username="shenji")


@pytest.fixture
def doctor(staff_of):
    return staff_of(policy.DOCTOR, username="wangyisheng")


def titles(response) -> list[str]:
    return [item["action"] for item in response.json()["items"]]


def test_auditor_searches_by_actor_username(client, login, auditor, doctor, staff_of):
    nurse = staff_of(policy.NURSE, username="hushi")
    event("patient.view", actor=doctor)
    event("patient.update", actor=nurse)
    login(auditor)
    response = client.get("/api/v1/audit/events", {"actor": "WangYiSheng"})
    assert response.status_code == 200
    assert titles(response) == ["patient.view"]


def test_auditor_searches_by_patient_action_prefix_and_outcome(client, login, auditor, doctor):
    event("patient.view", actor=doctor, patient_id=7)
    event("patient.update", actor=doctor, patient_id=7, outcome="refused")
    event("patient.view", actor=doctor, patient_id=8)
    event("scheduling.book", actor=doctor, patient_id=7)
    login(auditor)
    body = client.get("/api/v1/audit/events", {"patient_id": 7, "action": "patient."}).json()
    assert body["count"] == 2
    assert {i["action"] for i in body["items"]} == {"patient.view", "patient.update"}
    refused = client.get("/api/v1/audit/events", {"patient_id": 7, "outcome": "refused"})
    assert titles(refused) == ["patient.update"]


def test_date_range_takes_whole_local_days(client, login, auditor, doctor):
    event("a.before", actor=doctor, at=datetime(2026, 3, 1, 23, 59, tzinfo=SHANGHAI))
    event("a.first", actor=doctor, at=datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI))
    event("a.last", actor=doctor, at=datetime(2026, 3, 3, 23, 59, tzinfo=SHANGHAI))
    event("a.after", actor=doctor, at=datetime(2026, 3, 4, 0, 0, tzinfo=SHANGHAI))
    login(auditor)
    response = client.get(
        "/api/v1/audit/events", {"action": "a.", "date_from": "2026-03-02", "date_to": "2026-03-03"}
    )
    assert titles(response) == ["a.last", "a.first"]


def test_reversed_date_range_is_refused(client, login, auditor):
    login(auditor)
    response = client.get("/api/v1/audit/events", {"date_from": "2026-03-05", "date_to": "2026-03-01"})
    assert response.status_code == 422
    assert response.json()["field"] == "date_from"


def test_api_search_is_itself_audited(client, login, auditor):
    login(auditor)
    client.get("/api/v1/audit/events", {"patient_id": 42})
    logged = AuditEvent.objects.get(action="audit.view")
    assert logged.actor_id == auditor.user_id
    assert logged.detail["filters"] == {"patient_id": 42}


def test_auditor_search_page_filters_and_is_audited(client, login, auditor, doctor):
    event("patient.view", actor=doctor, patient_id=5)
    event("patient.merge", actor=doctor, patient_id=6)
    login(auditor)
    response = client.get(reverse("common:audit-log"), {"patient_id": 5})
    assert response.status_code == 200
    page = response.content.decode()
    assert "patient.view" in page and "patient.merge" not in page
    assert AuditEvent.objects.filter(action="audit.view", actor=auditor.user).count() == 1


def test_search_page_paginates(client, login, auditor, doctor):
    base = timezone.now() - timedelta(hours=1)
    for n in range(55):
        event(f"bulk.{n:02d}", actor=doctor, at=base + timedelta(seconds=n))
    login(auditor)
    first = client.get(reverse("common:audit-log"), {"action": "bulk."})
    assert first.context["page"].paginator.count == 55
    assert len(first.context["page"].object_list) == 50
    second = client.get(reverse("common:audit-log"), {"action": "bulk.", "page": 2}).content.decode()
    assert "bulk.04" in second and "bulk.05" not in second


def test_invalid_filters_show_an_error_not_a_crash(client, login, auditor):
    login(auditor)
    response = client.get(reverse("common:audit-log"), {"date_from": "2026-03-05", "date_to": "2026-03-01"})
    assert response.status_code == 200
    assert "开始日期不能晚于结束日期" in response.content.decode()
    assert not AuditEvent.objects.filter(action="audit.view").exists()


def test_htmx_search_returns_the_search_fragment(client, login, auditor):
    login(auditor)
    response = client.get(
        reverse("common:audit-log"), {"action": "x"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-search"
    )
    page = response.content.decode()
    assert 'id="audit-search"' in page and "<html" not in page


def test_csv_export_contains_the_search_and_is_audited(client, login, auditor, doctor):
    event("patient.view", actor=doctor, patient_id=9, reason='=HYPERLINK("http://x")')
    event("patient.view", actor=doctor, patient_id=10)
    login(auditor)
    response = client.get(reverse("common:audit-export"), {"patient_id": 9})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "时间"
    assert len(rows) == 2
    assert rows[1][1] == "wangyisheng" and rows[1][9] == "9"
    assert rows[1][10].startswith("'=")  # a formula in a cell is defused
    exported = AuditEvent.objects.get(action="audit.export")
    assert exported.actor_id == auditor.user_id
    assert exported.detail == {"filters": {"patient_id": 9}, "rows": 1, "matched": 1}


@pytest.mark.parametrize("role", [policy.DOCTOR, policy.SYSADMIN, policy.SECADMIN, policy.NURSE])
def test_non_auditors_are_refused_the_audit_log(client, login, staff_of, role):
    login(staff_of(role))
    assert client.get(reverse("common:audit-log")).status_code == 403
    assert client.get(reverse("common:audit-export")).status_code == 403
    assert client.get("/api/v1/audit/events").status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()
    assert AuditEvent.objects.filter(outcome="refused").count() == 3  # access.md L-1


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get(reverse("common:audit-log"))
    assert response.status_code == 302
    assert client.get("/api/v1/audit/events").status_code == 401


def test_api_query_count_does_not_grow_with_events(client, login, auditor, staff_of):
    login(auditor)
    event("q.one", actor=staff_of(policy.DOCTOR))
    client.get("/api/v1/audit/events", {"action": "q."})
    with CaptureQueriesContext(connection) as few:  # after a first call warmed the session
        client.get("/api/v1/audit/events", {"action": "q."})
    for _ in range(10):
        event("q.more", actor=staff_of(policy.NURSE))
    with CaptureQueriesContext(connection) as many:
        assert client.get("/api/v1/audit/events", {"action": "q."}).json()["count"] == 11
    assert len(many) == len(few) <= 12


def test_export_is_capped_and_the_page_says_so(client, login, auditor, doctor, monkeypatch):
    monkeypatch.setattr("yilian.common.views.EXPORT_MAX_ROWS", 2)
    for n in range(3):
        event(f"cap.{n}", actor=doctor)
    login(auditor)
    assert "导出仅含最新 2 条" in client.get(reverse("common:audit-log"), {"action": "cap."}).content.decode()
    response = client.get(reverse("common:audit-export"), {"action": "cap."})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [r[6] for r in rows[1:]] == ["cap.2", "cap.1"]
    assert AuditEvent.objects.get(action="audit.export").detail["matched"] == 3
