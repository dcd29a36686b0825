"""The staff page of one patient's chronic profile (``/chronic/patients/<id>/``) and enrolment form."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests.chronic.factories import make_chronic_patient, make_follow_up, make_referral, make_registry
from yilian.chronic.models import Registry
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def _url(patient):
    return f"/chronic/patients/{patient.pk}/"


def test_profile_shows_registries_history_trend_and_open_referrals(login, community, village_doctor):
    patient = make_chronic_patient(community.village, name="周桂兰")
    htn = make_registry(patient=patient, registered_on=date(2025, 1, 10), responsible_doctor=village_doctor)
    make_follow_up(htn, visit_on=date(2025, 4, 1), sbp=150, dbp=95)
    last = make_follow_up(htn, visit_on=date(2025, 7, 1), sbp=152, dbp=96, next_due_on=date(2025, 7, 15))
    make_referral(htn, opened_on=date(2025, 7, 1), follow_up=last)
    r = login(village_doctor).get(_url(patient))
    assert r.status_code == 200
    html = r.content.decode()
    assert "周桂兰" in html and "高血压" in html and "赵村医" in html
    assert "2025-07-15" in html  # next due
    assert "逾期" in html  # overdue since July 2025
    assert html.index("2025-07-01") < html.index("2025-04-01")  # newest first
    assert "控制不满意" in html and "待跟踪转诊" in html
    assert "/static/vendor/echarts.min.js" in html and 'id="cr-trend-data"' in html
    assert 'id="enrol-form"' in html
    assert AuditEvent.objects.filter(
        action="patient.view", patient_id=patient.pk, reason="chronic_profile"
    ).exists()


def test_profile_of_a_patient_without_registries_offers_enrolment(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    html = login(village_doctor).get(_url(patient)).content.decode()
    assert "尚未在任何病种建档" in html and 'id="enrol-form"' in html
    assert "cr-trend-data" not in html


def test_another_villages_doctor_gets_404(login, community, other_village_doctor):
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient)
    assert login(other_village_doctor).get(_url(patient)).status_code == 404
    assert login(other_village_doctor).get("/chronic/patients/999999/").status_code == 404


def test_roles_without_chronic_manage_are_refused(login, community, staff_of):
    patient = make_chronic_patient(community.village)
    assert login(staff_of(policy.COORDINATOR, community.county)).get(_url(patient)).status_code == 403


def test_enrol_by_htmx_redirects_to_the_profile(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    r = login(village_doctor).post(
        f"/chronic/patients/{patient.pk}/enrol/",
        {
            "disease": "t2dm",
            "diagnosed_on": (TODAY - timedelta(days=5)).isoformat(),
            "registered_on": TODAY.isoformat(),
            "diagnosis_source": "township",
            "managing_org_id": community.village.pk,
            "responsible_doctor_id": village_doctor.pk,
            "reminder_consent": "on",
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 204 and r["HX-Redirect"] == _url(patient)
    registry = Registry.objects.get(patient=patient)
    assert (
        registry.disease == "t2dm"
        and registry.reminder_consent
        and registry.responsible_doctor == village_doctor
    )


def test_enrol_errors_come_back_in_the_form(login, community, village_doctor):
    patient = make_chronic_patient(community.village)
    make_registry(patient=patient)
    client = login(village_doctor)
    r = client.post(
        f"/chronic/patients/{patient.pk}/enrol/",
        {
            "disease": "htn",
            "diagnosed_on": TODAY.isoformat(),
            "registered_on": TODAY.isoformat(),
            "diagnosis_source": "township",
            "managing_org_id": community.village.pk,
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 422
    html = r.content.decode()
    assert 'id="enrol-form"' in html and "已在此病种建档" in html
    bad = client.post(
        f"/chronic/patients/{patient.pk}/enrol/",
        {"disease": "flu", "diagnosed_on": "x", "registered_on": TODAY.isoformat()},
    )
    assert bad.status_code == 422 and "field-error" in bad.content.decode()
    assert Registry.objects.filter(patient=patient).count() == 1


def test_enrol_for_another_villages_patient_is_404(login, community, other_village_doctor):
    patient = make_chronic_patient(community.village)
    r = login(other_village_doctor).post(
        f"/chronic/patients/{patient.pk}/enrol/",
        {
            "disease": "htn",
            "diagnosed_on": TODAY.isoformat(),
            "registered_on": TODAY.isoformat(),
            "diagnosis_source": "township",
            "managing_org_id": community.other_village.pk,
        },
    )
    assert r.status_code == 404
    assert not Registry.objects.exists()


def test_close_from_the_profile_by_htmx(login, community, village_doctor):
    registry = make_registry(org=community.village, registered_on=TODAY - timedelta(days=100))
    client = login(village_doctor)
    page = client.get(_url(registry.patient)).content.decode()
    assert f'id="close-form-{registry.pk}"' in page
    prefix = f"close{registry.pk}"
    r = client.post(
        f"/chronic/registries/{registry.pk}/close/",
        {f"{prefix}-reason": "death", f"{prefix}-closed_on": TODAY.isoformat(), f"{prefix}-note": "家属告知"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 204 and r["HX-Redirect"] == _url(registry.patient)
    registry.refresh_from_db()
    assert (registry.status, registry.close_reason) == ("closed", "death")
    assert f'id="close-form-{registry.pk}"' not in client.get(_url(registry.patient)).content.decode()


def test_close_errors_come_back_in_the_form(login, community, village_doctor):
    registry = make_registry(org=community.village, registered_on=TODAY - timedelta(days=10))
    prefix = f"close{registry.pk}"
    r = login(village_doctor).post(
        f"/chronic/registries/{registry.pk}/close/",
        {f"{prefix}-reason": "moved_out", f"{prefix}-closed_on": (TODAY - timedelta(days=20)).isoformat()},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 422
    assert "结案日期不能早于建档日期" in r.content.decode()
    lost = login(village_doctor).post(
        f"/chronic/registries/{registry.pk}/close/",
        {f"{prefix}-reason": "lost", f"{prefix}-closed_on": TODAY.isoformat()},
    )
    assert lost.status_code == 422 and "field-error" in lost.content.decode()
    registry.refresh_from_db()
    assert registry.status == "active"


def test_close_another_villages_registry_is_404(login, community, other_village_doctor):
    registry = make_registry(org=community.village)
    prefix = f"close{registry.pk}"
    r = login(other_village_doctor).post(
        f"/chronic/registries/{registry.pk}/close/",
        {f"{prefix}-reason": "death", f"{prefix}-closed_on": TODAY.isoformat()},
    )
    assert r.status_code == 404
    registry.refresh_from_db()
    assert registry.status == "active"
