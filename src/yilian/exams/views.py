"""Exam centre pages: the centre's calendar (staff, ``/exams/``) with the one-click plan (一键预约),
and the patient's phone page (``/exams/my/``). As thin as ``api.py``: writes are service calls."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from yilian.common import audit
from yilian.common.access import PATIENT, STAFF, requires
from yilian.common.errors import DomainError, NotFound
from yilian.exams import rules, selectors, services
from yilian.exams.models import ExamPackage
from yilian.patients.models import Patient


def _refused(request, exc: DomainError) -> str:
    """access.md L-1: a refusal on a page is audited like one through the API; returns the message."""
    audit.refused(request.actor, f"page:{request.method} {request.path}"[:64], code=exc.code)
    return str(exc.message)


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        return timezone.localdate()


def _grid(actor, day: date) -> dict:
    resources = list(selectors.resources_for(actor).order_by("site", "modality", "code"))
    cal = selectors.calendar(resources, day)
    times = sorted({timezone.localtime(s.starts_at).time() for segs in cal.values() for s in segs})
    rows = []
    for r in resources:
        by_time = {timezone.localtime(s.starts_at).time(): s for s in cal.get(r.pk, [])}
        rows.append({"resource": r, "cells": [by_time.get(t) for t in times]})
    return {
        "day": day,
        "prev": day - timedelta(days=1),
        "next": day + timedelta(days=1),
        "times": times,
        "rows": rows,
    }


@requires(STAFF)
def centre(request):
    """The exam centre's calendar: resources × time segments for a day, occupancy colours, HTMX day
    navigation; the work list of patients with open orders."""
    day = _day(request.GET.get("date"))
    context = _grid(request.actor, day)
    if request.headers.get("HX-Request") and request.GET.get("part") == "grid":
        return render(request, "exams/_grid.html", context)
    context["waiting"] = selectors.patients_with_open_orders(request.actor)
    if request.headers.get("HX-Request") and request.GET.get("part") == "waiting":
        return render(request, "exams/_waiting.html", context)
    return render(request, "exams/centre.html", context)


def _plan_context(actor, patient: Patient) -> dict:
    proposal = services.propose_plan(actor=actor, patient=patient)
    days = []
    for d in proposal.plan.days:
        items = [
            {
                "order": proposal.orders[i.key],
                "resource": proposal.resources[i.candidate.resource_id],
                "start": i.candidate.start,
                "end": i.candidate.end,
            }
            for i in d.items
        ]
        days.append({"day": d.day, "items": items, "preparation": [_(line) for line in d.preparation]})
    upcoming = selectors.appointments_visible_to(actor).filter(
        patient=patient, status__in=rules.ACTIVE, starts_at__gte=timezone.now()
    )
    return {
        "patient": patient,
        "proposal": proposal,
        "days": days,
        "unplanned": [proposal.orders[k] for k in proposal.plan.unplanned],
        "upcoming": list(upcoming.order_by("starts_at")),
    }


@requires(STAFF)
def plan(request, patient_id: int):
    """GET: the proposed plan for the patient (HTMX panel). POST: 一键预约 — propose again and book
    that plan atomically (a plan gone stale meanwhile is refused whole: SLOT_UNAVAILABLE)."""
    try:
        patient = services.access_patient(request.actor, patient_id, purpose="exam_plan")
    except NotFound:
        return render(request, "exams/_plan.html", {"missing": True}, status=404)
    booked = []
    error = ""
    if request.method == "POST":
        try:
            proposal = services.propose_plan(actor=request.actor, patient=patient)
            booked = services.book_plan(
                actor=request.actor, patient=patient, plan=services.choices_from(proposal.plan)
            )
        except DomainError as exc:
            error = _refused(request, exc)
    context = _plan_context(request.actor, patient)
    context.update({"booked": booked, "error": error})
    response = render(request, "exams/_plan.html", context, status=422 if error else 200)
    if booked:
        response["HX-Trigger"] = "exams-booked"
    return response


@requires(PATIENT)
def my_exams(request):
    """The patient's phone page: exam appointments with preparation, open orders with 一键预约,
    physical-exam packages to order."""
    actor = request.actor
    patients = list(Patient.objects.filter(pk__in=sorted(actor.managed_patient_ids), status="active"))
    sections = []
    for p in patients:
        proposal = services.propose_plan(actor=actor, patient=p)
        appointments = selectors.appointments_visible_to(actor).filter(
            patient=p, status__in=rules.ACTIVE, starts_at__gte=timezone.now()
        )
        visits: dict[date, list] = {}
        for a in appointments.order_by("starts_at"):
            visits.setdefault(a.service_date, []).append(a)
        sections.append(
            {
                "patient": p,
                "visits": [
                    {"day": d, "items": items, "preparation": items[0].preparation.splitlines()}
                    for d, items in visits.items()
                ],
                "proposal": proposal,
                "open_orders": list(proposal.orders.values()),
            }
        )
    tomorrow = timezone.localdate() + timedelta(days=1)
    packages = []
    for package in selectors.active_packages():
        eligible = [p for p in patients if not services.package_problems(package, p, tomorrow)]
        packages.append({"package": package, "eligible": eligible})
    package_orders = list(
        selectors.package_orders_visible_to(actor).filter(status="booked", service_date__gte=tomorrow)
    )
    return render(
        request,
        "exams/my.html",
        {
            "sections": sections,
            "packages": packages,
            "package_orders": package_orders,
            "patients": patients,
            "min_date": tomorrow,
            "max_date": timezone.localdate() + timedelta(days=30),
        },
    )


@require_POST
@requires(PATIENT)
def my_book(request, patient_id: int):
    try:
        patient = services.access_patient(request.actor, patient_id)
        proposal = services.propose_plan(actor=request.actor, patient=patient)
        booked = services.book_plan(
            actor=request.actor, patient=patient, plan=services.choices_from(proposal.plan)
        )
        n = len(booked)
        text = ngettext(
            "已为您预约 %(n)s 项检查，请查看下方的检查前准备。",
            "已为您预约 %(n)s 项检查，请查看下方的检查前准备。",
            n,
        )
        messages.success(request, text % {"n": n})
    except DomainError as exc:
        messages.error(request, _refused(request, exc))
    return redirect("exams:my")


@require_POST
@requires(PATIENT)
def my_cancel(request, appointment_id: int):
    try:
        services.cancel_exam_appointment(
            actor=request.actor, appointment_id=appointment_id, reason="patient_h5"
        )
        messages.success(request, _("检查预约已取消。"))
    except DomainError as exc:
        messages.error(request, _refused(request, exc))
    return redirect("exams:my")


@require_POST
@requires(PATIENT)
def my_package(request, package_id: int):
    try:
        patient = services.access_patient(request.actor, int(request.POST.get("patient_id") or 0))
        package = ExamPackage.objects.filter(pk=package_id, is_active=True).first()
        if package is None:
            raise NotFound()
        day = date.fromisoformat((request.POST.get("date") or "")[:10])
        services.order_package(actor=request.actor, patient=patient, package=package, service_date=day)
        messages.success(request, _("体检已预约，请按体检须知做好准备。"))
    except ValueError:
        messages.error(request, _("请选择体检日期。"))
    except DomainError as exc:
        messages.error(request, _refused(request, exc))
    return redirect("exams:my")


@require_POST
@requires(PATIENT)
def my_package_cancel(request, order_id: int):
    try:
        services.cancel_package_order(actor=request.actor, package_order_id=order_id)
        messages.success(request, _("体检预约已取消。"))
    except DomainError as exc:
        messages.error(request, _refused(request, exc))
    return redirect("exams:my")
