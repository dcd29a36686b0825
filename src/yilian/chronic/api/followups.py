"""Chronic-disease API: follow-ups (随访) and the referrals they open (转诊, 转诊随访).

``POST /follow-ups`` returns, per disease, the classification with its Chinese label, urgent,
referral with reasons, the rule IDs that fired (R3.x–R5.x), the next due date, the target verdicts
and the id of the referral opened. A retry with the same ``client_uuid`` returns the same answer.
"""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Query, Router
from ninja.responses import Status

from yilian.chronic import rules, schemas
from yilian.chronic.models import FollowUp, Referral
from yilian.chronic.selectors import registries as selectors
from yilian.chronic.services import followups as services
from yilian.chronic.services import referrals as referral_services
from yilian.common import audit, masking, policy
from yilian.common.access import requires

router = Router(tags=["chronic"])


def follow_up_out(fu: FollowUp, referral_id: int | None, *, full: bool = False) -> dict:
    body = {
        "id": fu.pk,
        "registry_id": fu.registry_id,
        "disease": fu.disease,
        "disease_label": str(fu.get_disease_display()),
        "visit_on": fu.visit_on,
        "mode": fu.mode,
        "classification": fu.classification,
        "classification_label": str(fu.get_classification_display()) if fu.classification else "",
        "urgent": fu.urgent,
        "referral": fu.referral,
        "referral_label": str(fu.get_referral_display()),
        "referral_reasons": list(fu.referral_reasons),
        "referral_reason_labels": [rules.REASON_LABELS.get(r, r) for r in fu.referral_reasons],
        "rules_fired": list(fu.rules_fired),
        "urgent_signs": list(fu.urgent_signs or []),
        "next_due_on": fu.next_due_on,
        "bp_at_target": fu.bp_at_target,
        "fpg_at_target": fu.fpg_at_target,
        "referral_id": referral_id,
    }
    if full:
        body.update(
            {
                "organisation": {"id": fu.organisation_id, "name": fu.organisation.name},
                **{
                    k: getattr(fu, k)
                    for k in (
                        "sbp",
                        "dbp",
                        "sbp2",
                        "dbp2",
                        "fpg_mmol",
                        "glucose_any_mmol",
                        "heart_rate",
                        "weight_kg",
                        "waist_cm",
                        "symptoms",
                        "adherence",
                        "medications",
                        "note",
                        "age_at_visit",
                    )
                },
            }
        )
    return body


def referral_out(r: Referral, *, masked: bool = False) -> dict:
    """One referral; in lists (``masked``) the patient's name is masked (common.masking)."""
    return {
        "id": r.pk,
        "patient_id": r.patient_id,
        "patient_name": masking.mask_name(r.patient.name) if masked else r.patient.name,
        "disease": r.disease,
        "registry_id": r.registry_id,
        "follow_up_id": r.follow_up_id,
        "kind": r.kind,
        "kind_label": str(r.get_kind_display()),
        "reasons": list(r.reasons),
        "rules_fired": list(r.rules_fired),
        "from_org": {"id": r.from_org_id, "name": r.from_org.name},
        "to_org": {"id": r.to_org_id, "name": r.to_org.name},
        "status": r.status,
        "opened_on": r.opened_on,
        "tracking_due_on": r.tracking_due_on,
        "tracked_on": r.tracked_on,
        "outcome": r.outcome,
    }


@router.post(
    "/follow-ups", response={201: schemas.FollowUpRecorded}, summary="记录随访（按病种评估，返回规则编号）"
)
@requires(policy.CHRONIC_MANAGE)
def record(request, payload: schemas.FollowUpCreate):
    values = payload.model_dump(exclude={"patient_id", "diseases", "client_uuid"})
    rows = services.record_follow_up(
        actor=request.actor,
        patient_id=payload.patient_id,
        data=services.FollowUpData(**values),
        diseases=payload.diseases,
        client_uuid=payload.client_uuid,
    )
    referral_ids = selectors.referral_ids_by_follow_up([fu.pk for fu in rows])
    return Status(
        201,
        {
            "visit_key": rows[0].visit_key,
            "results": [follow_up_out(fu, referral_ids.get(fu.pk)) for fu in rows],
        },
    )


@router.get(
    "/registries/{int:registry_id}/follow-ups",
    response=schemas.FollowUpList,
    summary="档案的随访记录（新到旧）",
)
@requires(policy.CHRONIC_MANAGE)
def list_follow_ups(request, registry_id: int, response: HttpResponse, limit: int = 100, offset: int = 0):
    limit = max(1, min(limit, 200))
    offset = max(0, min(offset, 1_000_000))
    response["Cache-Control"] = "no-store"
    registry, rows = selectors.follow_ups_of(request.actor, registry_id, limit=limit, offset=offset)
    referral_ids = selectors.referral_ids_by_follow_up([fu.pk for fu in rows])
    return {
        "registry_id": registry.pk,
        "count": registry.follow_ups.count(),
        "items": [follow_up_out(fu, referral_ids.get(fu.pk), full=True) for fu in rows],
    }


@router.get("/referrals", response=schemas.ReferralList, summary="慢病转诊列表（本人负责的机构范围）")
@requires(policy.CHRONIC_MANAGE)
def list_referrals(request, params: Query[schemas.ReferralListParams]):
    qs = selectors.referrals_visible_to(request.actor)
    if params.status:
        qs = qs.filter(status=params.status)
    total = qs.count()
    rows = qs.select_related("patient", "from_org", "to_org").order_by("status", "tracking_due_on", "pk")[
        params.offset : params.offset + params.limit
    ]
    items = [referral_out(r, masked=True) for r in rows]
    audit.record(
        request.actor,
        "chronic.referral.list",
        detail={"status": params.status or "", "rows": len(items), "total": total},
    )
    return {"count": total, "items": items}


def _referral(referral_id: int) -> Referral:
    return Referral.objects.select_related("patient", "from_org", "to_org").get(pk=referral_id)


@router.post(
    "/referrals/{int:referral_id}/track", response=schemas.ReferralRead, summary="转诊随访（跟踪结果）"
)
@requires(policy.CHRONIC_MANAGE)
def track(request, referral_id: int, payload: schemas.ReferralTrack):
    referral = referral_services.track_referral(
        actor=request.actor, referral_id=referral_id, **payload.model_dump()
    )
    return referral_out(_referral(referral.pk))


@router.post("/referrals/{int:referral_id}/cancel", response=schemas.ReferralRead, summary="撤销转诊")
@requires(policy.CHRONIC_MANAGE)
def cancel(request, referral_id: int, payload: schemas.ReferralCancel):
    referral = referral_services.cancel_referral(
        actor=request.actor, referral_id=referral_id, **payload.model_dump()
    )
    return referral_out(_referral(referral.pk))
