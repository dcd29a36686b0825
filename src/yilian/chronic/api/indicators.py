"""Chronic-disease API: indicators (chronic.md §6 IND-1..IND-5, §8 SIM-2..SIM-5), breakdown, trend,
drill-down lists and the Excel export. Paths are relative to ``/api/v1/chronic/``.

Every operation needs ``chronic.report`` and is scoped to the caller's reporting organisations:
an organisation outside that scope (or unknown) is 404. Periods: ``year`` or ``start``+``end``
(ISO dates, end ≥ start, at most 5 years), otherwise 422 ``INVALID_PERIOD``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from django.http import HttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from yilian.chronic.selectors import indicators as ind
from yilian.common import policy
from yilian.common.access import requires

router = Router(tags=["chronic"])

Disease = Literal["htn", "t2dm"]
NationalFigure = Literal["managed", "normative", "not_normative", "controlled", "not_controlled"]
Figure = Literal[
    "managed",
    "normative",
    "not_normative",
    "controlled",
    "not_controlled",
    "sim_denominator",
    "sim_controlled",
    "sim_uncontrolled",
    "sim_no_reading",
    "sim_missed",
    "sim_under_care",
    "sim_ltfu",
    "cohort_registered",
    "cohort_controlled",
    "cohort_uncontrolled",
    "cohort_no_reading",
    "cohort_missed",
]


class PeriodParams(Schema):
    org_id: int | None = Field(None, ge=1, description="机构 id（默认：本人可统计的最高一级机构）")
    year: str | None = Field(None, max_length=4, description="统计年度，如 2025（默认今年）")
    start: str | None = Field(None, max_length=10, description="自定义期间开始 YYYY-MM-DD")
    end: str | None = Field(None, max_length=10, description="自定义期间结束 YYYY-MM-DD")


class MonthParams(Schema):
    org_id: int | None = Field(None, ge=1)
    month: str | None = Field(None, max_length=7, description="报告月份 YYYY-MM（默认本月）")
    disease: Disease = "htn"


class TrendParams(MonthParams):
    months: int = Field(12, ge=1, le=24)


class CohortParams(Schema):
    org_id: int | None = Field(None, ge=1)
    quarter: str | None = Field(
        None, max_length=7, description="登记季度 YYYY-Qn（默认：结果季度已结束的最近一季）"
    )
    disease: Disease = "htn"


class CohortRead(Schema):
    quarter: str
    outcome_quarter: str
    disease: str
    cohort_registered: int
    cohort_controlled: int
    cohort_uncontrolled: int
    cohort_no_reading: int
    cohort_missed: int
    controlled_rate: Decimal | None
    uncontrolled_rate: Decimal | None
    no_reading_rate: Decimal | None
    missed_rate: Decimal | None


class DrillParams(PeriodParams):
    figure: Figure = "managed"
    disease: Disease = "htn"
    month: str | None = Field(None, max_length=7, description="Simple/HEARTS 指标的报告月份 YYYY-MM")
    quarter: str | None = Field(None, max_length=7, description="季度队列指标的登记季度 YYYY-Qn")
    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(ind.PAGE_SIZE, ge=1, le=200)


class ExportParams(PeriodParams):
    figure: NationalFigure = "managed"
    disease: Disease = "htn"


class OrgRead(Schema):
    id: int
    name: str
    kind: str


class PeriodRead(Schema):
    start: date
    end: date
    label: str


class DiseaseFigures(Schema):
    managed: int
    normative: int
    controlled: int
    normative_rate: Decimal | None
    control_rate: Decimal | None
    expected_patients: int = 0
    coverage_rate: Decimal | None = None
    codes: dict[str, str] = {}


class IndicatorSetRead(Schema):
    organisation: OrgRead
    period: PeriodRead
    source: str = Field(description="rollup = 年度汇总表；follow_ups = 按随访记录实时计算")
    adult_population: int
    diseases: dict[str, DiseaseFigures]
    targets: dict[str, str]


class BreakdownOrg(OrgRead):
    is_self: bool


class BreakdownRow(Schema):
    organisation: BreakdownOrg
    diseases: dict[str, DiseaseFigures]


class BreakdownRead(Schema):
    organisation: OrgRead
    period: PeriodRead
    rows: list[BreakdownRow]


class SimMonthRead(Schema):
    month: str
    disease: str
    sim_denominator: int
    sim_controlled: int
    sim_uncontrolled: int
    sim_no_reading: int
    sim_missed: int
    sim_under_care: int
    sim_ltfu: int
    controlled_rate: Decimal | None
    uncontrolled_rate: Decimal | None
    no_reading_rate: Decimal | None
    missed_rate: Decimal | None
    ltfu_rate: Decimal | None


class DrillRow(Schema):
    registry_id: int
    disease: str
    name: str = Field(description="脱敏姓名")
    sex: str
    age: int
    id_number: str = Field(description="脱敏证件号")
    phone: str = Field(description="脱敏手机号")
    managing_org: str
    registered_on: date
    last_follow_up_on: date | None
    next_follow_up_on: date | None
    last_classification: str


class DrillRead(Schema):
    figure: str
    disease: str
    total: int
    page: int
    pages: int
    page_size: int
    rows: list[DrillRow]


def _org_read(org) -> dict:
    return {"id": org.pk, "name": org.name, "kind": org.kind}


def _period(params: PeriodParams) -> ind.Period:
    return ind.period_from(year=params.year, start=params.start, end=params.end, today=timezone.localdate())


@router.get("/indicators", response=IndicatorSetRead, summary="国家慢病指标（IND-1..IND-5）")
@requires(policy.CHRONIC_REPORT)
def indicator_set(request, params: Query[PeriodParams]):
    """规范管理率、血压/血糖控制率、健康管理率 of an organisation's subtree over a period (chronic.md §6)."""
    period = _period(params)
    org = ind.report_org(request.actor, params.org_id)
    return ind.national_indicators(org, period).as_dict()


