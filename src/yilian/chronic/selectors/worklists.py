"""The village and township doctor's work lists (随访工作清单): chronic.md R7.3, R2.2.

Every list is a set of *active* registries (one row per registry: a patient in two registries with
two overdue plans shows twice, each row with its own disease and plan) scoped by the organisations
where the actor holds ``CHRONIC_MANAGE`` (``policy.scope_paths`` over ``Registry.managing_org.path``:
a village doctor sees the village, a township doctor the township and its villages).

The lists, on the local date ``today`` (``D`` in R7.3):

* ``due`` — 本周应随访: ``next_follow_up_on`` in ``[today, Sunday of this ISO week]``, and, first,
  registries without a plan yet (enrolled, never followed up: their first follow-up is due now).
* ``overdue`` — 逾期: ``next_follow_up_on < today`` and not lost; R7.3 ``days_overdue = D − planned``.
  Sorted high-risk first, then fewest days overdue (Simple #682).
* ``lost`` — 失访: ``days_overdue > lost_after_days`` (R7.3, ``rules.is_lost``); they leave the
  overdue and call lists. Most recently lost first.
* ``missed`` — 本季未随访 (missed visits): overdue (not lost) **and** no face-to-face (clinic/home)
  follow-up of that registry dated in the current calendar quarter so far. R2.2 requires ≥4
  face-to-face visits a year, i.e. one a quarter; a patient past their plan with none yet this
  quarter is the one who will miss the quarter's visit. Phone follow-ups do not count (R2.2).
  Sorted as the overdue list.
* ``uncontrolled`` — 未达标: the latest follow-up classified 控制不满意 (``last_classification``),
  not lost. Earliest plan first (their 2-week re-check, R5.2).
* ``call`` — 电话随访名单: the overdue list (not lost) without registries snoozed by a call result
  (``call_snoozed_until`` after today, R7.3 call results). Same order as the overdue list.

R7.3's thresholds are turned into bounds on ``next_follow_up_on`` (``planned < today`` is overdue,
``planned < today − lost_after_days`` is lost), so that every list is an index range scan per
organisation in scope; registries without a plan (``next_follow_up_on`` null) are only on the due list.
Designed for an index on active registries ``(managing_org, high_risk, next_follow_up_on, id)``
(asked of the lead): one village's overdue page is then a backward index walk that stops after 25
entries, and its count an index-only range scan. Each page costs a constant number of queries:
the organisations in scope, the count, the rows (patient, organisation and doctor joined), the
last readings of the rows, and the patients' other registries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.models import Disease, FollowUp, Referral, Registry
from yilian.common import audit, policy
from yilian.common.errors import NotFound
from yilian.common.masking import mask_name
from yilian.common.policy import Actor
from yilian.community.models import Organisation
from yilian.patients.models import Patient

PER_PAGE = 25
DUE, OVERDUE, MISSED, UNCONTROLLED, CALL, LOST = "due", "overdue", "missed", "uncontrolled", "call", "lost"
KINDS = (DUE, OVERDUE, UNCONTROLLED, MISSED, CALL, LOST)
KIND_LABELS = {
    DUE: _("本周应随访"),
    OVERDUE: _("逾期"),
    UNCONTROLLED: _("未达标"),
    MISSED: _("本季未随访"),
    CALL: _("电话随访名单"),
    LOST: _("失访"),
}
CLASSIFICATION_LABELS = dict(FollowUp.Classification.choices)
DISEASE_LABELS = dict(Disease.choices)

_ROW_FIELDS = (
    "id",
    "disease",
    "registered_on",
    "high_risk",
    "prior_cvd",
    "reminder_consent",
    "last_follow_up_on",
    "next_follow_up_on",
    "last_classification",
    "call_snoozed_until",
    "patient__id",
    "patient__name",
    "patient__sex",
    "patient__birth_date",
    "patient__phone_last4",
    "managing_org__name",
    "responsible_doctor__name",
)


def parameters() -> rules.Parameters:
    """The chronic-disease parameters in force (chronic.md §2)."""
    return rules.DEFAULTS


def today_local() -> date:
    return timezone.localdate()


def week_end(today: date) -> date:
    """Sunday of ``today``'s ISO week (Monday–Sunday)."""
    return today + timedelta(days=6 - today.weekday())


def quarter_start(today: date) -> date:
    return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)


# --- Scope ------------------------------------------------------------------------------------


