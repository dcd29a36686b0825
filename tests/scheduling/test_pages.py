"""The booking pages through the Django test client: the patient's phone flow (book, double
submit, cancel, waitlist) and schedule management (week grid, create, stop with notification)."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import factories as f
from tests.scheduling.factories import make_booker, make_department, make_doctor, make_session
from yilian.community.models import Staff
from yilian.scheduling import rules
from yilian.scheduling.models import Appointment, ClinicSession, WaitlistEntry


@pytest.fixture
def county(community):
    return community.county


@pytest.fixture
def clinic(county):
    """A department with an expert session in three days (released; its referral reserve not yet
    returned, B-17; cancellable until the day before at 17:00)."""
    department = make_department(county, "心血管内科")
    doctor = make_doctor(county, department, title=Staff.Title.CHIEF_PHYSICIAN, name="王建国")
    day = timezone.localdate() + timedelta(days=3)
    session = make_session(
        county,
        department=department,
        doctor=doctor,
        day=day,
        windows=[(time(8), time(8, 30), 4), (time(8, 30), time(9), 4)],
        now=timezone.now(),
    )
    return department, session


def _patient_client(client, booker):
    client.force_login(booker.account.user)
    return client


def _book(client, session, booker, key="k-1", segment=""):
    return client.post(
        reverse("scheduling:h5-book", args=[session.pk]),
        {"patient_id": booker.patient.pk, "key": key, "segment": segment},
    )


def test_patient_finds_department_and_doctor_and_sees_windows(client, county, clinic):
    department, session = clinic
    c = _patient_client(client, make_booker(county))
    home = c.get(reverse("scheduling:h5-home"), {"q": "王建"})
    assert home.status_code == 200
    text = home.content.decode()
    assert "王建国" in text and "心血管内科" in text and "专家号" in text
    page = c.get(reverse("scheduling:h5-department", args=[department.pk]), {"date": session.service_date})
    text = page.content.decode()
    assert "主任医师" in text and "08:00 余2" in text  # 4 numbers, 50% referral reserve (B-17)
    detail = c.get(reverse("scheduling:h5-session", args=[session.pk])).content.decode()
    assert 'name="key"' in detail and "张三" in detail and "退号截止" in detail


def test_booking_a_window_and_a_double_submit_books_once(client, county, clinic):
    _d, session = clinic
    booker = make_booker(county)
    c = _patient_client(client, booker)
    window = rules.local_datetime(session.service_date, time(8, 30)).isoformat()
    first = _book(c, session, booker, key="same-key", segment=window)
    assert first.status_code == 302 and first.url.startswith(reverse("scheduling:h5-appointments"))
    again = _book(c, session, booker, key="same-key", segment=window)
    assert again.status_code == 302
    appointments = Appointment.objects.filter(patient=booker.patient)
    assert appointments.count() == 1
    assert timezone.localtime(appointments.get().slot.starts_at).time() == time(8, 30)
    page = c.get(reverse("scheduling:h5-appointments")).content.decode()
    assert "预约成功" in page and "没有重复预约" in page and "王建国" in page and "可在" in page


def test_second_booking_in_the_same_session_is_explained(client, county, clinic):
    _d, session = clinic
    booker = make_booker(county)
    c = _patient_client(client, booker)
    _book(c, session, booker, key="a")
    refused = _book(c, session, booker, key="b")
    assert refused.status_code == 409
    assert "同一天同一时段已预约本科室" in refused.content.decode()


def test_suspended_patient_is_told_until_when(client, county, clinic):
    _d, session = clinic
    booker = make_booker(county)
    today = timezone.localdate()
    for i in range(3):
        past = make_session(
            county,
            day=today - timedelta(days=10 + i),
            windows=[(time(8), time(9), 1)],
            now=timezone.now() - timedelta(days=30),
        )
        Appointment.objects.create(
            patient=booker.patient,
            session=past,
            slot=past.slots.first(),
            service_date=past.service_date,
            period=past.period,
            department=past.department,
            status=rules.NO_SHOW,
            channel="app",
            created_by=booker.account.user,
            booked_at=timezone.now() - timedelta(days=20),
        )
    refused = _book(_patient_client(client, booker), session, booker)
    assert refused.status_code == 403
    until = (today - timedelta(days=10) + timedelta(days=90)).strftime("%Y-%m-%d")
    assert "预约功能暂停至" in refused.content.decode() and until in refused.content.decode()


def test_patient_cancels_and_the_number_returns(client, county, clinic):
    _d, session = clinic
    booker = make_booker(county)
    c = _patient_client(client, booker)
    _book(c, session, booker)
    appointment = Appointment.objects.get(patient=booker.patient)
    response = c.post(reverse("scheduling:h5-cancel", args=[appointment.pk]))
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == rules.CANCELLED and appointment.cancel_reason == rules.REASON_PATIENT
    assert "预约已取消" in c.get(reverse("scheduling:h5-appointments")).content.decode()


def test_cancel_after_the_deadline_is_refused_with_the_deadline(client, county):
    department = make_department(county)
    session = make_session(
        county,
        department=department,
        day=timezone.localdate(),
        windows=[(time(23, 0), time(23, 59), 3)],
        now=timezone.now(),
    )
    booker = make_booker(county)
    appointment = Appointment.objects.create(
        patient=booker.patient,
        session=session,
        slot=session.slots.first(),
        service_date=session.service_date,
        period=session.period,
        department=department,
        status=rules.BOOKED,
        channel="app",
        created_by=booker.account.user,
        booked_at=timezone.now(),
    )
    c = _patient_client(client, booker)
    listing = c.get(reverse("scheduling:h5-appointments")).content.decode()
    assert "不能线上取消" in listing and reverse("queueing:my-tickets") in listing
    c.post(reverse("scheduling:h5-cancel", args=[appointment.pk]))
    appointment.refresh_from_db()
    assert appointment.status == rules.BOOKED
    assert "已过截止时间" in c.get(reverse("scheduling:h5-appointments")).content.decode()


def test_full_session_offers_the_waitlist_and_the_patient_can_leave_it(client, county):
    department = make_department(county)
    session = make_session(
        county,
        department=department,
        day=timezone.localdate() + timedelta(days=1),
        windows=[(time(8), time(8, 30), 1)],
        now=timezone.now(),
    )
    first = make_booker(county, name="李四")
    _book(_patient_client(client, first), session, first)
    client.logout()
    booker = make_booker(county)
    c = _patient_client(client, booker)
    page = c.get(reverse("scheduling:h5-session", args=[session.pk])).content.decode()
    assert "加入候补" in page
    c.post(reverse("scheduling:h5-waitlist-join", args=[session.pk]), {"patient_id": booker.patient.pk})
    entry = WaitlistEntry.objects.get(patient=booker.patient)
    assert entry.status == WaitlistEntry.Status.WAITING
    assert "候补第 1 位" in c.get(reverse("scheduling:h5-appointments")).content.decode()
    c.post(reverse("scheduling:h5-waitlist-leave", args=[entry.pk]))
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.CANCELLED


def test_booking_for_a_patient_the_account_does_not_manage_is_not_found(client, county, clinic):
    _d, session = clinic
    stranger = f.make_patient(county, name="赵六")
    booker = make_booker(county)
    response = _patient_client(client, booker).post(
        reverse("scheduling:h5-book", args=[session.pk]), {"patient_id": stranger.pk, "key": "x"}
    )
    assert response.status_code == 404
    assert not Appointment.objects.exists()


def test_staff_pages_refuse_patients_and_h5_refuses_staff(client, county, clinic, login, staff_of):
    _d, session = clinic
    _patient_client(client, make_booker(county))
    assert client.get(reverse("scheduling:sessions")).status_code == 403
    login(staff_of("doctor"))
    assert client.get(reverse("scheduling:h5-home")).status_code == 403
    assert client.get(reverse("scheduling:session-stop", args=[session.pk])).status_code == 403


def test_week_grid_shows_booked_and_free_counts(client, county, clinic, login, staff_of):
    department, session = clinic
    booker = make_booker(county)
    _book(_patient_client(client, booker), session, booker)
    login(staff_of("doctor"))
    page = client.get(
        reverse("scheduling:sessions"), {"department": department.pk, "week": session.service_date}
    )
    text = page.content.decode()
    assert page.status_code == 200 and "王建国" in text and "已约 1/8 · 余 7" in text
    assert reverse("scheduling:session-new") not in text  # a doctor does not manage the schedule
    detail = client.get(reverse("scheduling:session", args=[session.pk])).content.decode()
    assert "张*" in detail and "张三" not in detail


def test_scheduler_creates_a_session_with_thirty_minute_windows(client, county, login):
    department = make_department(county, "骨科")
    doctor = make_doctor(county, department, name="孙立")
    office = f.make_staff("coordinator", county, username="sched-page")
    login(office)
    day = timezone.localdate() + timedelta(days=3)
    grid = client.get(
        reverse("scheduling:sessions"), {"department": department.pk, "week": day}
    ).content.decode()
    assert reverse("scheduling:session-new") in grid
    response = client.post(
        reverse("scheduling:session-new") + f"?department={department.pk}",
        {
            "department": department.pk,
            "doctor": doctor.pk,
            "date": day.isoformat(),
            "period": "pm",
            "start": "14:00",
            "end": "16:00",
            "minutes": "30",
            "capacity": "6",
        },
    )
    assert response.status_code == 302
    session = ClinicSession.objects.get(department=department)
    assert session.capacity == 24 and session.fee_class == rules.GENERAL
    assert session.slots.values("starts_at").distinct().count() == 4
    bad = client.post(
        reverse("scheduling:session-new"),
        {
            "department": department.pk,
            "date": day.isoformat(),
            "period": "am",
            "start": "12:00",
            "end": "08:00",
            "minutes": "30",
            "capacity": "5",
        },
    )
    assert bad.status_code == 422 and "结束时间必须晚于开始时间" in bad.content.decode()


def test_stop_session_confirms_the_count_then_cancels_and_notifies(
    client, county, clinic, login, django_capture_on_commit_callbacks
):
    from yilian.notifications.models import InboxMessage

    _d, session = clinic
    for name in ("张三", "李四"):
        booker = make_booker(county, name=name)
        _book(_patient_client(client, booker), session, booker)
    client.logout()
    office = f.make_staff("coordinator", county, username="sched-stop")
    login(office)
    confirm = client.get(reverse("scheduling:session-stop", args=[session.pk])).content.decode()
    assert "确认停诊并通知 2 位患者" in confirm
    empty = client.post(reverse("scheduling:session-stop", args=[session.pk]), {"reason": " "})
    assert empty.status_code == 422 and "请填写停诊原因" in empty.content.decode()
    assert ClinicSession.objects.get(pk=session.pk).status == ClinicSession.Status.OPEN
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("scheduling:session-stop", args=[session.pk]), {"reason": "医生外出会诊"})
    assert done.status_code == 302
    session.refresh_from_db()
    assert session.status == ClinicSession.Status.STOPPED
    assert set(Appointment.objects.values_list("cancel_reason", flat=True)) == {rules.REASON_PROVIDER}
    assert InboxMessage.objects.count() == 2
