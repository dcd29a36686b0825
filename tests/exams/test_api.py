"""``/api/v1/exams/``: the error contract of access.md §0.1 and the plan round trip."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from tests import factories as f
from yilian.accounts import services as account_services
from yilian.accounts.selectors import actor_for_user
from yilian.exams.models import ExamAppointment, ExamOrder

API = "/api/v1/exams"
pytestmark = pytest.mark.django_db


def post(client, url, body, **extra):
    return client.post(url, json.dumps(body), content_type="application/json", **extra)


def test_a_system_key_places_orders_idempotently_and_a_doctor_too(client, centre, staff_of, community):
    secadmin = staff_of("secadmin")
    _, key = account_services.create_api_key(
        actor=actor_for_user(secadmin.user), organisation=community.county, name="县医院 HIS"
    )
    body = {
        "patient_id": centre.patient.pk,
        "exam_code": "CT-HEAD",
        "paid_or_covered": True,
        "placer_number": "HIS-1",
    }
    first = post(client, f"{API}/orders", body, HTTP_X_API_KEY=key)
    assert first.status_code == 201, first.content
    again = post(client, f"{API}/orders", body, HTTP_X_API_KEY=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert first.json()["fhir_status"] == "active"
    client.force_login(centre.doctor.user)
    made = post(client, f"{API}/orders", {"patient_id": centre.patient.pk, "exam_code": "US-ABD"})
    assert made.status_code == 201 and made.json()["paid_or_covered"] is False
    bad = post(client, f"{API}/orders", {"patient_id": centre.patient.pk, "exam_code": "NOPE"})
    assert bad.status_code == 422 and bad.json()["field"] == "exam_code"
    assert ExamOrder.objects.count() == 2


def test_plan_round_trip_and_error_codes(client, centre):
    us, barium = centre.order("US-ABD"), centre.order("GI-BA")
    unpaid = centre.order("CT-HEAD", paid=False)
    client.force_login(centre.account.user)
    plan = client.get(f"{API}/patients/{centre.patient.pk}/plan").json()
    assert plan["visit_days"] == 1 and plan["unpaid_order_ids"] == [unpaid.pk]
    assert any("禁食" in line for line in plan["days"][0]["preparation"])
    items = [
        {"order_id": i["order_id"], "resource_id": i["resource_id"], "starts_at": i["starts_at"]}
        for i in plan["days"][0]["items"]
    ]
    assert [i["exam_code"] for i in plan["days"][0]["items"]] == ["US-ABD", "GI-BA"]

    # ORDER_NOT_ACTIVE 422: the unpaid order.
    ct1 = centre.resources["CT1"].pk
    response = post(
        client,
        f"{API}/patients/{centre.patient.pk}/plan",
        {"items": [{"order_id": unpaid.pk, "resource_id": ct1, "starts_at": centre.at(9).isoformat()}]},
    )
    assert response.status_code == 422 and response.json()["code"] == "ORDER_NOT_ACTIVE"
    # EXAM_CONFLICT 422: barium before the ultrasound.
    swapped = [
        {
            "order_id": barium.pk,
            "resource_id": centre.resources["RF1"].pk,
            "starts_at": centre.at(8).isoformat(),
        },
        {
            "order_id": us.pk,
            "resource_id": centre.resources["US1"].pk,
            "starts_at": centre.at(10).isoformat(),
        },
    ]
    response = post(client, f"{API}/patients/{centre.patient.pk}/plan", {"items": swapped})
    assert response.status_code == 422 and response.json()["code"] == "EXAM_CONFLICT"
    assert response.json()["violations"]
    # The proposal books.
    response = post(client, f"{API}/patients/{centre.patient.pk}/plan", {"items": items})
    assert response.status_code == 201, response.content
    booked = response.json()
    assert {a["fhir_status"] for a in booked} == {"booked"} and "禁食" in booked[0]["preparation"]
    listed = client.get(f"{API}/appointments?patient_id={centre.patient.pk}").json()
    assert len(listed) == 2
    cancelled = post(client, f"{API}/appointments/{booked[0]['id']}/cancel", {"reason": "有事"})
    assert cancelled.status_code == 200 and cancelled.json()["fhir_status"] == "cancelled"


def test_slot_unavailable_is_409(client, centre):
    other = f.make_patient(centre.community.village, name="李四", birth=date(1970, 1, 2))
    mr1 = centre.resources["MR1"].pk
    taken = centre.order("MR-HEAD", patient=other)
    client.force_login(centre.nurse.user)
    item = {"resource_id": mr1, "starts_at": centre.at(9).isoformat()}
    assert (
        post(
            client, f"{API}/patients/{other.pk}/plan", {"items": [{"order_id": taken.pk, **item}]}
        ).status_code
        == 201
    )
    mine = centre.order("MR-HEAD")
    response = post(
        client, f"{API}/patients/{centre.patient.pk}/plan", {"items": [{"order_id": mine.pk, **item}]}
    )
    assert response.status_code == 409 and response.json()["code"] == "SLOT_UNAVAILABLE"


def test_bad_input_gets_a_clear_4xx(client, centre):
    order = centre.order("CT-HEAD")
    ct1 = centre.resources["CT1"].pk
    client.force_login(centre.account.user)
    url = f"{API}/patients/{centre.patient.pk}/plan"
    past = (timezone.localdate() - timedelta(days=2)).isoformat() + "T09:00:00+08:00"
    cases = [
        ({"items": [{"order_id": order.pk, "resource_id": ct1, "starts_at": past}]}, 422),
        (
            {"items": [{"order_id": order.pk, "resource_id": 99999, "starts_at": centre.at(9).isoformat()}]},
            404,
        ),
        ({"items": [{"order_id": order.pk, "resource_id": ct1, "starts_at": centre.at(7).isoformat()}]}, 422),
        ({"items": [{"order_id": order.pk, "resource_id": ct1, "starts_at": "2026-12-01T09:00:00"}]}, 422),
        ({"items": [{"order_id": order.pk, "resource_id": ct1, "starts_at": "not a time"}]}, 422),
        ({"items": []}, 422),
    ]
    for body, status in cases:
        response = post(client, url, body)
        assert response.status_code == status, (body, response.content)
        assert response.json()["code"]
    # A patient of someone else's account looks missing.
    stranger = f.make_patient(centre.community.village, name="王五", birth=date(1960, 3, 3))
    assert client.get(f"{API}/patients/{stranger.pk}/plan").status_code == 404
    assert client.get(f"{API}/resources/{ct1}/calendar").status_code == 403  # patients see no calendar
    client.force_login(centre.nurse.user)
    assert client.get(f"{API}/resources/99999/calendar").status_code == 404
    assert client.get(f"{API}/resources/{ct1}/calendar?date=2026-13-45").status_code == 422
    assert not ExamAppointment.objects.exists()


def test_calendar_shows_capacity_and_masked_bookings(client, centre):
    order = centre.order("CT-HEAD")
    client.force_login(centre.nurse.user)
    ct1 = centre.resources["CT1"]
    booked = post(
        client,
        f"{API}/patients/{centre.patient.pk}/plan",
        {"items": [{"order_id": order.pk, "resource_id": ct1.pk, "starts_at": centre.at(9).isoformat()}]},
    )
    assert booked.status_code == 201, booked.content
    body = client.get(f"{API}/resources/{ct1.pk}/calendar?date={centre.day.isoformat()}").json()
    nine = next(s for s in body["segments"] if datetime.fromisoformat(s["starts_at"]) == centre.at(9))
    assert nine["capacity"] == ct1.capacity_per_segment and nine["booked"] == 1
    assert nine["patients"][0]["name"] == "张*丰"


def test_packages_public_list_and_order_codes(client, centre):
    listed = client.get(f"{API}/packages").json()
    assert {p["code"] for p in listed} >= {"PE-BASIC", "PE-F"}
    client.force_login(centre.account.user)
    women = centre.packages["PE-F"].pk
    response = post(
        client,
        f"{API}/packages/{women}/orders",
        {"patient_id": centre.patient.pk, "date": centre.day.isoformat()},
    )
    assert response.status_code == 422 and response.json()["code"] == "PACKAGE_NOT_ELIGIBLE"
    basic = centre.packages["PE-BASIC"]
    basic.daily_capacity = 1
    basic.save()
    ok = post(
        client,
        f"{API}/packages/{basic.pk}/orders",
        {"patient_id": centre.patient.pk, "date": centre.day.isoformat()},
    )
    assert ok.status_code == 201
    client.force_login(centre.nurse.user)
    other = f.make_patient(centre.community.village, name="李四", birth=date(1970, 1, 2))
    full = post(
        client, f"{API}/packages/{basic.pk}/orders", {"patient_id": other.pk, "date": centre.day.isoformat()}
    )
    assert full.status_code == 409 and full.json()["code"] == "SLOT_UNAVAILABLE"
    past = post(client, f"{API}/packages/{basic.pk}/orders", {"patient_id": other.pk, "date": "2020-01-01"})
    assert past.status_code == 422


def test_reschedule_moves_the_appointment_atomically(client, centre):
    order = centre.order("MR-HEAD")
    mr1 = centre.resources["MR1"].pk
    client.force_login(centre.account.user)
    url = f"{API}/patients/{centre.patient.pk}/plan"
    first = post(
        client,
        url,
        {"items": [{"order_id": order.pk, "resource_id": mr1, "starts_at": centre.at(9).isoformat()}]},
    )
    appointment_id = first.json()[0]["id"]
    moved = post(
        client,
        f"{API}/appointments/{appointment_id}/reschedule",
        {"resource_id": mr1, "starts_at": centre.at(10).isoformat()},
    )
    assert moved.status_code == 201 and moved.json()["id"] != appointment_id
    old = ExamAppointment.objects.get(pk=appointment_id)
    assert old.status == "cancelled" and old.cancel_reason == "oth-rescheduled"
    # Moving a cancelled appointment is refused (§8).
    again = post(
        client,
        f"{API}/appointments/{appointment_id}/reschedule",
        {"resource_id": mr1, "starts_at": centre.at(11).isoformat()},
    )
    assert again.status_code == 422 and again.json()["code"] == "INVALID_STATUS_TRANSITION"


def test_a_patient_cannot_cancel_an_exam_already_signed_in(client, centre):
    order = centre.order("CT-HEAD")
    client.force_login(centre.account.user)
    booked = post(
        client,
        f"{API}/patients/{centre.patient.pk}/plan",
        {
            "items": [
                {
                    "order_id": order.pk,
                    "resource_id": centre.resources["CT1"].pk,
                    "starts_at": centre.at(9).isoformat(),
                }
            ]
        },
    )
    ExamAppointment.objects.filter(pk=booked.json()[0]["id"]).update(status="arrived")
    response = post(client, f"{API}/appointments/{booked.json()[0]['id']}/cancel", {})
    assert response.status_code == 422


def test_list_endpoints_use_a_constant_number_of_queries(client, centre, django_assert_max_num_queries):
    client.force_login(centre.nurse.user)
    for hour in (8, 9, 10):
        order = centre.order("CT-HEAD")
        post(
            client,
            f"{API}/patients/{centre.patient.pk}/plan",
            {
                "items": [
                    {
                        "order_id": order.pk,
                        "resource_id": centre.resources["CT1"].pk,
                        "starts_at": centre.at(hour).isoformat(),
                    }
                ]
            },
        )
    with django_assert_max_num_queries(8):
        assert len(client.get(f"{API}/appointments").json()) == 3
    with django_assert_max_num_queries(8):
        assert len(client.get(f"{API}/orders").json()) == 3
    with django_assert_max_num_queries(6):
        assert len(client.get(f"{API}/packages").json()) == 4
    with django_assert_max_num_queries(10):
        client.get(f"{API}/resources/{centre.resources['CT1'].pk}/calendar?date={centre.day.isoformat()}")