def scope_org_ids(actor: Actor, org_id: int | None = None) -> list[int]:
    """Ids of the organisations whose registries the actor works (``CHRONIC_MANAGE``), optionally
    narrowed to ``org_id``'s subtree. An ``org_id`` outside the actor's scope (or missing) is
    ``NotFound``, so organisations cannot be probed."""
    paths = policy.scope_paths(actor, policy.CHRONIC_MANAGE) if actor.is_staff_member else []
    if org_id is not None:
        org = Organisation.objects.filter(pk=org_id).only("path").first()
        if org is None or not any(org.path.startswith(p) for p in paths):
            raise NotFound()
        paths = [org.path]
    if not paths:
        return []
    in_scope = Q()
    for path in paths:
        in_scope |= Q(path__startswith=path)
    return list(Organisation.objects.filter(in_scope).values_list("pk", flat=True))


def registries_in_scope(actor: Actor, *, org_id: int | None = None, doctor_id: int | None = None) -> QuerySet:
    """Active registries the actor manages (R7.3 lists start here); ``doctor_id`` keeps those of
    one responsible doctor (``Staff`` id)."""
    ids = scope_org_ids(actor, org_id)
    if not ids:
        return Registry.objects.none()
    qs = Registry.objects.filter(status=Registry.Status.ACTIVE, managing_org_id__in=ids)
    if doctor_id is not None:
        qs = qs.filter(responsible_doctor_id=doctor_id)
    return qs


def registry_for_actor(actor: Actor, registry_id: int, *, for_update: bool = False) -> Registry:
    """One registry the actor manages (any status); another organisation's looks missing."""
    qs = Registry.objects.select_related("managing_org", "patient")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    registry = qs.filter(pk=registry_id).first()
    if registry is None or not (
        actor.is_staff_member and policy.covers(actor, policy.CHRONIC_MANAGE, registry.managing_org.path)
    ):
        raise NotFound()
    return registry


# --- The lists --------------------------------------------------------------------------------


def _bounds(today: date, params: rules.Parameters) -> tuple[date, date]:
    """``(lost_before, week_end)``: a plan dated before ``lost_before`` is lost (R7.3)."""
    return today - timedelta(days=params.lost_after_days), week_end(today)


def _face_to_face_this_quarter(today: date):
    return FollowUp.objects.filter(
        registry_id=OuterRef("pk"),
        mode__in=sorted(rules.FACE_TO_FACE),
        visit_on__gte=quarter_start(today),
        visit_on__lte=today,
    )


def _not_snoozed(today: date) -> Q:
    return Q(call_snoozed_until__isnull=True) | Q(call_snoozed_until__lte=today)


def list_filter(kind: str, today: date, params: rules.Parameters) -> Q:
    """The membership condition of list ``kind`` on ``today`` (see the module docstring)."""
    lost_before, end = _bounds(today, params)
    overdue = Q(next_follow_up_on__lt=today, next_follow_up_on__gte=lost_before)
    if kind == DUE:
        return Q(next_follow_up_on__gte=today, next_follow_up_on__lte=end) | Q(next_follow_up_on__isnull=True)
    if kind == OVERDUE:
        return overdue
    if kind == MISSED:
        return overdue & ~Q(Exists(_face_to_face_this_quarter(today)))
    if kind == UNCONTROLLED:
        not_lost = Q(next_follow_up_on__isnull=True) | Q(next_follow_up_on__gte=lost_before)
        return Q(last_classification=FollowUp.Classification.UNSATISFIED) & not_lost
    if kind == CALL:
        return overdue & _not_snoozed(today)
    if kind == LOST:
        return Q(next_follow_up_on__lt=lost_before)
    raise ValueError(kind)


# The overdue-type orders are a backward walk of an index on (managing_org, high_risk,
# next_follow_up_on, id) over active registries, so that one organisation's first page stops after
# 25 index entries (see the module docstring).
ORDERING = {
    DUE: (F("next_follow_up_on").asc(nulls_first=True), "-high_risk", "id"),
    OVERDUE: ("-high_risk", "-next_follow_up_on", "-id"),
    MISSED: ("-high_risk", "-next_follow_up_on", "-id"),
    UNCONTROLLED: ("-high_risk", "next_follow_up_on", "id"),
    CALL: ("-high_risk", "-next_follow_up_on", "-id"),
    LOST: ("-next_follow_up_on", "-id"),
}


