"""Reads for screening (R1.1–R1.4) and family-doctor contracts (家庭医生签约).

Patient data only through gates that answer "forbidden" and "missing" alike (``NotFound``); the
scope is the actor's ``CHRONIC_MANAGE`` organisation subtrees over the patient's ``home_org``
(a village doctor sees the village, a township doctor the township and its villages).

The work lists (``screening_due``, ``high_risk_due``, ``cases_due``) are single SQL statements with
``NOT EXISTS`` sub-queries on indexed columns, paginated; nothing loops over patients in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.models import (
    Disease,
    FamilyDoctorContract,
    FamilyDoctorTeam,
    FollowUp,
    Registry,
    ScreeningCase,
    ScreeningReading,
)
from yilian.common import audit, policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.community.models import Organisation, Staff
from yilian.patients import selectors as patient_selectors
from yilian.patients.models import Patient

PER_PAGE = 30
PER_PAGE_MAX = 100
OPEN_CASE_STATUSES = (ScreeningCase.Status.SUSPECTED, ScreeningCase.Status.PRELIMINARY)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _paginate(qs: QuerySet, page: int, per_page: int) -> tuple[QuerySet, int, int, int]:
    per_page = max(1, min(int(per_page), PER_PAGE_MAX))
    page = max(1, int(page))
    total = qs.count()
    start = (page - 1) * per_page
    return qs[start : start + per_page], total, page, per_page


def _scope(actor: Actor, column: str) -> Q | None:
    """``column`` (an organisation path) under one of the actor's ``CHRONIC_MANAGE`` subtrees."""
    if not actor.is_staff_member:
        return None
    paths = policy.scope_paths(actor, policy.CHRONIC_MANAGE)
    if not paths:
        return None
    q = Q()
    for path in paths:
        q |= Q(**{f"{column}__startswith": path})
    return q


def _covers(actor: Actor, org_path: str) -> bool:
    return actor.is_staff_member and policy.covers(actor, policy.CHRONIC_MANAGE, org_path)


# --- gates -----------------------------------------------------------------------------------------


def access_screening_patient(actor: Actor, patient_id: int, *, purpose: str = "screening") -> Patient:
    """The gate to one resident for chronic-disease work: ``CHRONIC_MANAGE`` over the patient's home
    organisation. Missing, merged and forbidden all raise ``NotFound``; the view is audited
    (``patient.view`` with ``purpose``), a refusal too."""
    if not isinstance(patient_id, int) or isinstance(patient_id, bool):
        raise NotFound()
    patient = Patient.objects.select_related("home_org").filter(pk=patient_id).first()
    if patient is None:
        raise NotFound()
    target = audit.Target("patient", patient.pk, patient.pk)
    if not _covers(actor, patient.home_org.path) or patient.status != Patient.Status.ACTIVE:
        if actor.is_authenticated:
            audit.refused(actor, "patient.view", target=target, code=NotFound.code)
        raise NotFound()
    audit.record(actor, "patient.view", target=target, reason=purpose[:500])
    return patient


def organisation_in_scope(actor: Actor, organisation_id: int) -> Organisation:
    """An active organisation within the actor's ``CHRONIC_MANAGE`` scope (where a reading is taken,
    a team belongs)."""
    org = Organisation.objects.filter(pk=organisation_id, status=Organisation.Status.ACTIVE).first()
    if org is None or not _covers(actor, org.path):
        raise NotFound(field="organisation_id")
    return org


def organisations_in_scope(actor: Actor) -> list[Organisation]:
    q = _scope(actor, "path")
    if q is None:
        return []
    return list(Organisation.objects.filter(q, status=Organisation.Status.ACTIVE).order_by("path"))


def default_organisation(actor: Actor) -> Organisation | None:
    """The organisation the actor works at (first ``CHRONIC_MANAGE`` assignment)."""
    for a in actor.assignments:
        if policy.CHRONIC_MANAGE in policy.ROLE_PERMISSIONS.get(a.role, ()):
            return Organisation.objects.filter(pk=a.org_id).first()
    return None


def access_case(actor: Actor, case_id: int, *, for_update: bool = False) -> ScreeningCase:
    """A screening case whose resident is in the actor's scope (else ``NotFound``)."""
    qs = ScreeningCase.objects.select_related("patient__home_org", "organisation")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    case = qs.filter(pk=case_id).first()
    if case is None or not _covers(actor, case.patient.home_org.path):
        raise NotFound()
    return case


