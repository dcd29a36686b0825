"""The audit log search for security auditors (安全审计员): ``/audit/``.

Rules: MLPS 2.0 (GB/T 22239-2019 §8.1.4.3 安全审计) — the auditor can search and export the audit
trail, nobody can edit it (the model, the admin and the database triggers of migration 0002 all
refuse), and the auditor's own searches and exports are themselves audited (``audit.view``,
``audit.export``), so that looking at who looked is visible too. The auditor sees ids and labels,
never clinical data (三员分立: the auditor role grants no patient access).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, policy
from yilian.common.access import requires
from yilian.common.errors import InvalidInput
from yilian.common.models import AuditEvent

PAGE_SIZE = 50
EXPORT_MAX_ROWS = 100_000
MAX_RANGE_DAYS = 3660


@dataclass(frozen=True)
class AuditFilters:
    """What an auditor searches by (page form and API query alike)."""

    actor: str = ""
    patient_id: int | None = None
    action: str = ""
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_detail(self) -> dict:
        """The filters as written into the auditor's own audit row."""
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items() if v}


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def search_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events matching ``filters``, newest first.

    ``actor`` matches a username exactly (case-insensitive) or any part of the recorded label;
    ``action`` is a prefix (``patient.`` finds every patient action); dates are local calendar days,
    both ends included.
    """
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput(_("开始日期不能晚于结束日期。"), field="date_from")
    events = AuditEvent.objects.select_related("actor")
    if filters.actor:
        events = events.filter(
            Q(actor__username__iexact=filters.actor) | Q(actor_label__icontains=filters.actor)
        )
    if filters.patient_id is not None:
        events = events.filter(patient_id=filters.patient_id)
    if filters.action:
        events = events.filter(action__startswith=filters.action)
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    if filters.date_from:
        events = events.filter(at__gte=_day_start(filters.date_from))
    if filters.date_to:
        events = events.filter(at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return events.order_by("-at", "-id")


class AuditSearchForm(forms.Form):
    actor = forms.CharField(label=_("操作人"), max_length=150, required=False)
    patient_id = forms.IntegerField(label=_("患者ID"), min_value=1, max_value=2**63 - 1, required=False)
    action = forms.CharField(label=_("动作（前缀）"), max_length=64, required=False)
    outcome = forms.ChoiceField(
        label=_("结果"), choices=[("", _("全部")), *AuditEvent.Outcome.choices], required=False
    )
    date_from = forms.DateField(
        label=_("开始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("结束日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                self.add_error("date_from", _("开始日期不能晚于结束日期。"))
            elif (end - start).days > MAX_RANGE_DAYS:
                self.add_error("date_to", _("查询范围不能超过十年。"))
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            actor=(data.get("actor") or "").strip(),
            patient_id=data.get("patient_id"),
            action=(data.get("action") or "").strip(),
            outcome=data.get("outcome") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


def _query_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@requires(policy.AUDIT_VIEW)
def audit_log(request):
    """Search page; each search is itself audited (``audit.view``)."""
    form = AuditSearchForm(request.GET or None)
    page = None
    if not request.GET or form.is_valid():
        filters = form.filters() if request.GET else AuditFilters()
        page = Paginator(search_events(filters), PAGE_SIZE).get_page(request.GET.get("page"))
        audit.record(
            request.actor,
            "audit.view",
            target=audit.Target("audit_log", ""),
            detail={"filters": filters.as_detail(), "page": page.number},
        )
    context = {
        "form": form,
        "page": page,
        "query": _query_without_page(request),
        "export_max_rows": EXPORT_MAX_ROWS,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "audit-search":
        return render(request, "common/audit_log.html#audit-search", context)
    return render(request, "common/audit_log.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    """A cell a spreadsheet will not execute (CSV/formula injection: a leading = + - @ is quoted)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


EXPORT_COLUMNS = [
    (_("时间"), lambda e: timezone.localtime(e.at).strftime("%Y-%m-%d %H:%M:%S")),
    (_("操作人账号"), lambda e: e.actor.username if e.actor_id else ""),
    (_("操作人"), lambda e: e.actor_label),
    (_("机构ID"), lambda e: e.actor_org_id or ""),
    (_("接口密钥ID"), lambda e: e.api_key_id or ""),
    (_("IP"), lambda e: e.ip),
    (_("动作"), lambda e: e.action),
    (_("对象类型"), lambda e: e.object_type),
    (_("对象ID"), lambda e: e.object_id),
    (_("患者ID"), lambda e: e.patient_id or ""),
    (_("原因"), lambda e: e.reason),
    (_("结果"), lambda e: e.get_outcome_display()),
    (_("详情"), lambda e: json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else ""),
]


def export_rows(events: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    yield [str(title) for title, _value in EXPORT_COLUMNS]
    for event in events.iterator(chunk_size=2000):
        yield [_csv_cell(value(event)) for _title, value in EXPORT_COLUMNS]


@requires(policy.AUDIT_VIEW)
def audit_export(request):
    """CSV of the current search (at most ``EXPORT_MAX_ROWS`` rows), itself audited (``audit.export``)."""
    form = AuditSearchForm(request.GET)
    if not form.is_valid():
        raise InvalidInput(_("筛选条件有误，无法导出：%(errors)s") % {"errors": form.errors.as_text()})
    filters = form.filters()
    events = search_events(filters)
    total = events.count()
    audit.record(
        request.actor,
        "audit.export",
        target=audit.Target("audit_log", ""),
        detail={"filters": filters.as_detail(), "rows": min(total, EXPORT_MAX_ROWS), "matched": total},
    )
    writer = csv.writer(_Echo())
    stream = (writer.writerow(row) for row in export_rows(events[:EXPORT_MAX_ROWS]))
    response = StreamingHttpResponse(_with_bom(stream), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _with_bom(lines: Iterator[str]) -> Iterator[str]:
    yield "\ufeff"  # so that Excel on a Chinese Windows reads UTF-8
    yield from lines
