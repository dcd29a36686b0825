"""The bulk import pages (/chronic/import/): upload, the row-error table, the template download."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests import factories as f
from yilian.chronic.models import ImportBatch, Registry
from yilian.common import policy

pytestmark = pytest.mark.django_db

HEADER = "身份证号,姓名,病种,建档日期,确诊日期,确诊来源,管理机构编码"


def page_upload(client, content: bytes, kind: str = "registries"):
    return client.post("/chronic/import/", {"kind": kind, "file": SimpleUploadedFile("档案.csv", content)})


def test_upload_page_imports_and_redirects_to_the_batch(client, login, staff_of, community):
    login(staff_of(policy.COORDINATOR))
    number = f.valid_id(date(1958, 3, 14), "M", seq=301)
    f.make_patient(community.village, name="李建国", birth=date(1958, 3, 14), id_number=number)
    page = client.get("/chronic/import/")
    assert page.status_code == 200
    assert b"/chronic/import/template/registries/" in page.content
    content = f"{HEADER}\n{number},李建国,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0101\n".encode()
    response = page_upload(client, content)
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/chronic/import/{batch.pk}/"
    result = client.get(response["Location"])
    assert "导入成功" in result.content.decode()
    assert Registry.objects.count() == 1
    assert "档案.csv" in client.get("/chronic/import/").content.decode()


def test_rejected_upload_shows_every_bad_row_with_row_number_and_column(client, login, staff_of, community):
    login(staff_of(policy.COORDINATOR))
    content = (
        f"{HEADER}\n"
        "110101199003077777,某,高血压,2025-03-10,2025-03-01,县级医院确诊,VC0101\n"
        f"{f.valid_id(seq=302)},某,痛风,2025-03-10,2025-03-01,县级医院确诊,VC0101\n"
    ).encode()
    result = client.get(page_upload(client, content)["Location"]).content.decode()
    assert "全部未导入" in result
    table = result[result.index('id="import-errors"') :]
    assert "身份证号格式或校验位不正确" in table and "痛风" in table
    assert '<td class="row-no">2</td>' in table and '<td class="row-no">3</td>' in table
    assert Registry.objects.count() == 0


def test_a_whole_file_problem_is_shown_on_the_form(client, login, staff_of):
    login(staff_of(policy.COORDINATOR))
    response = page_upload(client, b"PK\x03\x04 broken")
    assert response.status_code == 422
    assert "无法读取该文件" in response.content.decode()


def test_template_download_is_an_xlsx(client, login, staff_of):
    login(staff_of(policy.COORDINATOR))
    response = client.get("/chronic/import/template/follow_ups/")
    assert response.status_code == 200 and response.content.startswith(b"PK")
    assert "spreadsheetml" in response["Content-Type"]


def test_import_pages_are_for_importers_only(client, login, staff_of, community):
    login(staff_of(policy.VILLAGE_DOCTOR, community.village))
    assert client.get("/chronic/import/").status_code == 403
    assert client.get("/chronic/import/template/registries/").status_code == 403
