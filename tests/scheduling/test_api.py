"""The scheduling API: error contract of access.md §0.1, idempotency header, no 500 on bad input."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.scheduling.factories import make_booker, make_department, make_doctor, make_session, scheduler
from yilian.scheduling import rules
from yilian.scheduling.models import Appointment

URL = "/api/v1/scheduling"


@pytest.fixture
def setup(community):
    county = community.county
    day = timezone.localdate() + timedelta(days=4)  # released, referral reserve not yet returned
    dept = make_department(county)
    doctor = make_doctor(county, dept)
    session = make_session(
        county,
        department=dept,
        doctor=doctor,
        day=day,
        windows=[(time(8), time(9), 5), (time(9), time(10), 5)],
        now=timezone.now(),
    )
    return county, dept, doctor, session


def signed_in(booker) -> Client:
    c = Client()
    c.force_login(booker.account.user)
    return c


def test_public_availability_by_time_segment_hides_reserved_numbers(setup):
    _county, dept, _doctor, session = setup
    r = Client().get(f"{URL}/sessions", {"department": dept.pk, "date": session.service_date.isoformat()})
    assert r.status_code == 200, r.content
    [s] = r.json()
    assert s["id"] == session.pk and s["released"] and s["fhir_active"]
    assert s["free"] == 7  # 10 numbers, 3 reserved for referrals
    assert sorted(w["free"] for w in s["windows"]) == [3, 4]
    assert len(s["windows"]) == 2


def test_availability_query_count_does_not_grow_with_sessions(setup, django_assert_max_num_queries):
    county, dept, _doctor, session = setup
    for _ in range(3):
        make_session(
            county,
            department=dept,
            doctor=make_doctor(county, dept),
            day=session.service_date,
            now=timezone.now(),
        )
    with django_assert_max_num_queries(4):
        r = Client().get(f"{URL}/sessions", {"department": dept.pk, "date": session.service_date.isoformat()})
    assert len(r.json()) == 4


def test_bad_date_is_a_422_not_a_500(setup):
    r = Client().get(f"{URL}/sessions", {"department": setup[1].pk, "date": "2026-13-45"})
    assert r.status_code == 422 and r.json()["code"] == "INVALID_INPUT"


def test_book_then_replay_with_the_same_header_key(setup):
    county, _dept, _doctor, session = setup
    booker = make_booker(county)
    c = signed_in(booker)
    body = {"patient_id": booker.patient.pk, "session_id": session.pk}
    r1 = c.post(f"{URL}/appointments", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert r1.status_code == 201, r1.content
    data = r1.json()
    assert data["seq"] == 1 and data["status"] == "booked" and data["fhir_status"] == "booked"
    assert data["arrive_by"] < data["segment_start"]
    r2 = c.post(f"{URL}/appointments", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert r2.status_code == 200 and r2.json()["id"] == data["id"]
    assert Appointment.objects.count() == 1


def test_error_codes_and_statuses_are_the_contract(setup):
    county, dept, _doctor, session = setup
    unverified = make_booker(county, verified=False)
    r = signed_in(unverified).post(
        f"{URL}/appointments",
        {"patient_id": unverified.patient.pk, "session_id": session.pk},
        content_type="application/json",
    )
    assert (r.status_code, r.json()["code"]) == (403, "REALNAME_REQUIRED")

    booker = make_booker(county)
    c = signed_in(booker)
    body = {"patient_id": booker.patient.pk, "session_id": session.pk}
    assert c.post(f"{URL}/appointments", body, content_type="application/json").status_code == 201
    r = c.post(f"{URL}/appointments", body, content_type="application/json")
    assert (r.status_code, r.json()["code"]) == (409, "DUPLICATE_SESSION_BOOKING")

    for _ in range(6):  # the rest of the 7 public numbers
        other = make_booker(county)
        assert (
            signed_in(other)
            .post(
                f"{URL}/appointments",
                {"patient_id": other.patient.pk, "session_id": session.pk},
                content_type="application/json",
            )
            .status_code
            == 201
        )
    late = make_booker(county)
    r = signed_in(late).post(
        f"{URL}/appointments",
        {"patient_id": late.patient.pk, "session_id": session.pk},
        content_type="application/json",
    )
    assert (r.status_code, r.json()["code"]) == (409, "SLOT_UNAVAILABLE")
    assert "约满" in r.json()["message"]

    far = make_session(
        county, department=dept, day=timezone.localdate() + timedelta(days=20), now=timezone.now()
    )
    r = c.post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": far.pk},
        content_type="application/json",
    )
    assert (r.status_code, r.json()["code"]) == (422, "NOT_YET_RELEASED")


def test_bad_input_is_a_clear_4xx(setup):
    county, _dept, _doctor, session = setup
    booker = make_booker(county)
    c = signed_in(booker)
    r = c.post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": 999999},
        content_type="application/json",
    )
    assert r.status_code == 404
    r = c.post(f"{URL}/appointments", {"patient_id": booker.patient.pk}, content_type="application/json")
    assert r.status_code == 422
    r = c.post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": session.pk, "idempotency_key": "x" * 65},
        content_type="application/json",
    )
    assert r.status_code == 422
    r = Client().post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": session.pk},
        content_type="application/json",
    )
    assert r.status_code == 401
    assert not Appointment.objects.exists()


def test_cancel_through_the_api(setup):
    county, _dept, _doctor, session = setup
    booker = make_booker(county)
    c = signed_in(booker)
    a = c.post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": session.pk},
        content_type="application/json",
    ).json()
    r = c.post(
        f"{URL}/appointments/{a['id']}/cancel", {"reason": "临时有事"}, content_type="application/json"
    )
    assert (
        r.status_code == 200 and r.json()["status"] == rules.CANCELLED and r.json()["cancel_reason"] == "pat"
    )
    stranger = make_booker(county)
    r = signed_in(stranger).post(f"{URL}/appointments/{a['id']}/cancel", {}, content_type="application/json")
    assert r.status_code == 404


def test_stop_session_through_the_api(setup):
    county, _dept, doctor, session = setup
    booker = make_booker(county)
    signed_in(booker).post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": session.pk},
        content_type="application/json",
    )
    r = signed_in(booker).post(
        f"{URL}/sessions/{session.pk}/stop", {"reason": "x"}, content_type="application/json"
    )
    assert r.status_code == 403
    c = Client()
    c.force_login(doctor.user)
    r = c.post(f"{URL}/sessions/{session.pk}/stop", {"reason": "外出会诊"}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "stopped" and not r.json()["fhir_active"] and r.json()["free"] == 0
    assert Appointment.objects.get().cancel_reason == rules.REASON_PROVIDER


def test_create_session_through_the_api(community):
    county = community.county
    dept = make_department(county)
    actor = scheduler(county)
    from yilian.accounts.models import User

    c = Client()
    c.force_login(User.objects.get(pk=actor.user_id))
    day = (timezone.localdate() + timedelta(days=3)).isoformat()
    body = {
        "department_id": dept.pk,
        "service_date": day,
        "period": "pm",
        "windows": [{"start": "14:00", "end": "15:00", "capacity": 10}],
    }
    r = c.post(f"{URL}/sessions", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["fee_class"] == "general"
    r = c.post(f"{URL}/sessions", body, content_type="application/json")
    assert r.status_code == 409
    body["windows"] = [{"start": "15:00", "end": "14:00", "capacity": 10}]
    body["period"] = "evening"
    assert c.post(f"{URL}/sessions", body, content_type="application/json").status_code == 422


def test_waitlist_through_the_api(setup):
    county, _dept, _doctor, session = setup
    first = make_booker(county)
    body = {"patient_id": first.patient.pk}
    r = signed_in(first).post(f"{URL}/sessions/{session.pk}/waitlist", body, content_type="application/json")
    assert (r.status_code, r.json()["code"]) == (409, "SLOTS_AVAILABLE")
    for _ in range(7):
        b = make_booker(county)
        signed_in(b).post(
            f"{URL}/appointments",
            {"patient_id": b.patient.pk, "session_id": session.pk},
            content_type="application/json",
        )
    r = signed_in(first).post(f"{URL}/sessions/{session.pk}/waitlist", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["position"] == 1 and r.json()["status"] == "waiting"
    r = signed_in(first).post(f"{URL}/waitlist/{r.json()['id']}/leave", content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_api_books_in_a_chosen_segment_and_refuses_an_unknown_one(setup):  # B-19
    county, _dept, _doctor, session = setup
    booker = make_booker(county)
    c = signed_in(booker)
    day = session.service_date.isoformat()
    ok = c.post(
        f"{URL}/appointments",
        {"patient_id": booker.patient.pk, "session_id": session.pk, "segment_start": f"{day}T09:00:00"},
        content_type="application/json",
    )
    assert ok.status_code == 201, ok.content
    slot = Appointment.objects.get(pk=ok.json()["id"]).slot
    assert slot.starts_at == rules.local_datetime(session.service_date, time(9))
    other = make_booker(county)
    bad = signed_in(other).post(
        f"{URL}/appointments",
        {"patient_id": other.patient.pk, "session_id": session.pk, "segment_start": f"{day}T11:00:00+08:00"},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["field"] == "segment_start"


def test_a_schedule_manager_corrects_a_no_show_through_the_api(community, staff_of, login):  # B-13
    from tests.scheduling.test_booking import _past_booking
    from yilian.common.models import AuditEvent

    booker = make_booker(community.county)
    missed = _past_booking(booker, timezone.localdate() - timedelta(days=3), status=rules.NO_SHOW)
    url = f"{URL}/appointments/{missed.pk}/correct-no-show"
    c = login(staff_of("coordinator"))
    r = c.post(url, {"reason": ""}, content_type="application/json")
    assert r.status_code == 422  # a correction needs its reason
    r = c.post(url, {"reason": "患者当日已到诊，漏签到"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == rules.ENTERED_IN_ERROR, r.content
    assert AuditEvent.objects.filter(action="scheduling.no_show_corrected", object_id=str(missed.pk)).exists()
    r = c.post(url, {"reason": "再次更正"}, content_type="application/json")
    assert r.status_code == 422 and r.json()["code"] == "INVALID_STATUS_TRANSITION"  # only a no-show
    nurse = login(staff_of("nurse"))
    assert nurse.post(url, {"reason": "x"}, content_type="application/json").status_code == 403
