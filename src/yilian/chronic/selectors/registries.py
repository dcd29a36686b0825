"""Reads of disease registries, follow-ups and referrals, only through scoped gates.

Scope (Issue #4 contract): a registry is visible when its managing organisation lies under one of
the organisation paths where the actor holds ``CHRONIC_MANAGE`` (a village doctor sees the village,
a township doctor the township and its villages, county roles the county). Gates answer "forbidden"
and "missing" alike (``NotFound``); every view of a patient's chronic data writes an audit row
(PRODUCT.md: every view of a patient record is audited), a refused one a refusal row (access.md L-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Q, QuerySet

from yilian.chronic.models import FollowUp, Referral, Registry, RegistryStatusHistory
from yilian.common import audit, policy
from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.patients.models import Patient

FOLLOW_UP_HISTORY_LIMIT = 200


def _paths(actor: Actor) -> list[str]:
    if not actor.is_staff_member:
        return []
    return policy.scope_paths(actor, policy.CHRONIC_MANAGE)


def _prefix_q(column: str, paths: list[str]) -> Q:
    q = Q(pk__in=[])
    for path in paths:
        q |= Q(**{f"{column}__startswith": path})
    return q


def registries_visible_to(actor: Actor) -> QuerySet[Registry]:
    """Registries whose managing organisation is in the actor's CHRONIC_MANAGE scope."""
    paths = _paths(actor)
    if not paths:
        return Registry.objects.none()
    return Registry.objects.filter(_prefix_q("managing_org__path", paths))


def referrals_visible_to(actor: Actor) -> QuerySet[Referral]:
    """Referrals sent from, or to, an organisation in scope, or of a registry managed in scope."""
    paths = _paths(actor)
    if not paths:
        return Referral.objects.none()
    return Referral.objects.filter(
        _prefix_q("from_org__path", paths)
        | _prefix_q("to_org__path", paths)
        | _prefix_q("registry__managing_org__path", paths)
    )


def access_registry(actor: Actor, registry_id: int, *, purpose: str = "view") -> Registry:
    """One registry (audited ``chronic.registry.view``); missing and out of scope both ``NotFound``."""
    registry = (
        Registry.objects.select_related("patient", "managing_org", "responsible_doctor")
        .filter(pk=registry_id)
        .first()
    )
    if registry is None:
        raise NotFound()
    target = audit.Target("registry", registry.pk, registry.patient_id)
    if not any(registry.managing_org.path.startswith(p) for p in _paths(actor)):
        if actor.is_authenticated:
            audit.refused(actor, "chronic.registry.view", target=target, code=NotFound.code)
        raise NotFound()
    audit.record(actor, "chronic.registry.view", target=target, reason=purpose[:500])
    return registry


def patient_in_chronic_scope(actor: Actor, patient: Patient) -> bool:
    """The actor may see this patient's chronic profile: the patient's home organisation is in the
    CHRONIC_MANAGE scope, or one of the patient's registries is managed in it."""
    paths = _paths(actor)
    if any(patient.home_org.path.startswith(p) for p in paths):
        return True
    return registries_visible_to(actor).filter(patient=patient).exists()


@dataclass
class ChronicProfile:
    """A patient's chronic-disease profile (慢病档案): registries, follow-ups newest first, open referrals."""

    patient: Patient
    registries: list[Registry]
    follow_ups: list[FollowUp]
    open_referrals: list[Referral]
    history: list[RegistryStatusHistory] = field(default_factory=list)

    @property
    def active_diseases(self) -> list[str]:
        return [r.disease for r in self.registries if r.status == Registry.Status.ACTIVE]


def access_patient_profile(
    actor: Actor, patient_id: int, *, purpose: str = "chronic_profile"
) -> ChronicProfile:
    """The gate to a patient's chronic profile (audited ``patient.view`` with ``purpose``).

    Shows only the registries visible to the actor (a township doctor does not see the county
    hospital's cancer registry of the same patient unless it is managed in scope)."""
    patient = Patient.objects.select_related("home_org").filter(pk=patient_id).first()
    if patient is None:
        raise NotFound()
    target = audit.Target("patient", patient.pk, patient.pk)
    if not patient_in_chronic_scope(actor, patient):
        if actor.is_authenticated:
            audit.refused(actor, "patient.view", target=target, code=NotFound.code)
        raise NotFound()
    audit.record(actor, "patient.view", target=target, reason=purpose[:500])
    registries = list(
        registries_visible_to(actor)
        .filter(patient=patient)
        .select_related("patient", "managing_org", "responsible_doctor")
        .order_by("status", "disease", "-registered_on")
    )
    ids = [r.pk for r in registries]
    follow_ups = list(
        FollowUp.objects.filter(registry_id__in=ids)
        .select_related("organisation")
        .order_by("-visit_on", "-pk")[:FOLLOW_UP_HISTORY_LIMIT]
    )
    open_referrals = list(
        Referral.objects.filter(registry_id__in=ids, status=Referral.Status.OPEN)
        .select_related("patient", "to_org", "from_org")
        .order_by("tracking_due_on", "pk")
    )
    history = list(RegistryStatusHistory.objects.filter(registry_id__in=ids).order_by("-at", "-pk")[:50])
    return ChronicProfile(patient, registries, follow_ups, open_referrals, history)


def follow_ups_of(
    actor: Actor, registry_id: int, *, limit: int = 100, offset: int = 0
) -> tuple[Registry, list[FollowUp]]:
    """A registry's follow-ups, newest first (audited through ``access_registry``)."""
    registry = access_registry(actor, registry_id, purpose="follow_ups")
    rows = list(
        FollowUp.objects.filter(registry=registry)
        .select_related("organisation")
        .order_by("-visit_on", "-pk")[offset : offset + limit]
    )
    return registry, rows


def referral_ids_by_follow_up(follow_up_ids: list[int]) -> dict[int, int]:
    """The referral each follow-up opened (R3.3/R5.3–R5.5), by follow-up id."""
    return dict(
        Referral.objects.filter(follow_up_id__in=follow_up_ids)
        .values_list("follow_up_id", "pk")
        .order_by("pk")
    )


def trend_points(follow_ups: list[FollowUp]) -> dict[str, list]:
    """The BP and glucose series of a profile's chart, oldest first, one point per visit day."""
    bp: dict[date, tuple[int, int]] = {}
    glucose: dict[date, float] = {}
    for fu in sorted(follow_ups, key=lambda x: (x.visit_on, x.pk)):
        if fu.sbp is not None and fu.dbp is not None:
            if fu.sbp2 is not None and fu.dbp2 is not None:
                bp[fu.visit_on] = ((fu.sbp + fu.sbp2 + 1) // 2, (fu.dbp + fu.dbp2 + 1) // 2)
            else:
                bp[fu.visit_on] = (fu.sbp, fu.dbp)
        if fu.fpg_mmol is not None:
            glucose[fu.visit_on] = float(fu.fpg_mmol)
    return {
        "bp": [[d.isoformat(), s, di] for d, (s, di) in sorted(bp.items())],
        "fpg": [[d.isoformat(), v] for d, v in sorted(glucose.items())],
    }
