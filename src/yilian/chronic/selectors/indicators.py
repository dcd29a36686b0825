"""Chronic-disease indicators for any organisation and period, aggregated in the database.

- National indicators (chronic.md §6): ``Managed(P)``, IND-1 / IND-3 规范管理率 (|FF(r)| ≥
  ``required(r)``), IND-2 血压控制率 / IND-4 血糖控制率 (last face-to-face visit in P with the
  reading met R4.1 / R4.2; none = 失访 = not at target), IND-5 健康管理率.
  A calendar-year period reads the ``RegistryYear`` roll-up (one row per registry, a LEFT JOIN);
  any other period computes FF(r) and the last reading from ``FollowUp`` rows with correlated
  subqueries. ``required(r)`` is whatever ``rules.required_visits`` says: it is evaluated in Python
  for every possible registration day of the period and turned into a SQL ``CASE`` over date
  ranges, so the SQL cannot drift from the pure reference.
- Simple/HEARTS monthly shares (SIM-1..SIM-5) for a reporting month, and a 12-month trend.
- Breakdown by child organisation: one grouped query on the child's path prefix.
- Drill-down: the registries behind a figure are the same queryset filtered by the same ``Q``
  that the count uses, so a list always has exactly as many rows as its figure.

Scope: an organisation is reachable when its path lies under one of the actor's
``CHRONIC_REPORT`` paths; otherwise it is "not found" (no probing of the tree).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Substr
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.models import FollowUp, Registry
from yilian.common import audit, masking, policy
from yilian.common.errors import DomainError, NotFound
from yilian.common.policy import Actor
from yilian.community.models import Organisation
from yilian.patients.models import Patient

FACE_TO_FACE = ("clinic", "home")
DISEASES = ("htn", "t2dm")
MAX_PERIOD_YEARS = 5
PAGE_SIZE = 50
TARGETS = {"normative": Decimal("80"), "controlled": Decimal("50")}  # §6 historical targets [S]


class InvalidPeriod(DomainError):
    """A period the indicators cannot be computed for (bad date, end before start, too long)."""

    code = "INVALID_PERIOD"
    status = 422
    default_message = _("统计期间无效：请检查开始和结束日期（结束不能早于开始，期间不超过5年）。")


class UnknownFigure(DomainError):
    code = "UNKNOWN_FIGURE"
    status = 422
    default_message = _("未知的指标项，无法列出患者清单。")


# --------------------------------------------------------------------------------------------
# Periods and organisations


@dataclass(frozen=True)
class Period:
    """An assessment period ``[start, end]`` (chronic.md §2 ``assessment_period``; default the year)."""

    start: date
    end: date

    @property
    def year(self) -> int | None:
        """The calendar year when the period is exactly one (then ``RegistryYear`` answers)."""
        if self.start == date(self.start.year, 1, 1) and self.end == date(self.start.year, 12, 31):
            return self.start.year
        return None

    @property
    def label(self) -> str:
        if self.year:
            return str(_("%(year)s年") % {"year": self.year})
        return f"{self.start.isoformat()} ~ {self.end.isoformat()}"


def _parse_day(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidPeriod(_("日期格式应为 YYYY-MM-DD。"), field=name) from None


def period_from(*, year: Any = None, start: Any = None, end: Any = None, today: date | None = None) -> Period:
    """The period asked for: a year, or ``start``..``end``; by default the current year."""
    today = today or date.today()
    start_d, end_d = _parse_day(start, "start"), _parse_day(end, "end")
    if start_d or end_d:
        if not (start_d and end_d):
            raise InvalidPeriod(_("请同时填写开始日期和结束日期。"), field="end" if start_d else "start")
        if end_d < start_d:
            raise InvalidPeriod(_("结束日期不能早于开始日期。"), field="end")
        if rules.add_months(start_d, 12 * MAX_PERIOD_YEARS) <= end_d:
            raise InvalidPeriod(_("统计期间不能超过5年。"), field="end")
        return Period(start_d, end_d)
    if year in (None, ""):
        y = today.year
    else:
        try:
            y = int(year)
        except (TypeError, ValueError):
            raise InvalidPeriod(_("年份应为四位数字。"), field="year") from None
    if not 2000 <= y <= today.year + 1:
        raise InvalidPeriod(_("年份超出可统计范围。"), field="year")
    return Period(date(y, 1, 1), date(y, 12, 31))


def month_from(value: Any = None, *, today: date | None = None) -> date:
    """A reporting month (SIM-1) as its first day: ``YYYY-MM``; by default the current month."""
    today = today or date.today()
    if value in (None, ""):
        return today.replace(day=1)
    try:
        y, m = str(value)[:7].split("-")
        first = date(int(y), int(m), 1)
    except ValueError:
        raise InvalidPeriod(_("月份格式应为 YYYY-MM。"), field="month") from None
    if first.year < 2000 or first > today.replace(day=1) + timedelta(days=31):
        raise InvalidPeriod(_("月份超出可统计范围。"), field="month")
    return first


def report_org(actor: Actor, org_id: Any = None) -> Organisation:
    """The organisation to report on, within the actor's CHRONIC_REPORT scope (else NotFound).

    Without ``org_id``: the actor's widest reporting organisation.
    """
    paths = policy.scope_paths(actor, policy.CHRONIC_REPORT)
    if not paths:
        raise NotFound()
    if org_id in (None, ""):
        org = Organisation.objects.filter(path__in=paths).order_by("depth", "path").first()
    else:
        try:
            pk = int(org_id)
        except (TypeError, ValueError):
            raise NotFound() from None
        org = Organisation.objects.filter(pk=pk).first()
    if org is None or not any(org.path.startswith(p) for p in paths):
        raise NotFound()
    return org


def reachable_orgs(actor: Actor) -> list[Organisation]:
    """Organisations the actor may report on (for the picker), in tree order."""
    paths = policy.scope_paths(actor, policy.CHRONIC_REPORT)
    if not paths:
        return []
    q = Q()
    for p in paths:
        q |= Q(path__startswith=p)
    return list(Organisation.objects.filter(q).order_by("path"))


def ancestors_in_scope(actor: Actor, org: Organisation) -> list[Organisation]:
    """The breadcrumb from the actor's widest reporting organisation down to ``org``."""
    paths = policy.scope_paths(actor, policy.CHRONIC_REPORT)
    prefixes = [org.path[:i] for i in range(5, len(org.path) + 1, 5)]
    prefixes = [p for p in prefixes if any(p.startswith(s) for s in paths)]
    return list(Organisation.objects.filter(path__in=prefixes).order_by("path"))


