"""Booking pages (``/scheduling/``): the patient's phone (H5) and the schedule office.

Patient H5 (``@requires(PATIENT)``; the services decide which patients the account may book for,
access.md B-16): find a department or doctor, the next 7 days' sessions with free numbers per time
segment (分时段, B-19), book for a family member (idempotent: the form carries a key generated when
it is shown, so a double submit never books twice), my appointments with cancellation (B-7), the
waitlist (候补, B-20) and the link to today's queue ticket.

Staff (schedule management, 出诊排班): the department × week grid, creating a session with its time
segments, stopping a session (停诊, B-15) after a confirmation that says how many patients will be
notified.

Permissions declared here:
- the H5 pages: ``PATIENT`` (a signed-in patient account);
- the week grid and a session's page: ``org.view`` (departments are scoped by it);
- creating and stopping sessions: ``services.SCHEDULE_PERMISSION`` (``org.manage`` until the
  proposed ``schedule.manage`` permission exists; the service re-checks it over the department's
  organisation).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from yilian.common import audit, masking, policy
from yilian.common.access import PATIENT, requires
from yilian.common.errors import DomainError, InvalidInput, NotFound
from yilian.community.models import Department, Staff
from yilian.patients.models import FamilyLink
from yilian.scheduling import errors, rules, selectors, services
from yilian.scheduling.models import Appointment, ClinicSession, WaitlistEntry

SCHEDULE_VIEW_PERMISSION = policy.ORG_VIEW
SCHEDULE_MANAGE_PERMISSION = services.SCHEDULE_PERMISSION

_QUOTA_WINDOWS = {"week": "本周", "month": "本月", "quarter": "本季度"}


def _refusal(request, exc: DomainError) -> str:
    """access.md L-1: a refusal on a page is audited like one through the API; the message is the
    plain-Chinese explanation shown to the user."""
    audit.refused(request.actor, f"page:{request.method} {request.path}"[:64], code=exc.code)
    if isinstance(exc, errors.QuotaExceeded):
        window = _QUOTA_WINDOWS.get(exc.extra.get("window", ""), "")
        if window:
            return _(
                "该就诊人%(window)s的预约次数已达上限（每周8次、每月12次、每季度24次），请到期后再预约。"
            ) % {"window": window}
    if isinstance(exc, errors.CancelDeadlinePassed) and exc.extra.get("deadline"):
        deadline = datetime.fromisoformat(exc.extra["deadline"])
        return _("退号截止时间为 %(at)s，已过截止时间，不能线上取消。如不能就诊，请联系医院。") % {
            "at": deadline.strftime("%m月%d日 %H:%M")
        }
    return str(exc.message)


def _family(actor) -> list[FamilyLink]:
    return list(
        FamilyLink.objects.filter(account_id=actor.patient_account_id)
        .select_related("patient")
        .order_by("-relationship", "created_at")
    )


def _today() -> date:
    return timezone.localdate()


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        return default


# --- Patient H5 -------------------------------------------------------------------------------------------


@requires(PATIENT)
def h5_home(request):
    """预约挂号 home: search departments and doctors that have sessions in the next 7 days."""
    query = (request.GET.get("q") or "").strip()[:30]
    today = _today()
    return render(
        request,
        "scheduling/h5_home.html",
        {
            "query": query,
            "departments": selectors.bookable_departments(today=today, query=query),
            "doctors": selectors.doctors_matching(today=today, query=query),
        },
    )


@requires(PATIENT)
def h5_department(request, department_id: int):
    """A department's next 7 days: a date strip with the free numbers per day, then the day's
    sessions (doctor, title, fee class) with free numbers per time segment."""
    department = get_object_or_404(Department, pk=department_id, is_active=True)
    today = _today()
    now = timezone.now()
    days = []
    for i in range(selectors.BOOKING_DAYS_SHOWN):
        d = today + timedelta(days=i)
        entries = selectors.available_sessions(department_id=department.pk, service_date=d, now=now)
        days.append(
            {
                "day": d,
                "entries": entries,
                "free": sum(e.free for e in entries if e.released and not e.closed),
                "has_sessions": bool(entries),
            }
        )
    chosen = _day(request.GET.get("date"), today)
    current = next((d for d in days if d["day"] == chosen), None)
    if current is None:
        current = next((d for d in days if d["has_sessions"]), days[0])
    doctor_id = request.GET.get("doctor")
    entries = current["entries"]
    if doctor_id and doctor_id.isdigit():
        entries = [e for e in entries if e.session.doctor_id == int(doctor_id)]
    return render(
        request,
        "scheduling/h5_department.html",
        {"department": department, "days": days, "current": current, "entries": entries},
    )


def _session_context(request, session: ClinicSession, *, error: str = "", form: dict | None = None) -> dict:
    entry = selectors.session_availability(session=session, now=timezone.now())
    full = (
        entry.released
        and not entry.closed
        and entry.free == 0
        and session.status == ClinicSession.Status.OPEN
    )
    family = _family(request.actor)
    form = dict(form or {})
    if not form.get("segment"):  # preselect the first segment with a free number
        first = next((w for w in entry.windows if w.free), None)
        form["segment"] = first.starts_at.isoformat() if first else ""
    return {
        "session": session,
        "entry": entry,
        "full": full,
        "family": family,
        "error": error,
        "form": form,
        "key": form.get("key") or uuid.uuid4().hex,
        "cancel_deadline": rules.cancel_deadline(
            session.service_date, services.parameters_for(session.department_id)
        ),
    }


def _open_session(session_id: int) -> ClinicSession:
    session = (
        ClinicSession.objects.select_related("department__organisation", "doctor")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise NotFound()
    return session


@requires(PATIENT)
def h5_session(request, session_id: int):
    """One session: its time segments with free numbers, the family member, and 预约 (or 候补 when full)."""
    session = _open_session(session_id)
    return render(request, "scheduling/h5_session.html", _session_context(request, session))


@require_POST
@requires(PATIENT)
def h5_book(request, session_id: int):
    """Book (预约挂号). The form's key makes a double submit return the first booking (idempotent)."""
    session = _open_session(session_id)
    form = {
        "patient_id": request.POST.get("patient_id", ""),
        "segment": request.POST.get("segment", ""),
        "key": (request.POST.get("key") or "")[:64],
    }
    try:
        if not form["patient_id"].isdigit():
            raise InvalidInput(_("请选择就诊人。"), field="patient_id")
        segment = None
        if form["segment"]:
            try:
                segment = datetime.fromisoformat(form["segment"][:40])
            except ValueError as exc:
                raise InvalidInput(_("所选分时段无效，请重新选择。"), field="segment_start") from exc
        booking = services.book_appointment(
            actor=request.actor,
            patient_id=int(form["patient_id"]),
            session_id=session.pk,
            idempotency_key=form["key"],
            channel=rules.CHANNEL_APP,
            segment_start=segment,
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        context = _session_context(request, session, error=_refusal(request, exc), form=form)
        context["key"] = uuid.uuid4().hex  # a refused attempt booked nothing: a new try gets a new key
        return render(request, "scheduling/h5_session.html", context, status=exc.status)
    appointment = booking.appointment
    if booking.created:
        messages.success(
            request,
            _("预约成功：%(name)s，%(when)s 第%(seq)s号。请于 %(by)s 前到达签到。")
            % {
                "name": appointment.patient.name,
                "when": timezone.localtime(appointment.slot.starts_at).strftime("%m月%d日 %H:%M"),
                "seq": appointment.slot.seq,
                "by": timezone.localtime(rules.arrive_by(appointment.slot.starts_at)).strftime("%H:%M"),
            },
        )
    else:
        messages.info(request, _("这次预约已经提交过，没有重复预约。"))
    return redirect(f"{reverse('scheduling:h5-appointments')}#appt-{appointment.pk}")


@requires(PATIENT)
def h5_appointments(request):
    """我的预约: upcoming and recent appointments of every family member, with cancel (and its
    deadline, B-7), the queue ticket link for today's visits, and open waitlist places."""
    today = _today()
    now = timezone.now()
    upcoming, past = selectors.appointments_of_account(request.actor, today=today)
    rows = []
    for a in upcoming:
        deadline = rules.cancel_deadline(a.service_date, services.parameters_for(a.department_id))
        rows.append(
            {
                "a": a,
                "deadline": deadline,
                "can_cancel": a.status in (rules.HELD, rules.BOOKED) and now <= deadline,
                "active": a.status in (rules.HELD, rules.BOOKED, rules.ARRIVED),
                "today": a.service_date == today,
                "arrive_by": rules.arrive_by(a.slot.starts_at),
            }
        )
    waitlist = [
        {"entry": e, "position": selectors.waitlist_position(e)}
        for e in selectors.open_waitlist_of_account(request.actor)
    ]
    return render(
        request,
        "scheduling/h5_appointments.html",
        {"rows": rows, "past": past, "waitlist": waitlist},
    )


@require_POST
@requires(PATIENT)
def h5_cancel(request, appointment_id: int):
    """退号 (B-7): refused after the deadline, with the deadline in the message."""
    try:
        services.cancel_appointment(actor=request.actor, appointment_id=appointment_id, reason="患者线上取消")
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        messages.error(request, _refusal(request, exc))
    else:
        messages.success(request, _("预约已取消，号源已退回。"))
    return redirect("scheduling:h5-appointments")


@require_POST
@requires(PATIENT)
def h5_waitlist_join(request, session_id: int):
    """候补 (B-20): join a full session's waitlist for a family member."""
    session = _open_session(session_id)
    patient_id = request.POST.get("patient_id", "")
    try:
        if not patient_id.isdigit():
            raise InvalidInput(_("请选择就诊人。"), field="patient_id")
        services.join_waitlist(actor=request.actor, patient_id=int(patient_id), session_id=session.pk)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        context = _session_context(request, session, error=_refusal(request, exc))
        return render(request, "scheduling/h5_session.html", context, status=exc.status)
    messages.success(
        request, _("已加入候补。有号源退回时将按候补顺序为您锁定，并短信通知您在规定时间内支付。")
    )
    return redirect("scheduling:h5-appointments")


@require_POST
@requires(PATIENT)
def h5_waitlist_leave(request, entry_id: int):
    services.leave_waitlist(actor=request.actor, entry_id=entry_id)
    messages.success(request, _("已取消候补。"))
    return redirect("scheduling:h5-appointments")


# --- Staff: schedule management ----------------------------------------------------------------------------


def _monday(value: str | None) -> date:
    day = _day(value, _today())
    return day - timedelta(days=day.weekday())


def _department_for(actor, value) -> Department | None:
    departments = selectors.schedule_departments(actor)
    if value and str(value).isdigit():
        return departments.filter(pk=int(value)).first()
    return departments.first()


@requires(SCHEDULE_VIEW_PERMISSION)
def sessions_week(request):
    """出诊排班: a department × week grid (periods × days) with booked / free numbers per session."""
    departments = list(selectors.schedule_departments(request.actor))
    department = _department_for(request.actor, request.GET.get("department"))
    monday = _monday(request.GET.get("week"))
    days = [monday + timedelta(days=i) for i in range(7)]
    grid = []
    if department is not None:
        sessions = selectors.week_sessions(department_id=department.pk, monday=monday)
        for period, label in ClinicSession.Period.choices:
            cells = [[s for s in sessions if s.service_date == d and s.period == period] for d in days]
            if period != rules.EVENING or any(cells):
                grid.append({"period": period, "label": label, "cells": cells})
    context = {
        "departments": departments,
        "department": department,
        "monday": monday,
        "days": days,
        "today": _today(),
        "prev": monday - timedelta(days=7),
        "next": monday + timedelta(days=7),
        "grid": grid,
        "may_manage": department is not None
        and policy.covers(request.actor, SCHEDULE_MANAGE_PERMISSION, department.organisation.path),
    }
    if request.headers.get("HX-Request"):
        return render(request, "scheduling/_week_grid.html", context)
    return render(request, "scheduling/sessions.html", context)


def _parse_time(value: str, field: str) -> time:
    try:
        return time.fromisoformat((value or "")[:5])
    except ValueError as exc:
        raise InvalidInput(_("请填写有效的时间（时:分）。"), field=field) from exc


def windows_from(start: time, end: time, minutes: int, capacity: int) -> list[tuple[time, time, int]]:
    """B-19: split [start, end) into time segments of ``minutes`` with ``capacity`` numbers each."""
    if not 10 <= minutes <= 240:
        raise InvalidInput(_("每个分时段的时长须在 10 到 240 分钟之间。"), field="minutes")
    if end <= start:
        raise InvalidInput(_("结束时间必须晚于开始时间。"), field="end")
    day = date(2000, 1, 3)
    return [
        (a.time(), b.time(), capacity)
        for a, b in rules.segments(datetime.combine(day, start), datetime.combine(day, end), minutes)
    ]


@requires(SCHEDULE_MANAGE_PERMISSION)
def session_new(request):
    """Create a session (新增出诊): doctor (or general clinic), date, period, time segments and
    capacity per segment. The fee class follows the doctor's title (or 特需 when ticked)."""
    department = _department_for(
        request.actor, request.GET.get("department") or request.POST.get("department")
    )
    if department is None:
        raise NotFound()
    doctors = Staff.objects.filter(department=department, is_active=True).order_by("title", "name")
    period_defaults = {
        rules.AM: ("08:00", "12:00"),
        rules.PM: ("13:30", "17:30"),
        rules.EVENING: ("18:00", "21:00"),
    }
    form = {
        "doctor": "",
        "date": request.GET.get("date", ""),
        "period": request.GET.get("period", rules.AM),
        "start": "",
        "end": "",
        "minutes": "30",
        "capacity": "5",
        "special": "",
    }
    if form["period"] not in rules.PERIODS:
        form["period"] = rules.AM
    form["start"], form["end"] = period_defaults[form["period"]]
    error = ""
    if request.method == "POST":
        form.update({k: (request.POST.get(k) or "").strip()[:20] for k in form})
        try:
            doctor = None
            if form["doctor"]:
                doctor = doctors.filter(pk=int(form["doctor"]) if form["doctor"].isdigit() else 0).first()
                if doctor is None:
                    raise InvalidInput(_("请选择本科室的出诊医生。"), field="doctor")
            try:
                service_date = date.fromisoformat(form["date"])
            except ValueError as exc:
                raise InvalidInput(_("请填写出诊日期。"), field="date") from exc
            if not (form["minutes"].isdigit() and form["capacity"].isdigit()):
                raise InvalidInput(_("分时段时长和每段号源数须为整数。"), field="capacity")
            windows = windows_from(
                _parse_time(form["start"], "start"),
                _parse_time(form["end"], "end"),
                int(form["minutes"]),
                int(form["capacity"]),
            )
            session = services.create_session(
                actor=request.actor,
                department=department,
                doctor=doctor,
                service_date=service_date,
                period=form["period"],
                windows=windows,
                special=bool(form["special"]),
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            error = _refusal(request, exc)
        else:
            messages.success(
                request,
                _("已新增出诊：%(date)s %(period)s，共 %(n)s 个号源。")
                % {
                    "date": session.service_date.strftime("%m月%d日"),
                    "period": session.get_period_display(),
                    "n": session.capacity,
                },
            )
            monday = session.service_date - timedelta(days=session.service_date.weekday())
            return redirect(
                f"{reverse('scheduling:sessions')}?department={department.pk}&week={monday.isoformat()}"
            )
    return render(
        request,
        "scheduling/session_new.html",
        {
            "department": department,
            "doctors": doctors,
            "form": form,
            "error": error,
            "periods": ClinicSession.Period.choices,
        },
        status=422 if error else 200,
    )


def _staff_session(request, session_id: int) -> ClinicSession:
    session = _open_session(session_id)
    if not selectors.schedule_departments(request.actor).filter(pk=session.department_id).exists():
        raise NotFound()
    return session


@requires(SCHEDULE_VIEW_PERMISSION)
def session_detail(request, session_id: int):
    """A session: its time segments (capacity / booked / free / reserved) and its bookings (names masked)."""
    session = _staff_session(request, session_id)
    bookings = [
        {"a": a, "name": masking.mask_name(a.patient.name)}
        for a in Appointment.objects.filter(session=session)
        .exclude(status=rules.CANCELLED)
        .select_related("patient", "slot")
        .order_by("slot__seq")
    ]
    return render(
        request,
        "scheduling/session_detail.html",
        {
            "session": session,
            "windows": selectors.session_windows(session),
            "bookings": bookings,
            "waiting": WaitlistEntry.objects.filter(
                session=session, status=WaitlistEntry.Status.WAITING
            ).count(),
            "may_manage": policy.covers(
                request.actor, SCHEDULE_MANAGE_PERMISSION, session.department.organisation.path
            ),
        },
    )


@requires(SCHEDULE_MANAGE_PERMISSION)
def session_stop(request, session_id: int):
    """停诊 (B-15). GET: the confirmation, saying how many patients will be notified; POST: stop,
    which cancels every booking without penalty and notifies each patient."""
    session = _staff_session(request, session_id)
    affected = selectors.active_bookings(session).count()
    error = ""
    reason = ""
    if request.method == "POST":
        reason = (request.POST.get("reason") or "").strip()[:200]
        try:
            services.stop_session(actor=request.actor, session_id=session.pk, reason=reason)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            error = _refusal(request, exc)
        else:
            messages.success(request, _("已停诊，%(n)s 位患者的预约已取消并已通知。") % {"n": affected})
            return redirect("scheduling:session", session_id=session.pk)
    return render(
        request,
        "scheduling/session_stop.html",
        {"session": session, "affected": affected, "error": error, "reason": reason},
        status=422 if error else 200,
    )
