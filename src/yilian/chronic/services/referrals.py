"""Chronic-disease referrals (慢病转诊): opening, tracking (转诊随访) and cancelling.

Rules (../shared/docs/rules/chronic.md): R1.2 (preliminary HTN → referral for confirmation with a
+14-day tracking task), R3.3 (urgent referral, tracked within two weeks), R5.3–R5.5 (routine
referral after two consecutive unsatisfied visits, uncontrollable ADR, new/worsened complication),
R7.2 (转诊随访: a tracking contact of any mode within ``referral_tracking_days``).

A referral goes one step up the community's path: village clinic → township centre → county
hospital; a referral opened at the county hospital (the root) stays there. Status changes follow
``rules.REFERRAL_TRANSITIONS`` (open → tracked | cancelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.errors import DateInFuture, InvalidTransition
from yilian.chronic.models import Disease, Referral
from yilian.common import audit, policy
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.community.models import Organisation
from yilian.patients.models import Patient

REASONS = frozenset(
    {
        "urgent",
        "two_consecutive_unsatisfied",
        "adr_uncontrollable",
        "new_complication",
        "complication_worsened",
        "preliminary_htn",
        "preliminary_t2dm",
        "suspected_secondary",
        "screening",
    }
)


def parameters() -> rules.Parameters:
    """The chronic-disease settings (chronic.md §2); the defaults until a settings hook exists."""
    return rules.DEFAULTS


def referral_target(from_org: Organisation) -> Organisation:
    """One step up the community's path (village → township → county); the root refers to itself."""
    return from_org.parent if from_org.parent_id else from_org


def _scope_q(actor: Actor) -> Q:
    q = Q(pk__in=[])
    for path in policy.scope_paths(actor, policy.CHRONIC_MANAGE):
        q |= Q(from_org__path__startswith=path) | Q(registry__managing_org__path__startswith=path)
    return q


def _locked_referral(actor: Actor, referral_id: int) -> Referral:
    """The referral, locked, if the actor manages the referring organisation or the registry."""
    referral = (
        Referral.objects.select_for_update(of=("self",)).filter(_scope_q(actor), pk=referral_id).first()
    )
    if referral is None:
        raise NotFound(field="referral_id")
    return referral


def _transition(referral: Referral, new: str) -> None:
    if new not in rules.REFERRAL_TRANSITIONS.get(referral.status, frozenset()):
        raise InvalidTransition(field="status", current=referral.status, requested=new)


@transaction.atomic
def open_referral(
    *,
    actor: Actor,
    patient_id: int,
    disease: str,
    kind: str,
    reasons: Sequence[str],
    rules_fired: Sequence[str],
    from_org_id: int,
    opened_on: date,
    registry_id: int | None = None,
    follow_up_id: int | None = None,
    screening_case_id: int | None = None,
) -> Referral:
    """Open a referral up the path with ``tracking_due_on = opened_on + referral_tracking_days``
    (R3.3, R5.3–R5.5, R1.2, R7.2). The referring organisation must be within the actor's scope."""
    if kind not in Referral.Kind.values:
        raise InvalidInput(_("转诊类型无效。"), field="kind")
    if disease not in Disease.values:
        raise InvalidInput(_("病种无效。"), field="disease")
    if not reasons:
        raise InvalidInput(_("请填写转诊原因。"), field="reasons")
    from_org = Organisation.objects.select_related("parent").filter(pk=from_org_id).first()
    if from_org is None or not policy.covers(actor, policy.CHRONIC_MANAGE, from_org.path):
        raise NotFound(field="from_org_id")
    if not Patient.objects.filter(pk=patient_id).exists():
        raise NotFound(field="patient_id")
    referral = Referral.objects.create(
        patient_id=patient_id,
        disease=disease,
        registry_id=registry_id,
        follow_up_id=follow_up_id,
        screening_case_id=screening_case_id,
        kind=kind,
        reasons=list(reasons),
        rules_fired=list(rules_fired),
        from_org=from_org,
        to_org=referral_target(from_org),
        opened_on=opened_on,
        tracking_due_on=opened_on + timedelta(days=parameters().referral_tracking_days),
        created_by_id=actor.user_id,
    )
    audit.record(
        actor,
        "chronic.referral.open",
        target=audit.Target("referral", referral.pk, patient_id),
        detail={"kind": kind, "reasons": list(reasons), "to_org_id": referral.to_org_id, "disease": disease},
    )
    return referral


def mark_tracked_by_follow_up(
    *, actor: Actor, registry_id: int, visit_on: date, follow_up_id: int
) -> list[int]:
    """R7.2 转诊随访: a follow-up of any mode on or after a referral's opening day tracks every open
    referral of the registry opened on or before it. Runs inside the caller's transaction."""
    ids = list(
        Referral.objects.select_for_update()
        .filter(registry_id=registry_id, status=Referral.Status.OPEN, opened_on__lte=visit_on)
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    Referral.objects.filter(pk__in=ids).update(
        status=Referral.Status.TRACKED, tracked_on=visit_on, outcome=f"follow_up:{follow_up_id}"
    )
    for referral_id, patient_id in Referral.objects.filter(pk__in=ids).values_list("pk", "patient_id"):
        audit.record(
            actor,
            "chronic.referral.track",
            target=audit.Target("referral", referral_id, patient_id),
            detail={"tracked_on": visit_on.isoformat(), "follow_up_id": follow_up_id},
        )
    return ids


@transaction.atomic
def track_referral(
    *, actor: Actor, referral_id: int, tracked_on: date, outcome: str, today: date | None = None
) -> Referral:
    """Record the tracking contact of a referral (转诊随访, R7.2): open → tracked.

    ``tracked_on`` may not be in the future nor before the referral was opened."""
    today = today or timezone.localdate()
    outcome = (outcome or "").strip()
    if not outcome or len(outcome) > 200:
        raise InvalidInput(_("请填写转诊结果（200 字以内）。"), field="outcome")
    if tracked_on > today:
        raise DateInFuture(_("跟踪日期不能晚于今天。"), field="tracked_on")
    referral = _locked_referral(actor, referral_id)
    _transition(referral, Referral.Status.TRACKED)
    if tracked_on < referral.opened_on:
        raise InvalidInput(_("跟踪日期不能早于转诊日期。"), field="tracked_on")
    referral.status = Referral.Status.TRACKED
    referral.tracked_on = tracked_on
    referral.outcome = outcome
    referral.save(update_fields=["status", "tracked_on", "outcome"])
    audit.record(
        actor,
        "chronic.referral.track",
        target=audit.Target("referral", referral.pk, referral.patient_id),
        detail={"tracked_on": tracked_on.isoformat()},
    )
    return referral


@transaction.atomic
def cancel_referral(*, actor: Actor, referral_id: int, reason: str) -> Referral:
    """Withdraw a referral opened in error (撤销): open → cancelled, with a reason."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise InvalidInput(_("请填写撤销原因（200 字以内）。"), field="reason")
    referral = _locked_referral(actor, referral_id)
    _transition(referral, Referral.Status.CANCELLED)
    referral.status = Referral.Status.CANCELLED
    referral.outcome = reason
    referral.save(update_fields=["status", "outcome"])
    audit.record(
        actor,
        "chronic.referral.cancel",
        target=audit.Target("referral", referral.pk, referral.patient_id),
        reason=reason,
    )
    return referral