# --------------------------------------------------------------------------------------------
# National indicators (§6)


def _required_runs(period: Period) -> list[tuple[date | None, int]]:
    """``required(r)`` (IND-1) as ``[(registered before this day, value), …, (None, value)]``,
    evaluated from the pure rule for every possible registration day of the period."""
    required_visits = rules.required_visits
    runs: list[tuple[date | None, int]] = [
        (period.start, required_visits(period.start - timedelta(days=1), period.start, period.end))
    ]
    day = period.start
    run_value = required_visits(day, period.start, period.end)
    while day <= period.end:
        value = required_visits(day, period.start, period.end)
        if value != run_value:
            runs.append((day, run_value))
            run_value = value
        day += timedelta(days=1)
    runs.append((None, run_value))
    return runs


def _required_case(period: Period) -> Case:
    """``required(r)`` (IND-1) as a SQL CASE over registration-date ranges, from the pure rule."""
    whens = [
        When(registered_on__lt=before, then=Value(value))
        if before
        else When(registered_on__lte=period.end, then=Value(value))
        for before, value in _required_runs(period)
    ]
    return Case(*whens, default=Value(0), output_field=IntegerField())


def _required_sql(period: Period) -> tuple[str, list]:
    parts, params = [], []
    for before, value in _required_runs(period):
        if before:
            parts.append(f"WHEN r.registered_on < %s THEN {int(value)}")
            params.append(before)
        else:
            parts.append(f"WHEN r.registered_on <= %s THEN {int(value)}")
            params.append(period.end)
    return "CASE " + " ".join(parts) + " ELSE 0 END", params


def _national_counts_sql(org: Organisation, period: Period, child_length: int | None = None) -> list[dict]:
    """IND-1..IND-4 counts for a period that is not a calendar year, set-based: one pass over the
    period's face-to-face follow-ups of the subtree grouped by registry (FF(r) and the last
    reading as ``MAX(day ‖ id ‖ at_target)``), joined to ``Managed(P)``. Same definitions as
    ``managed_queryset`` (which the drill-down lists use); the tests hold both to the reference."""
    if connection.vendor == "postgresql":
        key = "to_char(f.visit_on, 'YYYY-MM-DD') || lpad(CAST(f.id AS TEXT), 12, '0')"
    else:
        key = "f.visit_on || printf('%%012d', f.id)"
    reg, fu, orgs = Registry._meta.db_table, FollowUp._meta.db_table, Organisation._meta.db_table
    required, required_params = _required_sql(period)
    child = f"SUBSTR(o.path, 1, {int(child_length)})" if child_length else "''"
    scope = f"""
        FROM {reg} r JOIN {orgs} o ON o.id = r.managing_org_id
        WHERE o.path LIKE %s AND r.disease IN ('htn', 't2dm') AND r.registered_on <= %s
          AND (r.closed_on IS NULL OR r.closed_on > %s)"""
    scope_params = [org.path.replace("%", "") + "%", period.end, period.end]
    sql = f"""
        WITH a AS (
            SELECT f.registry_id, COUNT(DISTINCT f.visit_on) AS ff,
                   MAX(CASE WHEN f.bp_at_target IS NOT NULL
                            THEN {key} || CASE WHEN f.bp_at_target THEN '1' ELSE '0' END END) AS bp,
                   MAX(CASE WHEN f.fpg_at_target IS NOT NULL
                            THEN {key} || CASE WHEN f.fpg_at_target THEN '1' ELSE '0' END END) AS fpg
            FROM {fu} f JOIN {reg} rr ON rr.id = f.registry_id
            WHERE f.mode IN ('clinic', 'home') AND f.visit_on >= %s AND f.visit_on <= %s
              AND f.visit_on >= rr.registered_on
              AND f.registry_id IN (SELECT r.id {scope})
            GROUP BY f.registry_id
        )
        SELECT {child} AS child, r.disease, COUNT(*),
               SUM(CASE WHEN COALESCE(a.ff, 0) >= {required} THEN 1 ELSE 0 END),
               SUM(CASE WHEN (r.disease = 'htn' AND SUBSTR(a.bp, 23, 1) = '1')
                          OR (r.disease = 't2dm' AND SUBSTR(a.fpg, 23, 1) = '1') THEN 1 ELSE 0 END)
        {scope.replace("WHERE", "LEFT JOIN a ON a.registry_id = r.id WHERE", 1)}
        GROUP BY 1, 2"""  # noqa: S608 (table names from _meta, values as parameters)
    params = [period.start, period.end, *scope_params, *required_params, *scope_params]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [
            {"child": c, "disease": d, "managed": int(m), "normative": int(n or 0), "controlled": int(k or 0)}
            for c, d, m, n, k in cur.fetchall()
        ]