# --- a resident's screening history ---------------------------------------------------------------


def readings_of(patient: Patient, limit: int = 20) -> list[ScreeningReading]:
    """The resident's screening readings, newest first (call after the patient gate)."""
    return list(
        ScreeningReading.objects.filter(patient=patient)
        .select_related("organisation")
        .order_by("-taken_on", "-id")[:limit]
    )


def cases_of(patient: Patient, limit: int = 10) -> list[ScreeningCase]:
    """The resident's screening cases, open ones first (call after the patient gate)."""
    cases = list(ScreeningCase.objects.filter(patient=patient).order_by("-opened_on", "-id")[:limit])
    return sorted(cases, key=lambda c: c.status not in OPEN_CASE_STATUSES)


def active_registries_of(patient: Patient) -> list[str]:
    return list(
        Registry.objects.filter(patient=patient, status=Registry.Status.ACTIVE).values_list(
            "disease", flat=True
        )
    )


# --- work lists ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueRow:
    patient: patient_selectors.PatientRow
    last_bp_on: date | None = None
    due_on: date | None = None
    days_overdue: int | None = None
    extra: dict = field(default_factory=dict)


def _age_cutoff(on: date, age: int) -> date:
    """The latest birth date of a resident aged ≥ ``age`` on ``on`` (completed years, §2)."""
    return rules.add_months(on, -12 * age)


