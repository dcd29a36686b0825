"""Bulk import pages (``/chronic/import/``): upload a template file, download the template, and read
every row error of a rejected batch (issue #4 item 6).

As thin as the API: the service reads, checks and imports (all rows or none); the upload redirects
to the batch's page (post/redirect/get), so a refresh never uploads twice.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from yilian.chronic.models import ImportBatch
from yilian.chronic.services import imports as import_services
from yilian.common import policy
from yilian.common.access import requires
from yilian.common.errors import DomainError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KINDS = [(k.value, k.label) for k in ImportBatch.Kind]
RECENT = 20


def _rows(batch: ImportBatch) -> list[dict]:
    return [
        {
            "row": e.get("row"),
            "header": e.get("header") or e.get("column") or "",
            "code": e.get("code", ""),
            "message": import_services.error_message(e),
        }
        for e in batch.errors or []
    ]


@never_cache
@require_http_methods(["GET", "POST"])
@requires(policy.CHRONIC_IMPORT)
def import_home(request):
    """The upload form, the two templates and the recent batches of the importer's organisations."""
    error = None
    kind = request.POST.get("kind") or request.GET.get("kind") or ImportBatch.Kind.REGISTRIES
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise import_services.ImportFileEmpty()
            if upload.size and upload.size > import_services.MAX_BYTES:
                raise import_services.ImportFileTooLarge()
            batch = import_services.import_file(
                actor=request.actor,
                kind=kind,
                filename=upload.name or "upload",
                content=upload.read(import_services.MAX_BYTES + 1),
            )
        except DomainError as exc:
            error = exc
        else:
            return redirect(reverse("chronic:import-batch", args=[batch.pk]))
    batches = list(import_services.batches_visible_to(request.actor).select_related("uploaded_by")[:RECENT])
    return render(
        request,
        "chronic/imports/home.html",
        {
            "kinds": KINDS,
            "kind": kind,
            "error": error,
            "batches": batches,
            "max_rows": import_services.MAX_ROWS,  # per kind
            "max_mb": import_services.MAX_BYTES // (1024 * 1024),
        },
        status=error.status if error else 200,
    )


@never_cache
@require_GET
@requires(policy.CHRONIC_IMPORT)
def import_batch(request, batch_id: int):
    """One batch: imported (how many) or rejected (every bad row: row number, column, message)."""
    batch = import_services.batch_for(request.actor, batch_id)
    return render(request, "chronic/imports/batch.html", {"batch": batch, "rows": _rows(batch)})


@require_GET
@requires(policy.CHRONIC_IMPORT)
def import_template(request, kind: str):
    content = import_services.template_workbook(request.actor, kind)
    response = HttpResponse(content, content_type=XLSX)
    name = "chronic-registries-template.xlsx" if kind == "registries" else "chronic-follow-ups-template.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns: list = [
    path("import/", import_home, name="import"),
    path("import/<int:batch_id>/", import_batch, name="import-batch"),
    path("import/template/<str:kind>/", import_template, name="import-template"),
]