def managed_queryset(org: Organisation, period: Period, diseases=DISEASES) -> QuerySet:
    """§6 ``Managed(P)`` in the subtree of ``org``, annotated with ``ff``, ``required``,
    ``bp_ok`` and ``fpg_ok`` (IND-1..IND-4 inputs)."""
    qs = Registry.objects.filter(
        managing_org__path__startswith=org.path, disease__in=list(diseases), registered_on__lte=period.end
    ).filter(Q(closed_on__isnull=True) | Q(closed_on__gt=period.end))
    if period.year is not None:
        qs = qs.annotate(ry=FilteredRelation("years", condition=Q(years__year=period.year))).annotate(
            ff=Coalesce(F("ry__ff_dates"), Value(0)),
            bp_ok=Coalesce(F("ry__last_bp_at_target"), Value(False)),
            fpg_ok=Coalesce(F("ry__last_fpg_at_target"), Value(False)),
        )
    else:
        window = FollowUp.objects.filter(
            registry=OuterRef("pk"),
            mode__in=FACE_TO_FACE,
            visit_on__gte=Greatest(Value(period.start), OuterRef("registered_on"), output_field=DateField()),
            visit_on__lte=period.end,
        ).order_by()
        ff = window.values("registry").annotate(n=Count("visit_on", distinct=True)).values("n")
        last_bp = (
            window.filter(bp_at_target__isnull=False).order_by("-visit_on", "-id").values("bp_at_target")[:1]
        )
        last_fpg = (
            window.filter(fpg_at_target__isnull=False)
            .order_by("-visit_on", "-id")
            .values("fpg_at_target")[:1]
        )
        qs = qs.annotate(
            ff=Coalesce(Subquery(ff, output_field=IntegerField()), Value(0)),
            bp_ok=Coalesce(Subquery(last_bp, output_field=BooleanField()), Value(False)),
            fpg_ok=Coalesce(Subquery(last_fpg, output_field=BooleanField()), Value(False)),
        )
    return qs.annotate(required=_required_case(period))


NATIONAL_FIGURES: dict[str, Q] = {
    "managed": Q(),
    "normative": Q(ff__gte=F("required")),
    "not_normative": Q(ff__lt=F("required")),
    "controlled": Q(disease="htn", bp_ok=True) | Q(disease="t2dm", fpg_ok=True),
    "not_controlled": Q(disease="htn", bp_ok=False) | Q(disease="t2dm", fpg_ok=False),
}

INDICATOR_CODES = {("htn", "normative"): "IND-1", ("htn", "controlled"): "IND-2",
                   ("t2dm", "normative"): "IND-3", ("t2dm", "controlled"): "IND-4"}  # fmt: skip


def _national_aggregates() -> dict[str, Count]:
    return {
        "managed": Count("id"),
        "normative": Count("id", filter=NATIONAL_FIGURES["normative"]),
        "controlled": Count("id", filter=NATIONAL_FIGURES["controlled"]),
    }


def _rates(row: dict) -> dict:
    percent = rules.percent
    return {
        "managed": row.get("managed", 0),
        "normative": row.get("normative", 0),
        "controlled": row.get("controlled", 0),
        "normative_rate": percent(row.get("normative", 0), row.get("managed", 0)),
        "control_rate": percent(row.get("controlled", 0), row.get("managed", 0)),
    }


def _empty() -> dict:
    return {"managed": 0, "normative": 0, "controlled": 0}


def adult_population(org: Organisation, on: date) -> int:
    """IND-5 denominator base: active residents aged ≥18 on ``on`` whose home organisation is in the subtree."""
    born_by = rules.add_months(on, -12 * 18)
    return Patient.objects.filter(
        home_org__path__startswith=org.path, birth_date__lte=born_by, status="active"
    ).count()