def screening_due(actor: Actor, on: date, *, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """R1.1 (``bp_screening_due``): residents of the actor's scope aged ≥35 on ``on``, not in the
    HTN registry, with no BP reading (screening or follow-up) in ``on``'s year. Residents whose
    record was closed for death are left out. Ordered by organisation, then name."""
    scope = _scope(actor, "home_org__path")
    if scope is None:
        return Page([], 0, 1, per_page)
    year_start = date(on.year, 1, 1)
    screened = ScreeningReading.objects.filter(
        patient_id=OuterRef("pk"), sbp__isnull=False, taken_on__gte=year_start, taken_on__lte=on
    )
    followed = FollowUp.objects.filter(
        patient_id=OuterRef("pk"), sbp__isnull=False, visit_on__gte=year_start, visit_on__lte=on
    )
    in_htn = Registry.objects.filter(
        patient_id=OuterRef("pk"), disease=Disease.HTN, status=Registry.Status.ACTIVE
    )
    died = Registry.objects.filter(patient_id=OuterRef("pk"), close_reason=Registry.CloseReason.DEATH)
    qs = (
        Patient.objects.filter(scope, status=Patient.Status.ACTIVE, birth_date__lte=_age_cutoff(on, 35))
        .filter(~Exists(screened), ~Exists(followed), ~Exists(in_htn), ~Exists(died))
        .order_by("home_org__path", "name", "id")
        .values(*patient_selectors.LIST_FIELDS)
    )
    rows, total, page, per_page = _paginate(qs, page, per_page)
    items = [DueRow(patient=patient_selectors.to_row(v)) for v in rows]
    audit.record(actor, "chronic.screening.due_list", detail={"list": "screening_due", "count": len(items)})
    return Page(items, total, page, per_page)


def _due_bound(horizon: date, months: int) -> date:
    """The latest ``d`` with ``add_months(d, months) <= horizon`` (add_months is monotonic and clamps
    to month ends, so when ``horizon`` is a month end every later day of the bound's month maps
    onto it too)."""
    bound = rules.add_months(horizon, -months)
    if (horizon + timedelta(days=1)).day == 1:
        bound = rules.add_months(bound.replace(day=1), 1) - timedelta(days=1)
    return bound


HIGH_RISK_BP_MONTHS = 6  # R1.3: high-risk residents have their BP measured at least every 6 months


def high_risk_due(
    actor: Actor, on: date, *, within_days: int = 14, page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """R1.3: high-risk (易患) residents whose next BP (``add_months(last BP, 6)``) falls due by
    ``on + within_days`` or is overdue. High-risk = the latest screening BP reading found R1.3 risk
    factors. Residents in the HTN registry or with an open HTN screening case are followed elsewhere."""
    scope = _scope(actor, "patient__home_org__path")
    if scope is None:
        return Page([], 0, 1, per_page)
    bound = _due_bound(on + timedelta(days=max(0, int(within_days))), HIGH_RISK_BP_MONTHS)
    later = ScreeningReading.objects.filter(patient_id=OuterRef("patient_id"), sbp__isnull=False).filter(
        Q(taken_on__gt=OuterRef("taken_on")) | Q(taken_on=OuterRef("taken_on"), pk__gt=OuterRef("pk"))
    )
    in_htn = Registry.objects.filter(
        patient_id=OuterRef("patient_id"), disease=Disease.HTN, status=Registry.Status.ACTIVE
    )
    open_case = ScreeningCase.objects.filter(
        patient_id=OuterRef("patient_id"), disease=Disease.HTN, status__in=OPEN_CASE_STATUSES
    )
    qs = (
        ScreeningReading.objects.filter(scope, sbp__isnull=False, taken_on__lte=bound)
        .filter(patient__status=Patient.Status.ACTIVE)
        .exclude(risk_factors=[])
        .filter(~Exists(later), ~Exists(in_htn), ~Exists(open_case))
        .order_by("taken_on", "id")
        .values("taken_on", "risk_factors", *(f"patient__{f}" for f in patient_selectors.LIST_FIELDS))
    )
    rows, total, page, per_page = _paginate(qs, page, per_page)
    items = []
    for v in rows:
        due_on = rules.add_months(v["taken_on"], HIGH_RISK_BP_MONTHS)
        items.append(
            DueRow(
                patient=patient_selectors.to_row(
                    {f: v[f"patient__{f}"] for f in patient_selectors.LIST_FIELDS}
                ),
                last_bp_on=v["taken_on"],
                due_on=due_on,
                days_overdue=(on - due_on).days,
                extra={"risk_factors": v["risk_factors"]},
            )
        )
    audit.record(actor, "chronic.screening.due_list", detail={"list": "high_risk_due", "count": len(items)})
    return Page(items, total, page, per_page)


@dataclass(frozen=True)
class CaseRow:
    id: int
    disease: str
    disease_label: str
    status: str
    status_label: str
    opened_on: date
    due_on: date
    days_overdue: int
    organisation_name: str
    patient: patient_selectors.PatientRow


def cases_due(
    actor: Actor, on: date, *, within_days: int = 7, page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """Open screening cases (suspected: re-check; preliminary: referral tracking, R1.2) of residents
    in the actor's scope due by ``on + within_days`` or overdue, most overdue first."""
    scope = _scope(actor, "patient__home_org__path")
    if scope is None:
        return Page([], 0, 1, per_page)
    qs = (
        ScreeningCase.objects.filter(
            scope, status__in=OPEN_CASE_STATUSES, due_on__lte=on + timedelta(days=max(0, int(within_days)))
        )
        .order_by("due_on", "id")
        .values(
            "id",
            "disease",
            "status",
            "opened_on",
            "due_on",
            "organisation__name",
            *(f"patient__{f}" for f in patient_selectors.LIST_FIELDS),
        )
    )
    rows, total, page, per_page = _paginate(qs, page, per_page)
    items = [
        CaseRow(
            id=v["id"],
            disease=v["disease"],
            disease_label=str(Disease(v["disease"]).label),
            status=v["status"],
            status_label=str(ScreeningCase.Status(v["status"]).label),
            opened_on=v["opened_on"],
            due_on=v["due_on"],
            days_overdue=(on - v["due_on"]).days,
            organisation_name=v["organisation__name"],
            patient=patient_selectors.to_row({f: v[f"patient__{f}"] for f in patient_selectors.LIST_FIELDS}),
        )
        for v in rows
    ]
    audit.record(actor, "chronic.screening.due_list", detail={"list": "cases_due", "count": len(items)})
    return Page(items, total, page, per_page)


# --- family-doctor teams and contracts (家庭医生签约) -----------------------------------------------


def teams_visible_to(actor: Actor) -> QuerySet[FamilyDoctorTeam]:
    """Teams of organisations in the actor's ``CHRONIC_MANAGE`` scope."""
    q = _scope(actor, "organisation__path")
    if q is None:
        return FamilyDoctorTeam.objects.none()
    return (
        FamilyDoctorTeam.objects.filter(q)
        .select_related("organisation", "leader")
        .order_by("organisation__path", "name")
    )


def access_team(actor: Actor, team_id: int, *, for_update: bool = False) -> FamilyDoctorTeam:
    qs = teams_visible_to(actor)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    team = qs.filter(pk=team_id).first()
    if team is None:
        raise NotFound(field="team_id")
    return team


def staff_eligible_for_team(organisation: Organisation) -> QuerySet[Staff]:
    """Active staff of the team's organisation or of its subtree (a township team may take the
    village doctors of its villages)."""
    return Staff.objects.filter(
        organisation__path__startswith=organisation.path, is_active=True
    ).select_related("organisation")


def contracts_visible_to(actor: Actor) -> QuerySet[FamilyDoctorContract]:
    """Contracts of residents in the actor's scope."""
    q = _scope(actor, "patient__home_org__path")
    if q is None:
        return FamilyDoctorContract.objects.none()
    return FamilyDoctorContract.objects.filter(q).select_related("team", "team__organisation", "patient")


def access_contract(actor: Actor, contract_id: int, *, for_update: bool = False) -> FamilyDoctorContract:
    qs = contracts_visible_to(actor)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    contract = qs.filter(pk=contract_id).first()
    if contract is None:
        raise NotFound()
    return contract


def contracts_of(patient: Patient) -> list[FamilyDoctorContract]:
    """A resident's contracts, newest first (call after the patient gate)."""
    return list(
        FamilyDoctorContract.objects.filter(patient=patient)
        .select_related("team", "team__organisation")
        .order_by("-starts_on", "-id")
    )


@dataclass(frozen=True)
class ContractRow:
    id: int
    status: str
    status_label: str
    signed_on: date
    starts_on: date
    ends_on: date
    package: str
    team_name: str
    patient: patient_selectors.PatientRow


def active_contracts(
    actor: Actor, *, team_id: int | None = None, page: int = 1, per_page: int = PER_PAGE
) -> Page:
    """Active contracts in the actor's scope, soonest ending first (renewal reminders)."""
    qs = contracts_visible_to(actor).filter(status=FamilyDoctorContract.Status.ACTIVE)
    if team_id is not None:
        qs = qs.filter(team_id=team_id)
    qs = qs.order_by("ends_on", "id").values(
        "id",
        "status",
        "signed_on",
        "starts_on",
        "ends_on",
        "package",
        "team__name",
        *(f"patient__{f}" for f in patient_selectors.LIST_FIELDS),
    )
    rows, total, page, per_page = _paginate(qs, page, per_page)
    items = [
        ContractRow(
            id=v["id"],
            status=v["status"],
            status_label=str(FamilyDoctorContract.Status(v["status"]).label),
            signed_on=v["signed_on"],
            starts_on=v["starts_on"],
            ends_on=v["ends_on"],
            package=v["package"],
            team_name=v["team__name"],
            patient=patient_selectors.to_row({f: v[f"patient__{f}"] for f in patient_selectors.LIST_FIELDS}),
        )
        for v in rows
    ]
    audit.record(actor, "chronic.contract.list", detail={"count": len(items)})
    return Page(items, total, page, per_page)


# --- the result in plain Chinese ----------------------------------------------------------------


@dataclass(frozen=True)
class ScreeningSummary:
    """A screening result told the way a village doctor says it to the resident."""

    message: str
    tone: str  # "ok" | "warn" | "err" (the colour of the result card)
    high_risk: bool
    risk_labels: tuple[str, ...]
    next_bp_due: date | None


def _within(days: int) -> str:
    if days % 7 == 0:
        return str(_("%(n)d周") % {"n": days // 7})
    return str(_("%(n)d天") % {"n": days})


def describe_screening(
    reading: ScreeningReading,
    cases: Iterable[ScreeningCase] = (),
    referral=None,
    params: rules.Parameters = rules.DEFAULTS,
) -> ScreeningSummary:
    """The plain-Chinese message for a stored reading and the cases it opened or closed (R1.2–R1.4),
    e.g. "血压偏高（疑似高血压），请在2周内复查（6月15日前）"."""
    cases = list(cases)
    by_disease = {c.disease: c for c in cases}
    enrolled = set(
        Registry.objects.filter(patient_id=reading.patient_id, status=Registry.Status.ACTIVE).values_list(
            "disease", flat=True
        )
    )
    factors = tuple(reading.risk_factors or ())
    labels = tuple(str(_(rules.RISK_FACTOR_LABELS.get(code, code))) for code in factors)
    findings = _findings_of(reading)
    parts: list[str] = []
    tones = {"ok"}
    htn = by_disease.get(Disease.HTN)
    t2dm = by_disease.get(Disease.T2DM)
    htn_high = bool(findings & {rules.SUSPECTED_HTN, rules.PRELIMINARY_HTN})
    if reading.sbp is not None:
        if htn_high and Disease.HTN in enrolled:
            tones.add("warn")
            parts.append(str(_("血压偏高，该居民已在高血压管理中，请按随访要求处理")))
        elif rules.PRELIMINARY_HTN in findings or (
            htn is not None and htn.status == ScreeningCase.Status.PRELIMINARY
        ):
            tones.add("err")
            to = referral.to_org.name if referral is not None else ""
            msg = _("已有3天血压偏高（初步诊断高血压），建议到上级医院确诊")
            parts.append(str(msg) + (str(_("，已转诊至%(org)s") % {"org": to}) if to else ""))
            if htn is not None:
                parts.append(str(_("请在%(due)s前跟踪转诊结果") % {"due": _date(htn.due_on)}))
        elif htn_high:
            tones.add("warn")
            due = htn.due_on if htn is not None else reading.taken_on + timedelta(days=params.recheck_days)
            parts.append(
                str(
                    _("血压偏高（疑似高血压），请在%(within)s内复查（%(due)s前）")
                    % {"within": _within(params.recheck_days), "due": _date(due)}
                )
            )
        elif (
            htn is not None
            and htn.status == ScreeningCase.Status.EXCLUDED
            and htn.closed_on == reading.taken_on
        ):
            parts.append(str(_("复查血压正常，已排除疑似高血压")))
        elif "high_normal_bp" in factors:
            tones.add("warn")
            parts.append(str(_("血压正常高值，请少盐、多运动，半年内再测一次血压")))
        else:
            parts.append(str(_("血压正常")))
    if reading.fpg_mmol is not None or reading.glucose_any_mmol is not None:
        if rules.SUSPECTED_T2DM in findings and Disease.T2DM in enrolled:
            tones.add("warn")
            parts.append(str(_("血糖偏高，该居民已在糖尿病管理中，请按随访要求处理")))
        elif rules.SUSPECTED_T2DM in findings:
            tones.add("warn")
            due = t2dm.due_on if t2dm is not None else reading.taken_on + timedelta(days=params.recheck_days)
            parts.append(
                str(
                    _("血糖偏高（疑似糖尿病），请在%(within)s内空腹复查血糖（%(due)s前）")
                    % {"within": _within(params.recheck_days), "due": _date(due)}
                )
            )
        elif (
            t2dm is not None
            and t2dm.status == ScreeningCase.Status.EXCLUDED
            and t2dm.closed_on == reading.taken_on
        ):
            parts.append(str(_("复查血糖正常，已排除疑似糖尿病")))
        else:
            parts.append(str(_("血糖正常")))
    tone = "err" if "err" in tones else "warn" if "warn" in tones else "ok"
    next_bp_due = None
    if factors and not htn_high and Disease.HTN not in enrolled:
        next_bp_due = rules.add_months(reading.taken_on, params.high_risk_bp_interval_months)
        if "high_normal_bp" not in factors:
            parts.append(str(_("属于高血压高危人群，请在%(due)s前再测血压") % {"due": _date(next_bp_due)}))
    return ScreeningSummary(
        message="；".join(parts) + "。" if parts else "",
        tone=tone,
        high_risk=bool(factors),
        risk_labels=labels,
        next_bp_due=next_bp_due,
    )


def _findings_of(reading: ScreeningReading) -> frozenset[str]:
    """Findings of a stored reading. The stored ``result`` keeps only the most severe one, so the
    glucose part is asked of the rules again (pure, R1.4)."""
    glucose = rules.evaluate_screening(
        rules.ScreeningInput(
            on=reading.taken_on,
            age=0,
            sex="M",
            fpg_mmol=reading.fpg_mmol,
            glucose_any_mmol=reading.glucose_any_mmol,
        )
    )
    return frozenset({reading.result, *glucose.findings})


def _date(d: date) -> str:
    return str(_("%(m)d月%(d)d日") % {"m": d.month, "d": d.day})
