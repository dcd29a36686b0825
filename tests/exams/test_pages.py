"""Exam centre pages: the calendar, the one-click plan panel and the patient's phone page."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories as f
from yilian.exams import rules
from yilian.exams.models import ExamAppointment, PackageOrder

pytestmark = pytest.mark.django_db


def test_centre_calendar_shows_resources_segments_and_waiting_patients(client, centre):
    centre.order("US-ABD")
    client.force_login(centre.nurse.user)
    page = client.get(f"/exams/?date={centre.day.isoformat()}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "CT 1号机" in html and "08:00" in html and "0/4" in html
    assert "张*丰" in html  # the work list masks names
    grid = client.get(f"/exams/?part=grid&date={centre.day.isoformat()}", HTTP_HX_REQUEST="true")
    assert grid.status_code == 200 and "待预约患者" not in grid.content.decode()


def test_one_click_plan_books_and_shows_preparation(client, centre):
    centre.order("US-ABD")
    centre.order("GI-BA")
    client.force_login(centre.nurse.user)
    panel = client.get(f"/exams/patients/{centre.patient.pk}/plan/")
    assert panel.status_code == 200 and "一键预约" in panel.content.decode()
    assert "禁食" in panel.content.decode()
    booked = client.post(f"/exams/patients/{centre.patient.pk}/plan/", HTTP_HX_REQUEST="true")
    assert booked.status_code == 200 and booked["HX-Trigger"] == "exams-booked"
    assert ExamAppointment.objects.filter(status=rules.BOOKED).count() == 2
    # A stranger's patient looks missing.
    other_nurse_org = f.make_org("外县医院", "county_hospital", code="OTHER1")
    outsider = f.make_staff("nurse", other_nurse_org)
    client.force_login(outsider.user)
    assert client.get(f"/exams/patients/{centre.patient.pk}/plan/").status_code == 404


def test_patient_phone_page_books_cancels_and_orders_a_package(client, centre):
    centre.order("CT-HEAD")
    client.force_login(centre.account.user)
    page = client.get("/exams/my/")
    assert page.status_code == 200 and "头颅CT平扫" in page.content.decode()
    client.post(f"/exams/my/{centre.patient.pk}/book/")
    appointment = ExamAppointment.objects.get()
    page = client.get("/exams/my/").content.decode()
    assert "提前30分钟" in page and "取消预约" in page
    client.post(f"/exams/my/appointments/{appointment.pk}/cancel/")
    appointment.refresh_from_db()
    assert appointment.status == rules.CANCELLED
    basic = centre.packages["PE-BASIC"]
    client.post(
        f"/exams/my/packages/{basic.pk}/order/",
        {"patient_id": centre.patient.pk, "date": centre.day.isoformat()},
    )
    assert PackageOrder.objects.filter(patient=centre.patient).count() == 1
    page = client.get("/exams/my/").content.decode()
    assert "基础体检套餐" in page and "不符合该套餐项目的性别或年龄要求" in page  # 女性套餐 for 张三丰
    women = centre.packages["PE-F"]
    refused = client.post(
        f"/exams/my/packages/{women.pk}/order/",
        {"patient_id": centre.patient.pk, "date": centre.day.isoformat()},
        follow=True,
    )
    assert "妇科检查" in refused.content.decode()
    # Someone else's patient cannot be booked from this account.
    stranger = f.make_patient(centre.community.village, name="赵六", birth=date(1990, 1, 1))
    client.post(
        f"/exams/my/packages/{basic.pk}/order/", {"patient_id": stranger.pk, "date": centre.day.isoformat()}
    )
    assert not PackageOrder.objects.filter(patient=stranger).exists()
    mine = PackageOrder.objects.get(patient=centre.patient)
    client.post(f"/exams/my/package-orders/{mine.pk}/cancel/")
    mine.refresh_from_db()
    assert mine.status == "cancelled"