@dataclass
class IndicatorSet:
    org: Organisation
    period: Period
    diseases: dict[str, dict] = field(default_factory=dict)
    population: int = 0
    source: str = "rollup"

    def as_dict(self) -> dict:
        return {
            "organisation": {"id": self.org.pk, "name": self.org.name, "kind": self.org.kind},
            "period": {"start": self.period.start, "end": self.period.end, "label": self.period.label},
            "source": self.source,
            "adult_population": self.population,
            "diseases": self.diseases,
            "targets": {k: str(v) for k, v in TARGETS.items()},
        }


def national_indicators(org: Organisation, period: Period, *, with_population: bool = True) -> IndicatorSet:
    """IND-1..IND-5 for ``org``'s subtree over ``period``: one grouped query (GROUP BY disease)."""
    if period.year is None:
        grouped = _national_counts_sql(org, period)
    else:
        grouped = (
            managed_queryset(org, period).values("disease").annotate(**_national_aggregates()).order_by()
        )
    rows = {r["disease"]: r for r in grouped}
    result = IndicatorSet(org=org, period=period, source="rollup" if period.year else "follow_ups")
    params = rules.DEFAULTS
    percent = rules.percent
    if with_population:
        result.population = adult_population(org, period.end)
    for disease in DISEASES:
        figures = _rates(rows.get(disease, _empty()))
        figures["codes"] = {
            "normative_rate": INDICATOR_CODES[(disease, "normative")],
            "control_rate": INDICATOR_CODES[(disease, "controlled")],
        }
        prevalence = params.prevalence_htn_adult if disease == "htn" else params.prevalence_t2dm_adult
        expected = int((Decimal(result.population) * prevalence).to_integral_value())
        figures["expected_patients"] = expected
        figures["coverage_rate"] = percent(figures["managed"], expected) if with_population else None
        result.diseases[disease] = figures
    return result


def _child_key_length(org: Organisation) -> int:
    return len(org.path) + 5  # paths are ``NNNN.`` segments (community.services)