@dataclass(frozen=True)
class WorklistRow:
    """One line of a work list: masked name, age, disease tags, days overdue, last reading."""

    registry_id: int
    patient_id: int
    name_masked: str
    sex: str
    age: int
    disease: str
    disease_label: str
    other_disease_labels: tuple[str, ...]
    org_name: str
    doctor_name: str
    registered_on: date
    next_follow_up_on: date | None
    days_overdue: int | None
    last_follow_up_on: date | None
    last_classification: str
    last_classification_label: str
    last_reading: str
    high_risk: bool
    has_phone: bool
    phone_masked: str
    reminder_consent: bool
    call_snoozed_until: date | None


@dataclass(frozen=True)
class WorklistPage:
    kind: str
    rows: list[WorklistRow]
    page: int
    pages: int
    total: int
    per_page: int
    today: date

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _reading_text(reading: dict | None) -> str:
    """``152/96 mmHg · 空腹血糖 8.2`` for the last follow-up's measurements; phone follow-ups say so."""
    if reading is None:
        return ""
    parts = []
    if reading["sbp"] is not None and reading["dbp"] is not None:
        parts.append(f"{reading['sbp']}/{reading['dbp']} mmHg")
    if reading["fpg_mmol"] is not None:
        parts.append(str(_("空腹血糖 %(v)s") % {"v": _decimal(reading["fpg_mmol"])}))
    if reading["glucose_any_mmol"] is not None:
        parts.append(str(_("随机血糖 %(v)s") % {"v": _decimal(reading["glucose_any_mmol"])}))
    if not parts and reading["mode"] == FollowUp.Mode.PHONE:
        parts.append(str(_("电话随访")))
    return " · ".join(parts)


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def _last_readings(registries: list[Registry]) -> dict[int, dict]:
    """The readings of each registry's latest follow-up, in one query over (registry, visit_on)."""
    latest = Q()
    for r in registries:
        if r.last_follow_up_on is not None:
            latest |= Q(registry_id=r.pk, visit_on=r.last_follow_up_on)
    if not latest:
        return {}
    out: dict[int, dict] = {}
    rows = (
        FollowUp.objects.filter(latest)
        .order_by("registry_id", "-id")
        .values("registry_id", "mode", "sbp", "dbp", "fpg_mmol", "glucose_any_mmol")
    )
    for row in rows:
        out.setdefault(row["registry_id"], row)
    return out


def _other_diseases(registries: list[Registry]) -> dict[int, list[str]]:
    """Each patient's active registries (all diseases), for the row's disease tags."""
    patient_ids = sorted({r.patient_id for r in registries})
    out: dict[int, list[str]] = {}
    rows = (
        Registry.objects.filter(patient_id__in=patient_ids, status=Registry.Status.ACTIVE)
        .order_by("patient_id", "disease")
        .values_list("patient_id", "disease")
    )
    for patient_id, disease in rows:
        out.setdefault(patient_id, []).append(disease)
    return out


def _rows(registries: list[Registry], today: date) -> list[WorklistRow]:
    if not registries:
        return []
    readings = _last_readings(registries)
    diseases = _other_diseases(registries)
    rows = []
    for r in registries:
        p = r.patient
        overdue = rules.days_overdue(r.next_follow_up_on, today)
        rows.append(
            WorklistRow(
                registry_id=r.pk,
                patient_id=p.pk,
                name_masked=mask_name(p.name),
                sex=p.get_sex_display(),
                age=rules.age_on(p.birth_date, today),
                disease=r.disease,
                disease_label=str(DISEASE_LABELS.get(r.disease, r.disease)),
                other_disease_labels=tuple(
                    str(DISEASE_LABELS.get(d, d)) for d in diseases.get(p.pk, []) if d != r.disease
                ),
                org_name=r.managing_org.name,
                doctor_name=r.responsible_doctor.name if r.responsible_doctor else "",
                registered_on=r.registered_on,
                next_follow_up_on=r.next_follow_up_on,
                days_overdue=overdue if overdue and overdue > 0 else None,
                last_follow_up_on=r.last_follow_up_on,
                last_classification=r.last_classification,
                last_classification_label=str(CLASSIFICATION_LABELS.get(r.last_classification, "")),
                last_reading=_reading_text(readings.get(r.pk)),
                high_risk=r.high_risk,
                has_phone=bool(p.phone_last4),
                phone_masked=("*******" + p.phone_last4) if p.phone_last4 else "",
                reminder_consent=r.reminder_consent,
                call_snoozed_until=r.call_snoozed_until,
            )
        )
    return rows


