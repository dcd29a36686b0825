"""The village doctor's phone pages: the work list tabs, one-tap call results, the follow-up form."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.chronic.factories import make_chronic_patient, make_registry
from yilian.chronic.models import CallAttempt, FollowUp, Referral, Registry
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def doctor(community, staff_of):
    return staff_of(policy.VILLAGE_DOCTOR, community.village, name="村医")


@pytest.fixture
def client(doctor, login):
    return login(doctor)


def _overdue(org, days, today, **kwargs):
    patient = make_chronic_patient(org, name=kwargs.pop("name", "张三丰"), phone="13812345678")
    return make_registry(
        patient=patient,
        registered_on=today - timedelta(days=800),
        next_follow_up_on=today - timedelta(days=days),
        **kwargs,
    )


def test_worklist_shows_tabs_and_masked_rows(community, client, today):
    registry = _overdue(community.village, 12, today)
    response = client.get("/chronic/worklist/")
    html = response.content.decode()
    assert response.status_code == 200
    for label in ("本周应随访", "逾期", "未达标", "本季未随访", "电话随访名单", "失访"):
        assert label in html
    assert "张*丰" in html and "张三丰" not in html and "13812345678" not in html
    assert "逾期 12 天" in html
    assert f'href="/chronic/followup/{registry.patient_id}/"' in html


def test_htmx_page_request_returns_only_the_list(community, client, today):
    for i in range(27):
        _overdue(community.village, i + 1, today)
    response = client.get("/chronic/worklist/", {"tab": "overdue", "page": 2}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and 'id="wl-list"' in html
    assert html.count('class="wl-row"') == 2


def test_call_tab_has_one_tap_outcomes_and_a_tap_records_it(community, client, today):
    registry = _overdue(community.village, 4, today)
    html = client.get("/chronic/worklist/", {"tab": "call"}).content.decode()
    for outcome in ("reached", "remind_later", "no_answer", "moved", "died"):
        assert f'data-outcome="{outcome}"' in html
    response = client.post(
        f"/chronic/worklist/calls/{registry.pk}/", {"outcome": "reached"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "已记录" in response.content.decode()
    assert CallAttempt.objects.get().outcome == "reached"
    bad = client.post(f"/chronic/worklist/calls/{registry.pk}/", {"outcome": "x"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422 and "INVALID_CALL_OUTCOME" in bad.content.decode()


def test_another_villages_registry_cannot_be_called_or_dialled(community, client, today):
    registry = _overdue(community.other_village, 4, today)
    assert client.post(f"/chronic/worklist/calls/{registry.pk}/", {"outcome": "died"}).status_code == 404
    assert client.post(f"/chronic/worklist/calls/{registry.pk}/phone/").status_code == 404
    assert Registry.objects.get(pk=registry.pk).status == "active"


def test_showing_the_phone_number_is_audited(community, client, today):
    registry = _overdue(community.village, 4, today)
    response = client.post(f"/chronic/worklist/calls/{registry.pk}/phone/", HTTP_HX_REQUEST="true")
    assert 'href="tel:13812345678"' in response.content.decode()
    assert AuditEvent.objects.filter(
        action="patient.view", patient_id=registry.patient_id, reason="reveal_phone"
    ).exists()


def test_opening_the_follow_up_form_is_audited_and_shows_the_diseases_symptoms(community, client, today):
    registry = _overdue(community.village, 4, today)
    make_registry(patient=registry.patient, disease="t2dm", registered_on=today - timedelta(days=800))
    html = client.get(f"/chronic/followup/{registry.patient_id}/").content.decode()
    assert "喘憋不能平卧" in html and "呼气有烂苹果味" in html  # R3.1 and R3.2 symptoms
    assert 'name="client_uuid"' in html
    assert AuditEvent.objects.filter(
        action="patient.view", patient_id=registry.patient_id, reason="chronic_follow_up"
    ).exists()


def test_a_patient_of_another_village_is_404_on_the_form(community, client, today):
    registry = _overdue(community.other_village, 4, today)
    assert client.get(f"/chronic/followup/{registry.patient_id}/").status_code == 404
    assert AuditEvent.objects.filter(action="patient.view", outcome="refused").exists()


def _form(today, **values):
    data = {
        "client_uuid": str(uuid.uuid4()),
        "visit_on": today.isoformat(),
        "mode": "clinic",
        "sbp": "132",
        "dbp": "82",
        "glucose_kind": "fasting",
        "adherence": "regular",
        "med_name": ["氨氯地平", ""],
        "med_frequency": ["每日1次", ""],
        "med_dose": ["5mg", ""],
        "lifestyle": ["low_salt", "exercise"],
    }
    data.update(values)
    return data


def test_recording_a_follow_up_redirects_to_the_result_and_a_retry_records_once(community, client, today):
    registry = _overdue(community.village, 4, today)
    data = _form(today)
    first = client.post(f"/chronic/followup/{registry.patient_id}/", data)
    again = client.post(f"/chronic/followup/{registry.patient_id}/", data)
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    follow_up = FollowUp.objects.get()
    assert follow_up.medications == [{"name": "氨氯地平", "frequency": "每日1次", "dose": "5mg"}]
    assert follow_up.lifestyle == {"advice": ["low_salt", "exercise"]}
    result = client.get(first["Location"]).content.decode()
    assert "控制满意" in result and "下次随访" in result
    registry.refresh_from_db()
    assert registry.next_follow_up_on > today


def test_an_urgent_reading_shows_the_urgent_referral_to_the_township(community, client, today):
    registry = _overdue(community.village, 4, today)
    response = client.post(f"/chronic/followup/{registry.patient_id}/", _form(today, sbp="185", dbp="115"))
    result = client.get(response["Location"]).content.decode()
    referral = Referral.objects.get()
    assert (referral.kind, referral.to_org_id) == ("urgent", community.township.pk)
    due = referral.tracking_due_on
    assert f"紧急转诊：已转至{community.township.name}，请于{due.month}月{due.day}日前跟踪" in result
    assert "危急情况：收缩压≥180 mmHg、舒张压≥110 mmHg" in result  # which R3.1 signs fired


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"sbp": "400"}, "sbp", "超出可能范围"),
        ({"sbp": "80", "dbp": "120"}, "dbp", "舒张压"),
        ({"glucose": "126"}, "glucose", "mmol/L"),
        ({"sbp": "", "dbp": ""}, "sbp", "血压"),
        ({"sbp": "abc"}, "sbp", ""),
        ({"temperature_c": "50"}, "temperature_c", "体温"),
    ],
)
def test_bad_readings_come_back_inline_next_to_their_field(community, client, today, values, field, message):
    registry = _overdue(community.village, 4, today)
    response = client.post(f"/chronic/followup/{registry.patient_id}/", _form(today, **values))
    html = response.content.decode()
    assert response.status_code in (409, 422)
    errors = re.findall(r'<span class="field-error" data-field="(\w+)">([^<]*)</span>', html)
    assert any(f == field and message in text for f, text in errors), errors
    assert not FollowUp.objects.exists()
    assert 'value="氨氯地平"' in html  # what was typed survives


def test_a_future_visit_date_is_refused_inline(community, client, today):
    registry = _overdue(community.village, 4, today)
    response = client.post(
        f"/chronic/followup/{registry.patient_id}/",
        _form(today, visit_on=(today + timedelta(days=2)).isoformat()),
    )
    assert response.status_code == 422
    assert 'data-field="visit_on"' in response.content.decode()


def test_a_blank_medication_row_for_htmx(client):
    response = client.get("/chronic/followup/medication-row/", HTTP_HX_REQUEST="true")
    assert response.content.decode().count('name="med_name"') == 1


def test_the_form_opens_on_today_in_the_date_inputs_own_format(community, client, today):
    registry = _overdue(community.village, 4, today)
    html = client.get(f"/chronic/followup/{registry.patient_id}/").content.decode()
    assert re.search(rf'type="date" name="visit_on" value="{today.isoformat()}"', html)


def test_the_worklist_page_costs_the_same_queries_for_2_or_12_rows(community, client, today):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/chronic/worklist/").status_code == 200
        return len(ctx.captured_queries)

    queries()  # the session's first request writes more than the page itself
    for _ in range(2):
        _overdue(community.village, 4, today)
    few = queries()
    for _ in range(10):
        _overdue(community.village, 4, today)
    assert queries() == few


def test_the_glucose_toggle_records_fasting_or_random_glucose(community, client, today):
    registry = _overdue(community.village, 4, today, disease="t2dm")
    client.post(
        f"/chronic/followup/{registry.patient_id}/", _form(today, glucose_kind="random", glucose="12.4")
    )
    client.post(
        f"/chronic/followup/{registry.patient_id}/", _form(today, glucose_kind="fasting", glucose="6.2")
    )
    random_visit, fasting_visit = FollowUp.objects.order_by("id")
    assert (str(random_visit.glucose_any_mmol), random_visit.fpg_mmol) == ("12.4", None)
    assert (str(fasting_visit.fpg_mmol), fasting_visit.glucose_any_mmol) == ("6.2", None)
    assert fasting_visit.classification == "satisfied"


def test_the_call_tab_sends_the_due_reminders_of_the_doctors_own_patients(community, client, today):
    _overdue(community.village, 4, today, reminder_consent=True)
    _overdue(community.other_village, 4, today, reminder_consent=True)
    assert "worklist/reminders/" in client.get("/chronic/worklist/", {"tab": "call"}).content.decode()
    response = client.post("/chronic/worklist/reminders/", HTTP_HX_REQUEST="true")
    assert "已发送 1 条" in response.content.decode()
    again = client.post("/chronic/worklist/reminders/", HTTP_HX_REQUEST="true")
    assert "已发送 0 条" in again.content.decode()
