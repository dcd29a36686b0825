"""Staff pages: search desk (HTMX), profile with audited reveal, registration form, merge."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories as f
from yilian.common.models import AuditEvent
from yilian.patients.models import Contact, HealthCard, Patient

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def doctor_client(staff_of, community, login):
    return login(staff_of("doctor", community.township))


def test_search_page_and_live_results(doctor_client, community):
    number = f.valid_id()
    f.make_patient(community.village, name="张三", id_number=number)
    page = doctor_client.get("/patients/")
    assert page.status_code == 200 and 'name="q"' in page.content.decode()
    fragment = doctor_client.get("/patients/", {"q": "zs"}, **HX).content.decode()
    assert "张三" in fragment and "<html" not in fragment
    assert number[:6] + "********" + number[-4:] in fragment and number not in fragment


def test_search_page_needs_a_clinical_role(staff_of, login):
    client = login(staff_of("auditor"))
    assert client.get("/patients/").status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/patients/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_profile_masks_the_id_until_revealed_and_audits_the_reveal(doctor_client, community):
    patient = f.make_patient(community.village, name="张三", phone="13912345678")
    f.issue_card(patient)
    page = doctor_client.get(f"/patients/{patient.pk}/").content.decode()
    assert patient.id_number not in page and "13912345678" not in page
    assert "显示完整证件号" in page
    assert (
        AuditEvent.objects.filter(action="patient.view", reason="profile", patient_id=patient.pk).count() == 1
    )
    revealed = doctor_client.post(f"/patients/{patient.pk}/reveal-id/", **HX)
    assert revealed.status_code == 200 and patient.id_number in revealed.content.decode()
    assert (
        AuditEvent.objects.filter(action="patient.view", reason="reveal_id", patient_id=patient.pk).count()
        == 1
    )


def test_profile_lists_who_viewed_the_record(doctor_client, staff_of, community, login):
    patient = f.make_patient(community.village)
    login(staff_of("nurse", community.village, name="赵护士")).get(f"/patients/{patient.pk}/")
    page = doctor_client.get(f"/patients/{patient.pk}/").content.decode()
    assert "赵护士" in page and "查阅档案" in page


def test_profile_outside_scope_is_404(staff_of, community, login):
    patient = f.make_patient(community.other_village)
    client = login(staff_of("village_doctor", community.village))
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    assert client.post(f"/patients/{patient.pk}/reveal-id/", **HX).status_code == 404


def test_reveal_needs_post(doctor_client, community):
    patient = f.make_patient(community.village)
    assert doctor_client.get(f"/patients/{patient.pk}/reveal-id/").status_code == 405


def test_register_form_creates_patient_and_card(doctor_client, community):
    page = doctor_client.get("/patients/new/")
    assert page.status_code == 200
    response = doctor_client.post(
        "/patients/new/",
        {
            "name": "李秀英",
            "id_type": "resident_id",
            "id_number": f.valid_id(date(1975, 3, 9), "F"),
            "home_org_code": community.village.code,
            "nationality": "CHN",
            "phone": "13800138000",
        },
    )
    patient = Patient.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
    assert HealthCard.objects.get().patient == patient


def test_register_form_shows_the_field_error(doctor_client, community):
    number = f.valid_id(date(1980, 5, 17), "M")
    response = doctor_client.post(
        "/patients/new/",
        {
            "name": "李四",
            "id_type": "resident_id",
            "id_number": number,
            "sex": "F",
            "home_org_code": community.village.code,
            "nationality": "CHN",
        },
    )
    assert response.status_code == 422
    assert "所选性别与身份证号码" in response.content.decode()
    assert not Patient.objects.exists()


def test_live_check_reports_checksum_and_duplicates(doctor_client, community):
    existing = f.make_patient(community.village, name="张三丰")
    bad = existing.id_number[:17] + ("0" if existing.id_number[17] != "0" else "1")
    check = doctor_client.post(
        "/patients/new/check/", {"id_type": "resident_id", "id_number": bad}, **HX
    ).content.decode()
    assert "校验位" in check
    dup = doctor_client.post(
        "/patients/new/check/", {"id_type": "resident_id", "id_number": existing.id_number}, **HX
    )
    assert "已建档（张*丰）" in dup.content.decode() and f"/patients/{existing.pk}/" in dup.content.decode()
    assert Patient.objects.count() == 1


def test_add_contact_from_profile(doctor_client, community):
    patient = f.make_patient(community.village)
    response = doctor_client.post(
        f"/patients/{patient.pk}/contacts/",
        {"name": "张大", "relationship": "父亲", "phone": "13800000002"},
        **HX,
    )
    assert response.status_code == 204 and response["HX-Redirect"] == f"/patients/{patient.pk}/"
    assert Contact.objects.get().patient == patient


def test_merge_page_flow(staff_of, community, login):
    keep, drop = (
        f.make_patient(community.village, name="张三"),
        f.make_patient(community.village, name="张三"),
    )
    client = login(staff_of("coordinator"))
    assert client.get("/patients/merge/").status_code == 200
    candidates = client.get("/patients/merge/", {"q": "zs"}, **HX).content.decode()
    assert f'data-id="{keep.pk}"' in candidates and f'data-id="{drop.pk}"' in candidates
    preview = client.get("/patients/merge/preview/", {"survivor_id": keep.pk, "duplicate_id": drop.pk}, **HX)
    assert "重复档案（合并后注销）" in preview.content.decode()
    refused = client.post("/patients/merge/", {"survivor_id": keep.pk, "duplicate_id": drop.pk, "reason": ""})
    assert refused.status_code == 422 and Patient.objects.get(pk=drop.pk).status == "active"
    done = client.post(
        "/patients/merge/", {"survivor_id": keep.pk, "duplicate_id": drop.pk, "reason": "重复建档"}
    )
    assert done.status_code == 302 and Patient.objects.get(pk=drop.pk).merged_into == keep


def test_merge_page_is_for_coordinators(doctor_client):
    assert doctor_client.get("/patients/merge/").status_code == 403


def test_edit_page_saves_only_changes(doctor_client, community):
    patient = f.make_patient(community.village, name="张三", phone="13800000001")
    page = doctor_client.get(f"/patients/{patient.pk}/edit/")
    assert page.status_code == 200 and "保存修改" in page.content.decode()
    form = {
        "name": "张三",
        "id_type": "resident_id",
        "id_number": patient.id_number,
        "sex": "M",
        "birth_date": "1980-05-17",
        "phone": "13800000001",
        "home_org_code": community.village.code,
        "nationality": "CHN",
        "village": "东村",
        "realname_verified": "on",
    }
    response = doctor_client.post(f"/patients/{patient.pk}/edit/", form)
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="patient.update").detail == {"fields": ["village"]}


def test_edit_live_check_does_not_flag_the_patients_own_id(doctor_client, community):
    patient = f.make_patient(community.village, name="张三")
    check = doctor_client.post(
        "/patients/new/check/",
        {"id_type": "resident_id", "id_number": patient.id_number, "patient_id": patient.pk},
        **HX,
    )
    assert "已建档" not in check.content.decode()


def test_a_presented_card_opens_a_record_outside_scope_for_a_while(staff_of, community, login, client):
    from yilian.patients import views

    patient = f.make_patient(community.other_village)
    login(staff_of("nurse", community.village))
    assert client.get(f"/patients/{patient.pk}/").status_code == 404

    session = client.session
    request = type("R", (), {"session": session})()
    views.remember_presented(request, patient.pk)
    session.save()
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    assert AuditEvent.objects.filter(
        patient_id=patient.pk, action="patient.view", reason="profile", outcome="ok"
    ).exists()


def test_pages_with_identifiers_are_never_cached(doctor_client, community):
    patient = f.make_patient(community.village)
    assert "no-store" in doctor_client.get(f"/patients/{patient.pk}/")["Cache-Control"]
    assert "no-store" in doctor_client.post(f"/patients/{patient.pk}/reveal-id/", **HX)["Cache-Control"]
    assert "no-store" in doctor_client.get(f"/api/v1/patients/{patient.pk}")["Cache-Control"]


def test_profile_lists_linked_accounts_with_masked_phones(doctor_client, community):
    patient = f.make_patient(community.village)
    f.link(f.make_patient_account("13712345678"), patient, "child")
    page = doctor_client.get(f"/patients/{patient.pk}/").content.decode()
    assert "137****5678" in page and "13712345678" not in page and "子女" in page