@router.get("/indicators/breakdown", response=BreakdownRead, summary="按下级机构分解")
@requires(policy.CHRONIC_REPORT)
def indicator_breakdown(request, params: Query[PeriodParams]):
    """IND-1..IND-4 per child organisation (one grouped query), plus the organisation's own registries."""
    period = _period(params)
    org = ind.report_org(request.actor, params.org_id)
    return {
        "organisation": _org_read(org),
        "period": {"start": period.start, "end": period.end, "label": period.label},
        "rows": ind.breakdown(org, period),
    }


@router.get("/indicators/simple", response=SimMonthRead, summary="Simple/HEARTS 月度指标")
@requires(policy.CHRONIC_REPORT)
def indicator_simple(request, params: Query[MonthParams]):
    """SIM-4 controlled / uncontrolled / visited-no-reading / missed shares and SIM-5 LTFU for a month."""
    month = ind.month_from(params.month, today=timezone.localdate())
    org = ind.report_org(request.actor, params.org_id)
    return ind.sim_month(org, month, params.disease)


@router.get("/indicators/trend", response=list[SimMonthRead], summary="月度趋势")
@requires(policy.CHRONIC_REPORT)
def indicator_trend(request, params: Query[TrendParams]):
    """SIM-4/SIM-5 for the ``months`` reporting months ending with ``month``, oldest first."""
    month = ind.month_from(params.month, today=timezone.localdate())
    org = ind.report_org(request.actor, params.org_id)
    return ind.sim_trend(org, month, params.disease, params.months, today=timezone.localdate())


@router.get("/indicators/cohort", response=CohortRead, summary="季度登记队列（Simple/HEARTS SIM-7）")
@requires(policy.CHRONIC_REPORT)
def indicator_cohort(request, params: Query[CohortParams]):
    """SIM-7: of the patients registered in a quarter, the shares controlled / uncontrolled /
    visited without a reading / missed in the following quarter."""
    quarter = ind.quarter_from(params.quarter, today=timezone.localdate())
    org = ind.report_org(request.actor, params.org_id)
    return ind.quarterly_cohort(org, quarter, params.disease)


@router.get("/indicators/registries", response=DrillRead, summary="指标患者清单（下钻）")
@requires(policy.CHRONIC_REPORT)
def indicator_registries(request, params: Query[DrillParams]):
    """The registries behind a figure (numerator or denominator), paginated, names masked; audited."""
    org = ind.report_org(request.actor, params.org_id)
    today = timezone.localdate()
    if params.figure.startswith("cohort_"):
        page = ind.drill_down(
            request.actor,
            org,
            figure=params.figure,
            disease=params.disease,
            month=ind.quarter_from(params.quarter, today=today),
            page=params.page,
            page_size=params.page_size,
        )
    elif params.figure.startswith("sim_"):
        page = ind.drill_down(
            request.actor,
            org,
            figure=params.figure,
            disease=params.disease,
            month=ind.month_from(params.month, today=today),
            page=params.page,
            page_size=params.page_size,
        )
    else:
        page = ind.drill_down(
            request.actor,
            org,
            figure=params.figure,
            disease=params.disease,
            period=_period(params),
            page=params.page,
            page_size=params.page_size,
        )
    return {"figure": params.figure, "disease": params.disease, **page}


@router.get("/indicators/export.xlsx", summary="导出 Excel（指标、下级机构、患者清单）")
@requires(policy.CHRONIC_REPORT)
def indicator_export(request, params: Query[ExportParams]):
    """An .xlsx workbook: indicators, breakdown and the masked patient list of ``figure``; audited."""
    period = _period(params)
    org = ind.report_org(request.actor, params.org_id)
    content, filename = ind.export_workbook(
        request.actor, org, period, figure=params.figure, disease=params.disease
    )
    response = HttpResponse(
        content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
