"""Bulk import of registries and follow-ups (issue #4 item 6): all rows or none, every bad row named."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

import pytest
from openpyxl import Workbook, load_workbook

from tests import factories as f
from tests.chronic.factories import make_registry
from yilian.chronic.models import FollowUp, ImportBatch, Registry, RegistryYear
from yilian.chronic.services import imports as import_services
from yilian.common import policy
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/chronic/imports"
REG_HEADER = "身份证号,姓名,病种,建档日期,确诊日期,确诊来源,管理机构编码,责任医生工号/执业证号,同意短信提醒"
FU_HEADER = "身份证号,病种,随访日期,随访方式,收缩压,舒张压,空腹血糖,症状,备注"


@pytest.fixture
def coordinator(staff_of):
    return staff_of(policy.COORDINATOR, name="周协调")


@pytest.fixture
def people(community):
    """Three residents of the village, with their (made-up) ID numbers."""
    made = []
    for i, (name, birth, sex) in enumerate(
        [
            ("李建国", date(1958, 3, 14), "M"),
            ("王秀英", date(1962, 7, 2), "F"),
            ("张卫东", date(1950, 1, 9), "M"),
        ]
    ):
        number = f.valid_id(birth, sex, seq=100 + i)
        made.append(
            (f.make_patient(community.village, name=name, birth=birth, sex=sex, id_number=number), number)
        )
    return made


def csv_bytes(header: str, rows: list[str], encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode(encoding)


def upload(client, kind: str, content: bytes, name: str = "data.csv"):
    return client.post(URL, {"kind": kind, "file": _file(content, name)})


def _file(content: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def registry_rows(people, org_code: str, doctor: str = "") -> list[str]:
    return [
        f"{number},{p.name},高血压,2025-03-10,2025-03-01,县级医院确诊,{org_code},{doctor},是"
        for p, number in people
    ]


# --- Registries --------------------------------------------------------------------------------------


def test_good_registry_csv_imports_every_row_at_the_named_clinic(
    client, login, coordinator, community, people, village_doctor
):
    login(coordinator)
    content = csv_bytes(REG_HEADER, registry_rows(people, "VC0101", village_doctor.licence_number))
    response = upload(client, "registries", content)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "imported" and body["row_count"] == 3 and body["imported_count"] == 3
    assert body["errors"] == []
    registries = Registry.objects.filter(disease="htn", status="active")
    assert registries.count() == 3
    for r in registries:
        assert r.managing_org_id == community.village.pk
        assert r.responsible_doctor_id == village_doctor.pk
        assert r.reminder_consent is True
        assert r.registered_on == date(2025, 3, 10)
    batch = ImportBatch.objects.get(pk=body["id"])
    assert batch.status == ImportBatch.Status.IMPORTED and batch.uploaded_by_id == coordinator.user_id
    assert (
        AuditEvent.objects.filter(action="chronic.registry.enrol", actor_id=coordinator.user_id).count() == 3
    )


def test_one_bad_row_imports_nothing_and_every_bad_row_is_reported(client, login, coordinator, people):
    login(coordinator)
    rows = registry_rows(people, "VC0101")
    rows[1] = rows[1].replace("高血压", "痛风")  # row 3: unknown disease
    rows[2] = rows[2].replace("2025-03-10", "2025-02-30")  # row 4: no such date
    rows.append(
        "110101199003077777,某某,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0101,,否"
    )  # row 5: bad ID
    response = upload(client, "registries", csv_bytes(REG_HEADER, rows))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "IMPORT_REJECTED" and body["status"] == "rejected"
    assert body["imported_count"] == 0 and body["row_count"] == 4
    found = {(e["row"], e["column"], e["code"]) for e in body["errors"]}
    assert (3, "disease", "CHOICE_INVALID") in found
    assert (4, "registered_on", "DATE_INVALID") in found
    assert (5, "id_number", "ID_INVALID") in found
    assert all(e["message"] for e in body["errors"])
    assert "痛风" in next(e["message"] for e in body["errors"] if e["row"] == 3)
    assert Registry.objects.count() == 0, "the good row 2 was not imported either"
    assert ImportBatch.objects.get(pk=body["id"]).status == ImportBatch.Status.REJECTED


def test_row_errors_never_echo_the_id_number(client, login, coordinator, people):
    login(coordinator)
    (_patient, number), *_ = people
    rows = [f"{number},别人,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0101,,否"]  # name does not match
    body = upload(client, "registries", csv_bytes(REG_HEADER, rows)).json()
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(2, "NAME_MISMATCH")]
    stored = json.dumps(ImportBatch.objects.get(pk=body["id"]).errors, ensure_ascii=False)
    assert number not in stored and number not in json.dumps(body, ensure_ascii=False)


def test_unknown_resident_out_of_scope_org_and_duplicates_are_row_errors(
    client, login, staff_of, community, people
):
    township_coordinator = staff_of(policy.COORDINATOR, community.township)
    login(township_coordinator)
    (_p1, n1), (_p2, n2), (p3, n3) = people
    make_registry(patient=p3, org=community.village, disease="t2dm")
    rows = [
        f"{n1},,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0201,,否",  # row 2: another township's village
        f"{f.valid_id(date(1970, 1, 1), 'M', seq=401)},,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0101,,否",
        f"{n2},,冠心病,2025-03-10,2025-03-01,县级医院确诊,NOPE,,否",  # row 4: no such organisation
        f"{n3},,糖尿病,2025-03-10,2025-03-01,县级医院确诊,VC0101,,否",  # row 5: already enrolled
        f"{n2},,高血压,2025-04-10,2025-03-01,县级医院确诊,VC0101,,否",  # row 6
        f"{n2},,原发性高血压,2025-04-11,2025-03-01,县级医院确诊,VC0101,,否",  # row 7: same as row 6
        f"{n1},,脑卒中,2025-03-10,2025-04-01,县级医院确诊,VC0101,,否",  # row 8: diagnosed after registered
        f"{n1},,冠心病,{date.today() + timedelta(days=3)},2025-04-01,县级医院确诊,VC0101,,否",  # row 9
    ]
    body = upload(client, "registries", csv_bytes(REG_HEADER, rows)).json()
    found = {(e["row"], e["column"], e["code"]) for e in body["errors"]}
    assert found == {
        (2, "managing_org_code", "ORG_OUT_OF_SCOPE"),
        (3, "id_number", "PATIENT_UNKNOWN"),
        (4, "managing_org_code", "ORG_UNKNOWN"),
        (5, "disease", "ALREADY_ENROLLED"),
        (7, "disease", "DUPLICATE_IN_FILE"),
        (8, "diagnosed_on", "DIAGNOSED_AFTER_REGISTERED"),
        (9, "registered_on", "DATE_IN_FUTURE"),
    }
    assert Registry.objects.filter(disease="htn").count() == 0


def test_wrong_headers_are_a_clear_error(client, login, coordinator, people):
    login(coordinator)
    content = csv_bytes("身份证号,病种,登记日期,舒张亚", ["x,高血压,2025-01-01,80"])
    response = upload(client, "registries", content)
    assert response.status_code == 422
    errors = response.json()["errors"]
    codes = {(e["code"], e["column"] or e["header"]) for e in errors}
    assert ("UNKNOWN_COLUMN", "登记日期") in codes and ("UNKNOWN_COLUMN", "舒张亚") in codes
    assert ("MISSING_COLUMN", "registered_on") in codes and ("MISSING_COLUMN", "managing_org_code") in codes
    assert all(e["row"] == 1 for e in errors)
    assert "建档日期" in next(e["message"] for e in errors if e["column"] == "registered_on")


def test_gbk_csv_with_english_aliases_is_read(client, login, coordinator, people):
    login(coordinator)
    header = "id_number,name,disease,registered_on,diagnosed_on,diagnosis_source,org_code"
    rows = [f"{n},{p.name},2型糖尿病,2025/3/10,2025年3月1日,上级医院确诊,VC0101" for p, n in people[:2]]
    response = upload(client, "registries", csv_bytes(header, rows, "gbk"))
    assert response.status_code == 201, response.json()
    assert Registry.objects.filter(disease="t2dm").count() == 2
    assert set(Registry.objects.values_list("diagnosis_source", flat=True)) == {"higher_hospital"}


def test_utf8_bom_csv_is_read(client, login, coordinator, people):
    login(coordinator)
    content = b"\xef\xbb\xbf" + csv_bytes(REG_HEADER, registry_rows(people[:1], "VC0101"))
    assert upload(client, "registries", content).status_code == 201


def test_xlsx_with_dates_and_numbers_as_excel_stores_them(client, login, coordinator, community, people):
    login(coordinator)
    (patient, number), *_ = people
    make_registry(patient=patient, org=community.village, disease="htn", registered_on=date(2025, 1, 5))
    book = Workbook()
    sheet = book.active
    sheet.append(
        ["身份证号", "病种", "随访日期", "随访方式", "收缩压(mmHg)", "舒张压（mmHg）", "心率", "体重"]
    )
    sheet.append([number, "高血压", date(2025, 4, 2), "门诊", 138.0, 86, 72, 68.25])
    out = io.BytesIO()
    book.save(out)
    response = upload(client, "follow_ups", out.getvalue(), "随访.xlsx")
    assert response.status_code == 201, response.json()
    visit = FollowUp.objects.get()
    assert (visit.visit_on, visit.sbp, visit.dbp, visit.heart_rate) == (date(2025, 4, 2), 138, 86, 72)
    assert str(visit.weight_kg) == "68.3"
    assert visit.classification == "satisfied" and visit.organisation_id == community.village.pk


# --- Follow-ups --------------------------------------------------------------------------------------


def test_follow_ups_are_evaluated_in_date_order_so_two_unsatisfied_refer(
    client, login, coordinator, community, people
):
    login(coordinator)
    (patient, number), *_ = people
    make_registry(patient=patient, org=community.village, disease="htn", registered_on=date(2025, 1, 5))
    rows = [  # the later visit first in the file
        f"{number},高血压,2025-03-15,门诊,152,96,,,",
        f"{number},高血压,2025-03-01,门诊,150,95,,,",
        f"{number},高血压,2025-02-01,家庭,135,85,,无,",
    ]
    response = upload(client, "follow_ups", csv_bytes(FU_HEADER, rows))
    assert response.status_code == 201, response.json()
    assert response.json()["imported_count"] == 3
    visits = {v.visit_on: v for v in FollowUp.objects.all()}
    assert visits[date(2025, 2, 1)].classification == "satisfied"
    assert visits[date(2025, 3, 1)].referral == "none"
    assert visits[date(2025, 3, 15)].referral == "routine"
    assert "two_consecutive_unsatisfied" in visits[date(2025, 3, 15)].referral_reasons
    registry = Registry.objects.get(patient=patient)
    assert registry.last_follow_up_on == date(2025, 3, 15)
    # The year roll-up (IND-1..IND-4) is refreshed once per registry and year, after the rows.
    year = RegistryYear.objects.get(registry=registry, year=2025)
    assert (year.ff_dates, year.last_bp_on, year.last_bp_at_target) == (3, date(2025, 3, 15), False)


def test_bad_follow_up_readings_dates_and_enrolment_are_each_reported(
    client, login, coordinator, community, people
):
    login(coordinator)
    (p1, n1), (p2, n2), (_p3, n3) = people
    make_registry(patient=p1, org=community.village, disease="htn", registered_on=date(2025, 3, 1))
    make_registry(patient=p2, org=community.village, disease="t2dm", registered_on=date(2025, 1, 1))
    future = (date.today() + timedelta(days=5)).isoformat()
    rows = [
        f"{n1},高血压,2025-04-01,门诊,30,20,,,",  # 2: SBP 30 and DBP 20 impossible
        f"{n1},高血压,2025-04-02,门诊,120,130,,,",  # 3: diastolic above systolic
        f"{n2},糖尿病,2025-04-01,门诊,,,126,,",  # 4: glucose in mg/dL
        f"{n1},高血压,{future},门诊,130,80,,,",  # 5: future
        f"{n1},高血压,2025-02-01,门诊,130,80,,,",  # 6: before enrolment
        f"{n3},高血压,2025-04-01,门诊,130,80,,,",  # 7: not enrolled
        f"{n1},痛风,2025-04-03,门诊,130,80,,,",  # 8: unknown disease
        f"{n1},高血压,2025-04-04,门诊,,,,,",  # 9: face-to-face without BP
        f"{n1},高血压,2025-04-05,门诊,130,80,,发烧,",  # 10: unknown symptom
        f"{n1},高血压,2025-04-06,门诊,130,80,,,",  # 11: good
        f"{n1},高血压,2025-04-06,电话,,,,,",  # 12: same day again
    ]
    response = upload(client, "follow_ups", csv_bytes(FU_HEADER, rows))
    assert response.status_code == 422
    found = {(e["row"], e["column"], e["code"]) for e in response.json()["errors"]}
    assert {
        (2, "sbp", "READING_OUT_OF_RANGE"),
        (2, "dbp", "READING_OUT_OF_RANGE"),
        (3, "dbp", "DIASTOLIC_NOT_BELOW_SYSTOLIC"),
        (4, "fpg_mmol", "GLUCOSE_UNIT_SUSPECT"),
        (5, "visit_on", "DATE_IN_FUTURE"),
        (6, "visit_on", "VISIT_BEFORE_ENROLMENT"),
        (7, "disease", "NOT_ENROLLED"),
        (8, "disease", "CHOICE_INVALID"),
        (9, "sbp", "READINGS_REQUIRED"),
        (10, "symptoms", "SYMPTOM_UNKNOWN"),
        (12, "visit_on", "DUPLICATE_IN_FILE"),
    } == found
    assert FollowUp.objects.count() == 0


def test_follow_up_of_a_registry_managed_outside_the_importers_scope_is_refused(
    client, login, staff_of, community, people
):
    login(staff_of(policy.COORDINATOR, community.township))
    (patient, number), *_ = people
    make_registry(patient=patient, org=community.other_village, disease="htn", registered_on=date(2025, 1, 1))
    body = upload(
        client, "follow_ups", csv_bytes(FU_HEADER, [f"{number},高血压,2025-04-01,门诊,130,80,,,"])
    ).json()
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(2, "REGISTRY_OUT_OF_SCOPE")]


def test_a_service_refusal_mid_way_rolls_back_every_row(client, login, coordinator, people, monkeypatch):
    from yilian.chronic.errors import AlreadyEnrolled
    from yilian.chronic.services import registries

    real = registries.enrol
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["patient_id"])
        if len(calls) == 3:
            raise AlreadyEnrolled(field="disease")
        return real(**kwargs)

    monkeypatch.setattr(registries, "enrol", flaky)
    login(coordinator)
    response = upload(client, "registries", csv_bytes(REG_HEADER, registry_rows(people, "VC0101")))
    assert response.status_code == 422
    assert [(e["row"], e["code"]) for e in response.json()["errors"]] == [(4, "SERVICE_REFUSED")]
    assert Registry.objects.count() == 0, "rows 2 and 3 were rolled back"


# --- The file as a whole -----------------------------------------------------------------------------


def test_the_same_file_twice_is_refused_unless_the_first_was_rejected(
    client, login, coordinator, community, people
):
    login(coordinator)
    newcomer_id = f.valid_id(date(1966, 6, 6), "F", seq=77)
    rows = [
        *registry_rows(people, "VC0101"),
        f"{newcomer_id},,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0101,,否",
    ]
    content = csv_bytes(REG_HEADER, rows)
    assert upload(client, "registries", content).status_code == 422  # the newcomer is not registered yet
    f.make_patient(community.village, name="新来", birth=date(1966, 6, 6), sex="F", id_number=newcomer_id)
    first = upload(client, "registries", content)
    assert first.status_code == 201
    again = upload(client, "registries", content, "copy.csv")
    assert again.status_code == 409
    assert again.json()["code"] == "IMPORT_DUPLICATE_FILE" and again.json()["batch_id"] == first.json()["id"]
    assert Registry.objects.count() == 4


def test_too_large_and_unreadable_files_are_refused(client, login, coordinator, monkeypatch):
    login(coordinator)
    monkeypatch.setattr(import_services, "MAX_BYTES", 100)
    response = upload(client, "registries", b"x" * 101)
    assert response.status_code == 413 and response.json()["code"] == "IMPORT_FILE_TOO_LARGE"
    monkeypatch.setattr(import_services, "MAX_BYTES", 5 * 1024 * 1024)
    response = upload(client, "registries", b"PK\x03\x04 not really a workbook", "x.xlsx")
    assert response.status_code == 422 and response.json()["code"] == "IMPORT_FILE_UNREADABLE"
    monkeypatch.setitem(import_services.MAX_ROWS, "registries", 2)
    rows = ["1,2,3"] * 3
    response = upload(client, "registries", csv_bytes(REG_HEADER, rows))
    assert response.status_code == 413 and response.json()["code"] == "IMPORT_TOO_MANY_ROWS"


def test_template_downloads_with_header_example_and_allowed_values_and_imports_as_empty(
    client, login, coordinator, community
):
    login(coordinator)
    response = client.get(f"{URL}/template/follow_ups")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["身份证号", "姓名", "病种", "随访日期", "随访方式"] and "收缩压2" in header
    assert sheet["A2"].value == import_services.EXAMPLE_ID
    allowed = book["可选值"]
    values = {c.value for col in allowed.iter_cols() for c in col}
    assert {"高血压", "门诊", "VC0101", "是"} <= values
    # Uploaded untouched, the example row is skipped: there is nothing to import.
    again = upload(client, "follow_ups", response.content, "模板.xlsx")
    assert again.status_code == 422 and again.json()["code"] == "IMPORT_FILE_EMPTY"
    assert client.get(f"{URL}/template/registries").status_code == 200


@pytest.mark.parametrize("role", [policy.VILLAGE_DOCTOR, policy.DOCTOR, policy.NURSE])
def test_only_importers_may_import(client, login, staff_of, community, role):
    login(staff_of(role, community.village))
    response = upload(client, "registries", csv_bytes(REG_HEADER, []))
    assert response.status_code == 403
    assert client.get(f"{URL}/template/registries").status_code == 403


def test_anonymous_cannot_import(client):
    assert upload(client, "registries", b"x").status_code == 401


def test_batches_are_listed_only_within_the_importers_scope(
    client, login, staff_of, coordinator, community, people
):
    login(coordinator)
    batch_id = upload(
        client, "registries", csv_bytes(REG_HEADER, registry_rows(people[:1], "VC0101"))
    ).json()["id"]
    assert client.get(f"{URL}/{batch_id}").json()["status"] == "imported"
    login(staff_of(policy.COORDINATOR, community.other_township))
    assert client.get(f"{URL}/{batch_id}").status_code == 404
    assert client.get(URL).json()["count"] == 0


def test_a_chinese_file_imports_whatever_the_uploaders_language(
    client, login, coordinator, community, people
):
    login(coordinator)
    (patient, number), *_ = people
    make_registry(patient=patient, org=community.village, disease="htn", registered_on=date(2025, 1, 5))
    rows = [f"{number},高血压,2025-04-01,家庭,150,95,,,", f"{number},高血压,2025-04-02,电话,,,,,"]
    response = client.post(
        URL,
        {"kind": "follow_ups", "file": _file(csv_bytes(FU_HEADER, rows), "a.csv")},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 201, response.json()
    assert sorted(FollowUp.objects.values_list("mode", flat=True)) == ["home", "phone"]


def test_row_errors_are_listed_in_file_order_row_by_row_then_column_by_column(
    client, login, coordinator, people
):
    login(coordinator)
    (_patient, number), *_ = people
    rows = [f"{number},痛风,2025-04-01,飞鸽,30,20,,,"]
    errors = upload(client, "follow_ups", csv_bytes(FU_HEADER, rows)).json()["errors"]
    assert [e["column"] for e in errors] == ["disease", "mode", "sbp", "dbp"]
    allowed = next(e["message"] for e in errors if e["column"] == "mode")
    assert "门诊、家庭、电话" in allowed
