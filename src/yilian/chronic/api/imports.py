"""Chronic-disease API: bulk import of registries and follow-ups (``/api/v1/chronic/imports``).

Thin: the service reads and checks the whole file and imports all rows or none
(``services.imports``). A rejected file answers 422 ``IMPORT_REJECTED`` with the batch and every
row error; a file already imported 409; too large 413.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpResponse
from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status
from pydantic import Field

from yilian.chronic.errors import ImportRejected
from yilian.chronic.models import ImportBatch
from yilian.chronic.services import imports as import_services
from yilian.common import policy
from yilian.common.access import requires

router = Router(tags=["chronic"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Kind = Literal["registries", "follow_ups"]


class ImportErrorRead(Schema):
    row: int = Field(description="电子表格中的行号（表头为第 1 行）")
    column: str = Field(description="列的标准代码，如 sbp；整行问题为空")
    header: str = Field(description="文件中该列的表头")
    code: str
    message: str


class ImportBatchRead(Schema):
    id: int
    kind: str
    status: str
    filename: str
    row_count: int
    imported_count: int
    uploaded_at: datetime
    errors: list[ImportErrorRead]


class ImportRejectedRead(ImportBatchRead):
    code: str
    message: str


class ImportBatchList(Schema):
    count: int
    items: list[ImportBatchRead]


def batch_read(batch: ImportBatch) -> dict:
    return {
        "id": batch.pk,
        "kind": batch.kind,
        "status": batch.status,
        "filename": batch.filename,
        "row_count": batch.row_count,
        "imported_count": batch.imported_count,
        "uploaded_at": batch.uploaded_at,
        "errors": [
            {
                "row": int(e.get("row") or 0),
                "column": str(e.get("column", "")),
                "header": str(e.get("header", "")),
                "code": str(e.get("code", "")),
                "message": import_services.error_message(e),
            }
            for e in batch.errors or []
        ],
    }


@router.post(
    "/imports",
    response={201: ImportBatchRead, 422: ImportRejectedRead},
    summary="批量导入专病档案或随访记录（CSV/Excel 模板；有错误则全部不导入）",
)
@requires(policy.CHRONIC_IMPORT)
def upload(request, kind: Form[Kind], file: File[UploadedFile]):
    if file.size and file.size > import_services.MAX_BYTES:
        raise import_services.ImportFileTooLarge()
    content = file.read(import_services.MAX_BYTES + 1)
    batch = import_services.import_file(
        actor=request.actor, kind=kind, filename=file.name or "upload", content=content
    )
    if batch.status == ImportBatch.Status.REJECTED:
        return Status(
            422,
            {
                "code": ImportRejected.code,
                "message": str(ImportRejected.default_message),
                **batch_read(batch),
            },
        )
    return Status(201, batch_read(batch))


@router.get("/imports", response=ImportBatchList, summary="最近的导入批次")
@requires(policy.CHRONIC_IMPORT)
def list_batches(request, limit: int = 20):
    limit = max(1, min(limit, 100))
    items = [batch_read(b) for b in import_services.batches_visible_to(request.actor)[:limit]]
    return {"count": len(items), "items": items}


@router.get("/imports/{int:batch_id}", response=ImportBatchRead, summary="导入批次及其逐行错误")
@requires(policy.CHRONIC_IMPORT)
def read_batch(request, batch_id: int):
    return batch_read(import_services.batch_for(request.actor, batch_id))


@router.get("/imports/template/{kind}", summary="下载导入模板（.xlsx：表头、示例行、可选值）")
@requires(policy.CHRONIC_IMPORT)
def template(request, kind: Kind):
    content = import_services.template_workbook(request.actor, kind)
    response = HttpResponse(content, content_type=XLSX)
    name = "chronic-registries-template.xlsx" if kind == "registries" else "chronic-follow-ups-template.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