def worklist(
    actor: Actor,
    kind: str,
    *,
    page: int = 1,
    org_id: int | None = None,
    doctor_id: int | None = None,
    today: date | None = None,
    per_page: int = PER_PAGE,
) -> WorklistPage:
    """One page of work list ``kind`` (R7.3); ``page`` past the end gives the last page."""
    if kind not in KINDS:
        raise NotFound()
    today = today or today_local()
    params = parameters()
    qs = registries_in_scope(actor, org_id=org_id, doctor_id=doctor_id).filter(
        list_filter(kind, today, params)
    )
    total = qs.count()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    registries = []
    if total:
        start = (page - 1) * per_page
        # The page's ids are chosen on the registry table alone (sort + limit over the index range),
        # and only those 25 rows are joined to patient, organisation and doctor: one statement.
        page_ids = qs.order_by(*ORDERING[kind]).values("pk")[start : start + per_page]
        registries = list(
            Registry.objects.filter(pk__in=page_ids)
            .select_related("patient", "managing_org", "responsible_doctor")
            .only(*_ROW_FIELDS)
            .order_by(*ORDERING[kind])
        )
    return WorklistPage(
        kind=kind,
        rows=_rows(registries, today),
        page=page,
        pages=pages,
        total=total,
        per_page=per_page,
        today=today,
    )


def worklist_counts(
    actor: Actor, *, org_id: int | None = None, doctor_id: int | None = None, today: date | None = None
) -> dict[str, int]:
    """How many rows each list has (the tab badges), in one aggregate query."""
    today = today or today_local()
    params = parameters()
    qs = registries_in_scope(actor, org_id=org_id, doctor_id=doctor_id)
    if not qs.query.is_empty():
        _lost_before, end = _bounds(today, params)
        qs = qs.filter(
            Q(next_follow_up_on__lte=end)
            | Q(next_follow_up_on__isnull=True)
            | Q(last_classification=FollowUp.Classification.UNSATISFIED)
        )
    counts = qs.aggregate(**{k: Count("pk", filter=list_filter(k, today, params)) for k in KINDS})
    return {k: counts.get(k) or 0 for k in KINDS}


# --- The follow-up form's gate and result -----------------------------------------------------


@dataclass(frozen=True)
class FollowUpSubject:
    """The patient on the follow-up form and the registries the actor may record for."""

    patient: Patient
    registries: list[Registry]
    age: int

    @property
    def diseases(self) -> list[str]:
        return [r.disease for r in self.registries]


def access_follow_up_subject(
    actor: Actor, patient_id: int, *, purpose: str = "chronic_follow_up"
) -> FollowUpSubject:
    """The gate to the follow-up form (随访录入): the patient's active registries that the actor
    manages. None (or no such patient) is ``NotFound``; a refused attempt on a real patient is
    audited as refused, an opened form as ``patient.view`` with ``purpose``."""
    registries = list(
        Registry.objects.filter(patient_id=patient_id, status=Registry.Status.ACTIVE)
        .select_related("managing_org", "patient")
        .order_by("disease")
    )
    mine = [
        r
        for r in registries
        if actor.is_staff_member and policy.covers(actor, policy.CHRONIC_MANAGE, r.managing_org.path)
    ]
    target = audit.Target("patient", patient_id, patient_id)
    if not mine:
        if registries and actor.is_authenticated:
            audit.refused(actor, "patient.view", target=target, code=NotFound.code)
        raise NotFound()
    audit.record(actor, "patient.view", target=target, reason=purpose)
    patient = mine[0].patient
    return FollowUpSubject(
        patient=patient, registries=mine, age=rules.age_on(patient.birth_date, today_local())
    )


@dataclass(frozen=True)
class FollowUpOutcome:
    """What one recorded visit gave, per disease, with the referrals it opened."""

    follow_ups: list[FollowUp]
    referrals: list[Referral]


def follow_up_outcome(actor: Actor, patient_id: int, visit_key) -> FollowUpOutcome:
    """The follow-ups of one visit (``visit_key``) that the actor manages, and their referrals."""
    follow_ups = [
        fu
        for fu in FollowUp.objects.filter(patient_id=patient_id, visit_key=visit_key)
        .select_related("registry__managing_org")
        .order_by("disease")
        if actor.is_staff_member
        and policy.covers(actor, policy.CHRONIC_MANAGE, fu.registry.managing_org.path)
    ]
    if not follow_ups:
        raise NotFound()
    audit.record(
        actor,
        "patient.view",
        target=audit.Target("patient", patient_id, patient_id),
        reason="chronic_follow_up_result",
    )
    referrals = list(
        Referral.objects.filter(follow_up_id__in=[fu.pk for fu in follow_ups])
        .select_related("to_org")
        .order_by("id")
    )
    return FollowUpOutcome(follow_ups=follow_ups, referrals=referrals)
