"""The chronic-disease dashboard (慢病管理指标看板): chronic.md §6 IND-1..IND-5 and §8 SIM-2..SIM-5.

``/chronic/dashboard/``: pick an organisation (within the CHRONIC_REPORT scope) and a year or a
period; KPI tiles (在管患者, 规范管理率, 血压控制率, 血糖控制率 with the 80 % / 50 % targets), the
breakdown by child organisation (ECharts bar chart: a bar opens that organisation; a table too),
the Simple/HEARTS panel and its 12-month trend (loaded from the API after the page, so the page
itself stays small and fast on a phone). Every figure links to its patient list
(``/chronic/dashboard/list/``, masked, audited); the Excel export is
``/chronic/dashboard/export.xlsx``.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from yilian.chronic import rules
from yilian.chronic.selectors import indicators as ind
from yilian.common import policy
from yilian.common.access import requires

MAX_ORG_CHOICES = 80


def _period_args(request) -> dict:
    return {k: request.GET.get(k, "")[:10] for k in ("year", "start", "end")}


def _query(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _org_choices(actor, org):
    """The picker: every reachable organisation when few; else the breadcrumb, the siblings and children."""
    reachable = ind.reachable_orgs(actor)
    if len(reachable) <= MAX_ORG_CHOICES:
        return reachable
    keep = {o.pk: o for o in ind.ancestors_in_scope(actor, org)}
    for o in reachable:
        if o.parent_id in (org.pk, org.parent_id) and len(keep) < MAX_ORG_CHOICES:
            keep.setdefault(o.pk, o)
    return sorted(keep.values(), key=lambda o: o.path)


def _tile(label, value, *, rate=None, target=None, href="", code=""):
    met = None if rate is None or target is None else rate >= target
    return {
        "label": label,
        "value": value,
        "rate": rate,
        "target": target,
        "href": href,
        "met": met,
        "code": code,
    }


@require_GET
@requires(policy.CHRONIC_REPORT)
def dashboard(request):
    """The dashboard page (chronic.md §6, §8)."""
    actor = request.actor
    today = timezone.localdate()
    args = _period_args(request)
    period = ind.period_from(today=today, **args)
    org = ind.report_org(actor, request.GET.get("org") or None)
    month = ind.month_from(request.GET.get("month") or None, today=today)
    indicator_set = ind.national_indicators(org, period)
    rows = ind.breakdown(org, period)
    base = {"org": org.pk, **args}

    def link(figure: str, disease: str) -> str:
        return f"list/?{_query(**base, figure=figure, disease=disease)}"

    htn, dm = indicator_set.diseases["htn"], indicator_set.diseases["t2dm"]
    target_norm, target_ctrl = ind.TARGETS["normative"], ind.TARGETS["controlled"]
    tiles = [
        _tile(_("高血压在管患者"), htn["managed"], href=link("managed", "htn")),
        _tile(_("高血压规范管理率"), htn["normative"], rate=htn["normative_rate"], target=target_norm,
              href=link("normative", "htn"), code="IND-1"),
        _tile(_("血压控制率"), htn["controlled"], rate=htn["control_rate"], target=target_ctrl,
              href=link("controlled", "htn"), code="IND-2"),
        _tile(_("糖尿病在管患者"), dm["managed"], href=link("managed", "t2dm")),
        _tile(_("糖尿病规范管理率"), dm["normative"], rate=dm["normative_rate"], target=target_norm,
              href=link("normative", "t2dm"), code="IND-3"),
        _tile(_("血糖控制率"), dm["controlled"], rate=dm["control_rate"], target=target_ctrl,
              href=link("controlled", "t2dm"), code="IND-4"),
    ]  # fmt: skip
    chart = {
        "names": [r["organisation"]["name"] for r in rows],
        "ids": [r["organisation"]["id"] for r in rows],
        "normative": [_num(r["diseases"]["htn"]["normative_rate"]) for r in rows],
        "controlled": [_num(r["diseases"]["htn"]["control_rate"]) for r in rows],
        "dm_normative": [_num(r["diseases"]["t2dm"]["normative_rate"]) for r in rows],
        "dm_controlled": [_num(r["diseases"]["t2dm"]["control_rate"]) for r in rows],
        "query": _query(**args),
        "trend_url": f"/api/v1/chronic/indicators/trend?{_query(org_id=org.pk, month=month.strftime('%Y-%m'))}",
        "labels": {
            "normative": str(_("规范管理率")),
            "controlled": str(_("血压控制率")),
            "sim_controlled": str(_("控制")),
            "sim_uncontrolled": str(_("未控制")),
            "sim_no_reading": str(_("随访未测血压")),
            "sim_missed": str(_("3个月未随访")),
            "ltfu": str(_("失访率")),
        },
    }
    simple_url = f"{reverse('chronic:indicators-simple')}?{_query(org=org.pk, month=month.strftime('%Y-%m'))}"
    years = list(range(today.year, today.year - 6, -1))
    months = [rules.add_months(today.replace(day=1), -k) for k in range(0, 24)]
    context = {
        "org": org,
        "period": period,
        "args": args,
        "org_choices": _org_choices(actor, org),
        "breadcrumb": ind.ancestors_in_scope(actor, org),
        "years": years,
        "months": months,
        "month": month,
        "indicator_set": indicator_set,
        "tiles": tiles,
        "coverage": {
            d: "—" if f["coverage_rate"] is None else f"{f['coverage_rate']}%"
            for d, f in indicator_set.diseases.items()
        },
        "rows": rows,
        "chart": chart,
        "simple_url": simple_url,
        "export_query": _query(**base),
        "custom_period": bool(args["start"] or args["end"]),
        "base_query": _query(**args),
    }
    return render(request, "chronic/indicators/dashboard.html", context)


@require_GET
@requires(policy.CHRONIC_REPORT)
def simple_panel(request):
    """The Simple/HEARTS panel (SIM-4/SIM-5 for a month), an HTMX fragment of the dashboard: it is
    the slowest figure of a county, so the page shows the national indicators first."""
    today = timezone.localdate()
    org = ind.report_org(request.actor, request.GET.get("org") or None)
    month = ind.month_from(request.GET.get("month") or None, today=today)
    disease = "t2dm" if request.GET.get("disease") == "t2dm" else "htn"
    sim = ind.sim_month(org, month, disease)
    list_url = reverse("chronic:indicators-list")
    sim_links = {
        k: f"{list_url}?{_query(org=org.pk, figure=k, disease=disease, month=month.strftime('%Y-%m'))}"
        for k in ind.SIM_FIGURES
    }
    quarter = ind.quarter_from(today=today)
    cohort = ind.quarterly_cohort(org, quarter, disease)
    cohort_links = {
        k: f"{list_url}?{_query(org=org.pk, figure=k, disease=disease, quarter=cohort['quarter'])}"
        for k in ind.COHORT_FIGURES
    }
    context = {
        "org": org,
        "month": month,
        "sim": sim,
        "sim_links": sim_links,
        "cohort": cohort,
        "cohort_links": cohort_links,
    }
    return render(request, "chronic/indicators/_simple.html", context)


def _num(value):
    return None if value is None else float(value)


@require_GET
@requires(policy.CHRONIC_REPORT)
def figure_list(request):
    """The registries behind one figure (下钻患者清单): masked, paginated, audited."""
    actor = request.actor
    today = timezone.localdate()
    figure = request.GET.get("figure", "managed")[:20]
    disease = request.GET.get("disease", "htn")[:8]
    org = ind.report_org(actor, request.GET.get("org") or None)
    page_no = request.GET.get("page", "1")
    page_no = int(page_no) if page_no.isdigit() and len(page_no) < 7 else 1
    args = _period_args(request)
    if figure.startswith("cohort_"):  # SIM-7: the registration quarter
        quarter = ind.quarter_from(request.GET.get("quarter") or None, today=today)
        period = None
        page = ind.drill_down(actor, org, figure=figure, disease=disease, month=quarter, page=page_no)
        label = f"{quarter.year}-Q{(quarter.month - 1) // 3 + 1}"
        scope_label = label
        keep = {"org": org.pk, "figure": figure, "disease": disease, "quarter": label}
    elif figure.startswith("sim_"):
        month = ind.month_from(request.GET.get("month") or None, today=today)
        period = None
        page = ind.drill_down(actor, org, figure=figure, disease=disease, month=month, page=page_no)
        scope_label = month.strftime("%Y-%m")
        keep = {"org": org.pk, "figure": figure, "disease": disease, "month": month.strftime("%Y-%m")}
    else:
        month = None
        period = ind.period_from(today=today, **args)
        page = ind.drill_down(actor, org, figure=figure, disease=disease, period=period, page=page_no)
        scope_label = period.label
        keep = {"org": org.pk, "figure": figure, "disease": disease, **args}
    context = {
        "org": org,
        "figure": figure,
        "figure_label": ind.FIGURE_LABELS.get(figure, figure),
        "disease_label": ind.DISEASE_LABELS.get(disease, disease),
        "scope_label": scope_label,
        "page": page,
        "period": period,
        "prev_query": _query(**keep, page=page["page"] - 1) if page["page"] > 1 else "",
        "next_query": _query(**keep, page=page["page"] + 1) if page["page"] < page["pages"] else "",
        "back_query": _query(org=org.pk, **args)
        if period
        else _query(org=org.pk, month=keep.get("month", "")),
        "export_query": _query(**keep) if period else "",
        "classification_labels": {
            "satisfied": _("控制满意"),
            "unsatisfied": _("控制不满意"),
            "adr": _("不良反应"),
            "complication": _("并发症"),
        },
    }
    return render(request, "chronic/indicators/list.html", context)


@require_GET
@requires(policy.CHRONIC_REPORT)
def export(request):
    """The Excel workbook (indicators, breakdown, masked patient list of ``figure``); audited."""
    today = timezone.localdate()
    period = ind.period_from(today=today, **_period_args(request))
    org = ind.report_org(request.actor, request.GET.get("org") or None)
    content, filename = ind.export_workbook(
        request.actor,
        org,
        period,
        figure=request.GET.get("figure", "managed")[:20],
        disease=request.GET.get("disease", "htn")[:8],
    )
    response = HttpResponse(
        content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("dashboard/", dashboard, name="indicators-dashboard"),
    path("dashboard/list/", figure_list, name="indicators-list"),
    path("dashboard/simple/", simple_panel, name="indicators-simple"),
    path("dashboard/export.xlsx", export, name="indicators-export"),
]