def breakdown(org: Organisation, period: Period) -> list[dict]:
    """National indicators per child organisation of ``org`` (one grouped query) plus, when
    ``org`` itself manages registries, a row for ``org`` (直管)."""
    length = _child_key_length(org)
    if period.year is None:
        grouped = _national_counts_sql(org, period, length)
    else:
        grouped = (
            managed_queryset(org, period)
            .annotate(child=Substr("managing_org__path", 1, length))
            .values("child", "disease")
            .annotate(**_national_aggregates())
            .order_by()
        )
    by_child: dict[str, dict[str, dict]] = {}
    for row in grouped:
        by_child.setdefault(row["child"], {})[row["disease"]] = row
    children = list(Organisation.objects.filter(parent=org).order_by("path"))
    out = []
    for node, key in [(c, c.path) for c in children] + ([(org, org.path)] if org.path in by_child else []):
        data = by_child.get(key, {})
        out.append(
            {
                "organisation": {
                    "id": node.pk,
                    "name": node.name,
                    "kind": node.kind,
                    "is_self": node.pk == org.pk,
                },
                "diseases": {d: _rates(data.get(d, _empty())) for d in DISEASES},
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Simple / HEARTS monthly indicators (§8)


def _add_months(d: date, n: int) -> date:
    return rules.add_months(d, n)


def _month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def sim_queryset(org: Organisation, month: date, disease: str = "htn") -> QuerySet:
    """Registries assigned in the subtree and not closed by the end of ``month`` (dead excluded,
    SIM-4; moved out / revoked are no longer assigned), annotated with SIM-2/SIM-3 state.

    A visit is any follow-up (incl. phone: Simple counts any encounter); the reading is BP for HTN
    and FPG for T2DM (SIM-9: FBS <126 mg/dL = 7.0 mmol/L); BP control is <140/90 without age
    adjustment (SIM-3).
    """
    m_end = _month_end(month)
    start3 = _add_months(month, -2)  # visits in months M-2..M: msv < 3
    start12 = _add_months(month, -11)  # msv < 12
    visits = FollowUp.objects.filter(registry=OuterRef("pk"), visit_on__lte=m_end).order_by()
    if disease == "htn":
        reading = visits.filter(visit_on__gte=start3, sbp__isnull=False, dbp__isnull=False)
        ok = Case(When(Q(sbp__lt=140) & Q(dbp__lt=90), then=Value(True)), default=Value(False))
    else:
        reading = visits.filter(visit_on__gte=start3, fpg_mmol__isnull=False)
        ok = Case(When(fpg_mmol__lt=Decimal("7.0"), then=Value(True)), default=Value(False))
    latest_ok = reading.annotate(ok=ok).order_by("-visit_on", "-id").values("ok")[:1]
    return (
        Registry.objects.filter(
            managing_org__path__startswith=org.path, disease=disease, registered_on__lte=m_end
        )
        .filter(Q(closed_on__isnull=True) | Q(closed_on__gt=m_end))
        .annotate(
            visited3=Exists(visits.filter(visit_on__gte=start3)),
            visited12=Exists(visits.filter(visit_on__gte=start12)),
            reading_ok=Subquery(latest_ok, output_field=BooleanField()),
            cohort=Case(When(registered_on__lt=start3, then=Value(True)), default=Value(False)),
            recent=Case(When(registered_on__gte=start12, then=Value(True)), default=Value(False)),
        )
    )


_UNDER_CARE = Q(recent=True) | Q(visited12=True)
_DENOMINATOR = _UNDER_CARE & Q(cohort=True)
SIM_FIGURES: dict[str, Q] = {
    "sim_denominator": _DENOMINATOR,
    "sim_controlled": _DENOMINATOR & Q(visited3=True, reading_ok=True),
    "sim_uncontrolled": _DENOMINATOR & Q(visited3=True, reading_ok=False),
    "sim_no_reading": _DENOMINATOR & Q(visited3=True, reading_ok__isnull=True),
    "sim_missed": _DENOMINATOR & Q(visited3=False),
    "sim_under_care": _UNDER_CARE,
    "sim_ltfu": ~_UNDER_CARE,
}


def _sim_counts(org: Organisation, month: date, disease: str) -> dict[str, int]:
    """The SIM figures of ``sim_queryset`` counted set-based: one pass over the follow-ups of the
    subtree in the 12-month window, grouped by registry, instead of three correlated subqueries
    per registry (7 s → about 1 s for a county of 200,000 registries). The latest reading of the
    3-month window is found as ``MAX(day ‖ id ‖ ok)`` (chronic.md SIM-3: latest by date, then by
    record). Tests check both against the pure reference."""
    m_end = _month_end(month)
    start3, start12 = _add_months(month, -2), _add_months(month, -11)
    if connection.vendor == "postgresql":
        key = "to_char(f.visit_on, 'YYYY-MM-DD') || lpad(CAST(f.id AS TEXT), 12, '0')"
    else:
        key = "f.visit_on || printf('%%012d', f.id)"
    if disease == "htn":
        has = "f.sbp IS NOT NULL AND f.dbp IS NOT NULL"
        ok = "CASE WHEN f.sbp < 140 AND f.dbp < 90 THEN '1' ELSE '0' END"
    else:
        has = "f.fpg_mmol IS NOT NULL"
        ok = "CASE WHEN f.fpg_mmol < 7.0 THEN '1' ELSE '0' END"
    reg, fu, orgs = Registry._meta.db_table, FollowUp._meta.db_table, Organisation._meta.db_table
    scope = f"""
        FROM {reg} r JOIN {orgs} o ON o.id = r.managing_org_id
        WHERE o.path LIKE %(prefix)s AND r.disease = %(disease)s AND r.registered_on <= %(m_end)s
          AND (r.closed_on IS NULL OR r.closed_on > %(m_end)s)"""
    sql = f"""
        WITH a AS (
            SELECT f.registry_id, MAX(f.visit_on) AS last_visit,
                   MAX(CASE WHEN f.visit_on >= %(start3)s AND {has} THEN {key} || {ok} END) AS reading
            FROM {fu} f
            WHERE f.visit_on >= %(start12)s AND f.visit_on <= %(m_end)s
              AND f.registry_id IN (SELECT r.id {scope})
            GROUP BY f.registry_id
        ), s AS (
            SELECT CASE WHEN r.registered_on >= %(start12)s OR a.last_visit IS NOT NULL THEN 1 ELSE 0 END AS care,
                   CASE WHEN r.registered_on < %(start3)s THEN 1 ELSE 0 END AS cohort,
                   CASE WHEN a.last_visit >= %(start3)s THEN 1 ELSE 0 END AS v3,
                   SUBSTR(a.reading, 23, 1) AS ok
            {scope.replace("WHERE", "LEFT JOIN a ON a.registry_id = r.id WHERE", 1)}
        )
        SELECT COALESCE(SUM(care * cohort), 0),
               COALESCE(SUM(CASE WHEN care = 1 AND cohort = 1 AND v3 = 1 AND ok = '1' THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN care = 1 AND cohort = 1 AND v3 = 1 AND ok = '0' THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN care = 1 AND cohort = 1 AND v3 = 1 AND ok IS NULL THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN care = 1 AND cohort = 1 AND v3 = 0 THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(care), 0),
               COALESCE(SUM(1 - care), 0)
        FROM s"""  # noqa: S608 (table names from _meta, values as parameters)
    params = {
        "prefix": org.path.replace("%", "") + "%",
        "disease": disease,
        "m_end": m_end,
        "start3": start3,
        "start12": start12,
    }
    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    names = ("sim_denominator", "sim_controlled", "sim_uncontrolled", "sim_no_reading", "sim_missed",
             "sim_under_care", "sim_ltfu")  # fmt: skip
    return {name: int(value) for name, value in zip(names, row, strict=True)}


def sim_month(org: Organisation, month: date, disease: str = "htn") -> dict:
    """SIM-4 shares (controlled / uncontrolled / visited-no-reading / missed over the under-care
    cohort registered ≥3 months before) and SIM-5 LTFU rate, as of the end of ``month``."""
    percent = rules.percent
    counts = _sim_counts(org, month, disease)
    den = counts["sim_denominator"]
    return {
        "month": month.strftime("%Y-%m"),
        "disease": disease,
        **counts,
        "controlled_rate": percent(counts["sim_controlled"], den),
        "uncontrolled_rate": percent(counts["sim_uncontrolled"], den),
        "no_reading_rate": percent(counts["sim_no_reading"], den),
        "missed_rate": percent(counts["sim_missed"], den),
        "ltfu_rate": percent(counts["sim_ltfu"], counts["sim_ltfu"] + counts["sim_under_care"]),
    }


TREND_CACHE_SECONDS = 3600


def sim_trend(
    org: Organisation, month: date, disease: str = "htn", months: int = 12, *, today: date | None = None
) -> list[dict]:
    """SIM-4/SIM-5 for the ``months`` reporting months ending with ``month`` (oldest first).

    Months before the current one are cached for an hour (their figures only move when visits
    are back-dated; Simple refreshes its monthly views nightly), the current month is always live.
    """
    current = (today or date.today()).replace(day=1)
    out = []
    for k in range(months - 1, -1, -1):
        m = _add_months(month, -k)
        if m >= current:
            out.append(sim_month(org, m, disease))
            continue
        key = f"chronic:sim:{org.pk}:{org.path}:{disease}:{m.isoformat()}"
        value = cache.get(key)
        if value is None:
            value = sim_month(org, m, disease)
            cache.set(key, value, TREND_CACHE_SECONDS)
        out.append(value)
    return out


# --------------------------------------------------------------------------------------------
# SIM-7 quarterly registration cohort


def quarter_from(value: Any = None, *, today: date | None = None) -> date:
    """A registration quarter (SIM-7) as its first day, from ``YYYY-Qn``; by default the latest
    quarter whose following quarter has ended (its outcome is final)."""
    today = today or date.today()
    current = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if value in (None, ""):
        return _add_months(current, -6)
    text = str(value).strip().upper().replace("-", "")
    try:
        year, q = text.split("Q")
        first = date(int(year), 3 * (int(q) - 1) + 1, 1)
        if not 1 <= int(q) <= 4:
            raise ValueError
    except ValueError:
        raise InvalidPeriod(_("季度格式应为 YYYY-Qn，例如 2026-Q2。"), field="quarter") from None
    if first.year < 2000 or first > current:
        raise InvalidPeriod(_("季度超出可统计范围。"), field="quarter")
    return first


def cohort_queryset(org: Organisation, quarter: date, disease: str = "htn") -> QuerySet:
    """SIM-7: the registries of the subtree registered in ``quarter`` (deaths by the end of the
    next quarter excluded), annotated with their outcome in the *next* quarter: whether they had a
    visit there (any follow-up, as SIM-3) and whether the latest reading there (BP for HTN, FPG for
    T2DM) was controlled (<140/90; FPG <7.0 mmol/L, SIM-9)."""
    q_end = _add_months(quarter, 3) - timedelta(days=1)
    n_start, n_end = _add_months(quarter, 3), _add_months(quarter, 6) - timedelta(days=1)
    visits = FollowUp.objects.filter(
        registry=OuterRef("pk"), visit_on__gte=n_start, visit_on__lte=n_end
    ).order_by()
    if disease == "htn":
        reading = visits.filter(sbp__isnull=False, dbp__isnull=False)
        ok = Case(When(Q(sbp__lt=140) & Q(dbp__lt=90), then=Value(True)), default=Value(False))
    else:
        reading = visits.filter(fpg_mmol__isnull=False)
        ok = Case(When(fpg_mmol__lt=Decimal("7.0"), then=Value(True)), default=Value(False))
    latest_ok = reading.annotate(ok=ok).order_by("-visit_on", "-id").values("ok")[:1]
    return (
        Registry.objects.filter(
            managing_org__path__startswith=org.path,
            disease=disease,
            registered_on__gte=quarter,
            registered_on__lte=q_end,
        )
        .exclude(close_reason=Registry.CloseReason.DEATH, closed_on__lte=n_end)
        .annotate(
            visited_next=Exists(visits),
            reading_ok=Subquery(latest_ok, output_field=BooleanField()),
        )
    )


COHORT_FIGURES: dict[str, Q] = {
    "cohort_registered": Q(),
    "cohort_controlled": Q(visited_next=True, reading_ok=True),
    "cohort_uncontrolled": Q(visited_next=True, reading_ok=False),
    "cohort_no_reading": Q(visited_next=True, reading_ok__isnull=True),
    "cohort_missed": Q(visited_next=False),
}


def quarterly_cohort(org: Organisation, quarter: date, disease: str = "htn") -> dict:
    """SIM-7 quarterly cohort report: of the patients registered in the quarter, the shares
    controlled / uncontrolled / visited without a reading / missed in the following quarter.
    One query; the cohort is one quarter's registrations."""
    qs = cohort_queryset(org, quarter, disease)
    counts = qs.aggregate(**{name: Count("pk", filter=q) for name, q in COHORT_FIGURES.items()})
    counts = {name: int(value or 0) for name, value in counts.items()}
    den = counts["cohort_registered"]
    label = f"{quarter.year}-Q{(quarter.month - 1) // 3 + 1}"
    n = _add_months(quarter, 3)
    return {
        "quarter": label,
        "outcome_quarter": f"{n.year}-Q{(n.month - 1) // 3 + 1}",
        "disease": disease,
        **counts,
        "controlled_rate": rules.percent(counts["cohort_controlled"], den),
        "uncontrolled_rate": rules.percent(counts["cohort_uncontrolled"], den),
        "no_reading_rate": rules.percent(counts["cohort_no_reading"], den),
        "missed_rate": rules.percent(counts["cohort_missed"], den),
    }


# --------------------------------------------------------------------------------------------
# Drill-down (every figure → its registries)


def figure_queryset(
    org: Organisation, *, figure: str, disease: str, period: Period | None = None, month: date | None = None
) -> QuerySet:
    """The registries counted by ``figure`` (a key of NATIONAL_FIGURES, SIM_FIGURES or COHORT_FIGURES)."""
    if disease not in DISEASES:
        raise UnknownFigure(_("病种只能是高血压或2型糖尿病。"), field="disease")
    if figure in NATIONAL_FIGURES:
        if period is None:
            raise UnknownFigure()
        return managed_queryset(org, period, (disease,)).filter(NATIONAL_FIGURES[figure])
    if figure in SIM_FIGURES:
        if month is None:
            raise UnknownFigure()
        return sim_queryset(org, month, disease).filter(SIM_FIGURES[figure])
    if figure in COHORT_FIGURES:  # ``month`` is the first month of the registration quarter
        if month is None:
            raise UnknownFigure()
        return cohort_queryset(org, month, disease).filter(COHORT_FIGURES[figure])
    raise UnknownFigure(field="figure")


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def registry_rows(qs: QuerySet, *, on: date, limit: int | None = None, offset: int = 0) -> list[dict]:
    """Rows for a drill-down list or export: masked name and ID (common.masking), never the full ones."""
    values = qs.order_by("managing_org__path", "registered_on", "id").values(
        "id",
        "disease",
        "registered_on",
        "last_follow_up_on",
        "next_follow_up_on",
        "last_classification",
        "managing_org__name",
        "patient__name",
        "patient__sex",
        "patient__birth_date",
        "patient__id_head",
        "patient__id_last4",
        "patient__phone_last4",
    )
    values = values[offset : offset + limit] if limit is not None else values[offset:]
    rows = []
    for v in values:
        rows.append(
            {
                "registry_id": v["id"],
                "disease": v["disease"],
                "name": masking.mask_name(v["patient__name"]),
                "sex": v["patient__sex"],
                "age": _age(v["patient__birth_date"], on),
                "id_number": (
                    f"{v['patient__id_head'][:3]}***********{v['patient__id_last4']}"
                    if v["patient__id_last4"]
                    else ""
                ),
                "phone": f"*******{v['patient__phone_last4']}" if v["patient__phone_last4"] else "",
                "managing_org": v["managing_org__name"],
                "registered_on": v["registered_on"],
                "last_follow_up_on": v["last_follow_up_on"],
                "next_follow_up_on": v["next_follow_up_on"],
                "last_classification": v["last_classification"],
            }
        )
    return rows


def drill_down(
    actor: Actor,
    org: Organisation,
    *,
    figure: str,
    disease: str,
    period: Period | None = None,
    month: date | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> dict:
    """One page of the registries behind a figure; the read is audited (patient data)."""
    qs = figure_queryset(org, figure=figure, disease=disease, period=period, month=month)
    total = qs.count()
    pages = max(1, -(-total // page_size))
    page = min(max(1, int(page)), pages)
    on = period.end if period else _month_end(month)
    rows = registry_rows(qs, on=on, limit=page_size, offset=(page - 1) * page_size)
    audit.record(
        actor,
        "chronic.indicator_list",
        target=audit.Target("organisation", org.pk),
        detail={
            "figure": figure,
            "disease": disease,
            "period": [period.start.isoformat(), period.end.isoformat()] if period else None,
            "month": month.strftime("%Y-%m") if month else None,
            "page": page,
            "rows": len(rows),
            "total": total,
        },
    )
    return {"total": total, "page": page, "pages": pages, "page_size": page_size, "rows": rows}


# --------------------------------------------------------------------------------------------
# Excel export

EXPORT_MAX_ROWS = 100_000
DISEASE_LABELS = {"htn": _("高血压"), "t2dm": _("2型糖尿病")}
FIGURE_LABELS = {
    "managed": _("年内已管理患者"),
    "normative": _("规范管理"),
    "not_normative": _("未规范管理"),
    "controlled": _("控制达标"),
    "not_controlled": _("控制未达标（含失访）"),
    "sim_denominator": _("在管且建档满3个月"),
    "sim_controlled": _("近3个月控制"),
    "sim_uncontrolled": _("近3个月未控制"),
    "sim_no_reading": _("近3个月随访但未测量"),
    "sim_missed": _("近3个月未随访"),
    "sim_under_care": _("在管（12个月内有随访）"),
    "sim_ltfu": _("失访（12个月以上无随访）"),
    "cohort_registered": _("季度登记队列"),
    "cohort_controlled": _("队列：下一季度控制"),
    "cohort_uncontrolled": _("队列：下一季度未控制"),
    "cohort_no_reading": _("队列：下一季度随访但未测量"),
    "cohort_missed": _("队列：下一季度未随访"),
}


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


def export_workbook(
    actor: Actor, org: Organisation, period: Period, *, figure: str = "managed", disease: str = "htn"
) -> tuple[bytes, str]:
    """An .xlsx workbook: the indicator sheet (IND-1..IND-5), the breakdown by child organisation
    and the patient list of ``figure`` (masked names and IDs); the export is audited.

    Returns ``(content, filename)``.
    """
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.styles import Font

    if figure not in NATIONAL_FIGURES:
        raise UnknownFigure(field="figure")
    if disease not in DISEASES:
        raise UnknownFigure(_("病种只能是高血压或2型糖尿病。"), field="disease")
    indicator_set = national_indicators(org, period)
    rows_breakdown = breakdown(org, period)
    qs = figure_queryset(org, figure=figure, disease=disease, period=period)
    total = qs.count()
    patients = registry_rows(qs, on=period.end, limit=EXPORT_MAX_ROWS)
    bold = Font(bold=True)

    wb = Workbook()
    ws = wb.active
    ws.title = str(_("指标"))
    ws.append([str(_("机构")), org.name])
    ws.append([str(_("统计期间")), period.label, period.start.isoformat(), period.end.isoformat()])
    ws.append([])
    ws.append(
        [
            str(_("病种")),
            str(_("指标编号")),
            str(_("指标")),
            str(_("分子")),
            str(_("分母")),
            str(_("比例")),
            str(_("目标")),
        ]
    )
    for cell in ws[4]:
        cell.font = bold
    for d in DISEASES:
        figs = indicator_set.diseases[d]
        label = str(DISEASE_LABELS[d])
        ws.append([label, "", str(_("年内已管理患者数")), figs["managed"], "", "", ""])
        ws.append(
            [
                label,
                figs["codes"]["normative_rate"],
                str(_("规范管理率")),
                figs["normative"],
                figs["managed"],
                _pct(figs["normative_rate"]),
                "≥80%",
            ]
        )
        control = _("血压控制率") if d == "htn" else _("血糖控制率")
        ws.append(
            [
                label,
                figs["codes"]["control_rate"],
                str(control),
                figs["controlled"],
                figs["managed"],
                _pct(figs["control_rate"]),
                "≥50%",
            ]
        )
        ws.append(
            [
                label,
                "IND-5",
                str(_("健康管理率")),
                figs["managed"],
                figs["expected_patients"],
                _pct(figs["coverage_rate"]),
                "",
            ]
        )
    ws.append([])
    ws.append([str(_("辖区18岁及以上常住人口（建档居民）")), indicator_set.population])

    wb2 = wb.create_sheet(str(_("下级机构")))
    wb2.append([str(_("机构")), str(_("高血压在管")), str(_("高血压规范管理率")), str(_("血压控制率")),
                str(_("糖尿病在管")), str(_("糖尿病规范管理率")), str(_("血糖控制率"))])  # fmt: skip
    for cell in wb2[1]:
        cell.font = bold
    for row in rows_breakdown:
        h, t = row["diseases"]["htn"], row["diseases"]["t2dm"]
        name = row["organisation"]["name"] + (
            str(_("（本机构直管）")) if row["organisation"]["is_self"] else ""
        )
        wb2.append([name, h["managed"], _pct(h["normative_rate"]), _pct(h["control_rate"]),
                    t["managed"], _pct(t["normative_rate"]), _pct(t["control_rate"])])  # fmt: skip

    ws3 = wb.create_sheet(str(_("患者清单")))
    ws3.append([f"{DISEASE_LABELS[disease]} · {FIGURE_LABELS[figure]} · {period.label}", "", "", f"{total}"])
    ws3.append([str(_("档案号")), str(_("姓名")), str(_("性别")), str(_("年龄")), str(_("身份证号")), str(_("手机号")),
                str(_("管理机构")), str(_("建档日期")), str(_("最近随访")), str(_("下次随访"))])  # fmt: skip
    for cell in ws3[2]:
        cell.font = bold
    for p in patients:
        ws3.append([p["registry_id"], p["name"], p["sex"], p["age"], p["id_number"], p["phone"], p["managing_org"],
                    p["registered_on"], p["last_follow_up_on"], p["next_follow_up_on"]])  # fmt: skip
    if total > len(patients):
        ws3.append([str(_("仅导出前 %(n)s 行，请缩小机构或期间范围。") % {"n": EXPORT_MAX_ROWS})])
    for sheet in (ws, wb2, ws3):
        sheet.column_dimensions["A"].width = 24
    audit.record(
        actor,
        "chronic.indicator_export",
        target=audit.Target("organisation", org.pk),
        detail={
            "figure": figure,
            "disease": disease,
            "period": [period.start.isoformat(), period.end.isoformat()],
            "rows": len(patients),
        },
    )
    buffer = BytesIO()
    wb.save(buffer)
    stamp = period.start.isoformat() if period.year is None else str(period.year)
    filename = f"chronic-indicators-{org.code}-{stamp}.xlsx"
    return buffer.getvalue(), filename
