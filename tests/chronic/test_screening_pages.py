"""Screening and family-doctor contract pages (``/chronic/screening/``, ``/chronic/contracts/``)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_chronic_patient
from yilian.chronic.models import FamilyDoctorContract, Registry, ScreeningCase, ScreeningReading
from yilian.chronic.services import contracts as contract_services
from yilian.common import policy


@pytest.fixture
def resident(community):
    return make_chronic_patient(community.village, name="周大山", birth=date(1970, 2, 3))


@pytest.fixture
def page(login, village_doctor):
    return login(village_doctor)


def form(**kw):
    data = {
        "taken_on": date.today().isoformat(),
        "setting": "free_clinic",
        "sbp": "",
        "dbp": "",
        "client_uuid": str(uuid.uuid4()),
    }
    data.update(kw)
    return data


def test_home_renders_with_search_box_and_lists(page):
    r = page.get("/chronic/screening/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "义诊筛查" in html and 'name="q"' in html and "待筛查" in html
    assert 'name="viewport"' in html


def test_live_search_returns_the_fragment_with_screen_links(page, resident):
    r = page.get("/chronic/screening/", {"q": "周"}, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200
    assert "<html" not in html
    assert f"/chronic/screening/patient/{resident.pk}/" in html
    assert "周大山" in html


def test_search_does_not_show_other_villages_residents(page, community):
    make_chronic_patient(community.other_village, name="周外村")
    r = page.get("/chronic/screening/", {"q": "周"}, HTTP_HX_REQUEST="true")
    assert "周外村" not in r.content.decode()


def test_form_has_big_numeric_inputs(page, resident):
    r = page.get(f"/chronic/screening/patient/{resident.pk}/")
    html = r.content.decode()
    assert r.status_code == 200
    assert 'inputmode="numeric"' in html and 'name="sbp"' in html
    assert 'name="client_uuid"' in html


def test_recording_shows_the_result_in_plain_chinese(page, resident):
    r = page.post(f"/chronic/screening/patient/{resident.pk}/", form(sbp="150", dbp="95"))
    assert r.status_code == 201
    html = r.content.decode()
    assert "血压偏高（疑似高血压），请在2周内复查" in html
    assert "R1.2" in html
    assert ScreeningCase.objects.get().status == "suspected"


def test_resubmitting_the_same_form_records_once(page, resident):
    data = form(sbp="150", dbp="95")
    page.post(f"/chronic/screening/patient/{resident.pk}/", data)
    r = page.post(f"/chronic/screening/patient/{resident.pk}/", data)
    assert r.status_code == 200
    assert ScreeningReading.objects.count() == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sbp": "400", "dbp": "90"}, "超出可能范围"),
        ({"sbp": "120", "dbp": "130"}, "舒张压必须低于收缩压"),
        ({"fpg_mmol": "126"}, "mg/dL"),
        ({"sbp": "abc", "dbp": "80"}, "整数"),
        (
            {"sbp": "120", "dbp": "80", "taken_on": (date.today() + timedelta(days=2)).isoformat()},
            "不能晚于今天",
        ),
    ],
)
def test_bad_values_are_shown_on_the_form_and_nothing_is_written(page, resident, values, message):
    r = page.post(f"/chronic/screening/patient/{resident.pk}/", form(**values))
    assert 400 <= r.status_code < 500
    assert message in r.content.decode()
    assert not ScreeningReading.objects.exists()


def test_other_villages_resident_page_is_404(page, community):
    stranger = make_chronic_patient(community.other_village, name="吴外村")
    assert page.get(f"/chronic/screening/patient/{stranger.pk}/").status_code == 404
    assert (
        page.post(f"/chronic/screening/patient/{stranger.pk}/", form(sbp="120", dbp="80")).status_code == 404
    )


def test_lists_render_each_tab(page, resident, community):
    make_chronic_patient(community.village, name="待筛居民", birth=date(1960, 1, 1))
    page.post(
        f"/chronic/screening/patient/{resident.pk}/",
        form(sbp="150", dbp="95", taken_on=(date.today() - timedelta(days=20)).isoformat()),
    )
    html = page.get("/chronic/screening/due/", {"tab": "screening"}).content.decode()
    assert "待筛居民" in html and "周大山" not in html
    html = page.get("/chronic/screening/due/", {"tab": "cases"}).content.decode()
    assert "周大山" in html and "逾期 6 天" in html
    assert page.get("/chronic/screening/due/", {"tab": "high_risk", "page": "x"}).status_code == 200


def test_case_page_confirms_and_enrols(page, resident, community, village_doctor):
    page.post(f"/chronic/screening/patient/{resident.pk}/", form(sbp="150", dbp="95"))
    case = ScreeningCase.objects.get()
    assert page.get(f"/chronic/screening/cases/{case.pk}/").status_code == 200
    r = page.post(
        f"/chronic/screening/cases/{case.pk}/",
        {
            "action": "confirm",
            "diagnosed_on": date.today().isoformat(),
            "diagnosis_source": "screening",
            "managing_org": community.village.pk,
            "responsible_doctor": village_doctor.pk,
        },
    )
    assert r.status_code == 302
    case.refresh_from_db()
    assert case.status == "confirmed"
    assert Registry.objects.filter(patient=resident, disease="htn").exists()


def test_case_page_exclude(page, resident):
    page.post(f"/chronic/screening/patient/{resident.pk}/", form(sbp="150", dbp="95"))
    case = ScreeningCase.objects.get()
    r = page.post(
        f"/chronic/screening/cases/{case.pk}/",
        {"action": "exclude", "excluded_on": date.today().isoformat(), "reason": "白大衣"},
    )
    assert r.status_code == 302
    case.refresh_from_db()
    assert case.status == "excluded"
    r = page.post(
        f"/chronic/screening/cases/{case.pk}/", {"action": "exclude", "excluded_on": date.today().isoformat()}
    )
    assert r.status_code == 409


def test_contracts_pages_sign_and_terminate(login, township_doctor, village_doctor, community, resident):
    client = login(township_doctor)
    r = client.post(
        "/chronic/contracts/",
        {
            "organisation": community.township.pk,
            "name": "一组",
            "leader": township_doctor.pk,
            "members": [village_doctor.pk],
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    team = contract_services.FamilyDoctorTeam.objects.get()
    assert client.get("/chronic/contracts/").status_code == 200
    today = date.today()
    r = client.post(
        f"/chronic/contracts/patient/{resident.pk}/",
        {
            "team": team.pk,
            "signed_on": today.isoformat(),
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=364)).isoformat(),
            "package": "慢病包",
        },
    )
    assert r.status_code == 302
    contract = FamilyDoctorContract.objects.get()
    html = client.get(f"/chronic/contracts/patient/{resident.pk}/").content.decode()
    assert "履约中" in html and "一组" in html
    r = client.post(f"/chronic/contracts/{contract.pk}/terminate/", {"terminated_on": today.isoformat()})
    assert r.status_code == 302
    contract.refresh_from_db()
    assert contract.status == "terminated"


def test_contract_term_error_is_shown(login, township_doctor, community, resident):
    team = contract_services.create_team(
        actor=actor_of(township_doctor),
        organisation_id=community.township.pk,
        name="二组",
        leader_id=township_doctor.pk,
    )
    today = date.today()
    r = login(township_doctor).post(
        f"/chronic/contracts/patient/{resident.pk}/",
        {
            "team": team.pk,
            "signed_on": today.isoformat(),
            "starts_on": today.isoformat(),
            "ends_on": today.isoformat(),
        },
    )
    assert r.status_code == 422
    assert "到期日期必须晚于生效日期" in r.content.decode()
    assert not FamilyDoctorContract.objects.exists()


def test_pages_refuse_roles_without_chronic_manage(login, community, staff_of, resident):
    client = login(staff_of(policy.PHARMACIST, community.village))
    assert client.get("/chronic/screening/").status_code == 403
    assert client.get("/chronic/contracts/").status_code == 403
    assert client.get(f"/chronic/screening/patient/{resident.pk}/").status_code == 403
