"""Chronic-disease API: registries (专病档案) and a patient's chronic profile.

Thin: parse, call one service or selector, shape the response. Every operation needs
``CHRONIC_MANAGE`` (reads too: they show patient data); records outside the caller's organisation
scope answer 404 like missing ones.
"""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Query, Router
from ninja.responses import Status

from yilian.chronic import schemas
from yilian.chronic.models import Registry
from yilian.chronic.selectors import registries as selectors
from yilian.chronic.services import registries as services
from yilian.common import audit, masking, policy
from yilian.common.access import requires

router = Router(tags=["chronic"])


def registry_out(r: Registry, *, masked: bool = False) -> dict:
    """One registry; in lists (``masked``) the patient's name is masked (common.masking)."""
    doctor = r.responsible_doctor
    return {
        "id": r.pk,
        "patient_id": r.patient_id,
        "patient_name": masking.mask_name(r.patient.name) if masked else r.patient.name,
        "disease": r.disease,
        "disease_label": str(r.get_disease_display()),
        "status": r.status,
        "status_label": str(r.get_status_display()),
        "registered_on": r.registered_on,
        "diagnosed_on": r.diagnosed_on,
        "diagnosis_source": r.diagnosis_source,
        "managing_org": {"id": r.managing_org_id, "name": r.managing_org.name},
        "responsible_doctor": {"id": doctor.pk, "name": doctor.name} if doctor else None,
        "reminder_consent": r.reminder_consent,
        "prior_cvd": r.prior_cvd,
        "high_risk": r.high_risk,
        "closed_on": r.closed_on,
        "close_reason": r.close_reason,
        "last_follow_up_on": r.last_follow_up_on,
        "next_follow_up_on": r.next_follow_up_on,
        "last_classification": r.last_classification,
    }


def _fresh(registry_id: int) -> Registry:
    return Registry.objects.select_related("patient", "managing_org", "responsible_doctor").get(
        pk=registry_id
    )


@router.post("/registries", response={201: schemas.RegistryRead}, summary="建档（专病档案）")
@requires(policy.CHRONIC_MANAGE)
def enrol(request, payload: schemas.RegistryCreate):
    registry = services.enrol(actor=request.actor, **payload.model_dump())
    return Status(201, registry_out(_fresh(registry.pk)))


@router.get(
    "/registries",
    response=schemas.RegistryList,
    summary="专病档案列表（本人负责的机构范围，姓名脱敏，查阅留痕）",
)
@requires(policy.CHRONIC_MANAGE)
def list_registries(request, params: Query[schemas.RegistryListParams]):
    qs = selectors.registries_visible_to(request.actor)
    if params.disease:
        qs = qs.filter(disease=params.disease)
    if params.status:
        qs = qs.filter(status=params.status)
    if params.patient_id:
        qs = qs.filter(patient_id=params.patient_id)
    total = qs.count()
    rows = qs.select_related("patient", "managing_org", "responsible_doctor").order_by(
        "-registered_on", "-pk"
    )[params.offset : params.offset + params.limit]
    items = [registry_out(r, masked=True) for r in rows]
    audit.record(
        request.actor,
        "chronic.registry.list",
        detail={
            "disease": params.disease or "",
            "status": params.status or "",
            "patient": params.patient_id,
            "rows": len(items),
            "total": total,
        },
    )
    return {"count": total, "items": items}


@router.get("/registries/{int:registry_id}", response=schemas.RegistryRead, summary="专病档案（查阅留痕）")
@requires(policy.CHRONIC_MANAGE)
def read_registry(request, registry_id: int, response: HttpResponse):
    response["Cache-Control"] = "no-store"
    return registry_out(selectors.access_registry(request.actor, registry_id, purpose="api"))


@router.post(
    "/registries/{int:registry_id}/close",
    response=schemas.RegistryRead,
    summary="结案（死亡、迁出、排除诊断）",
)
@requires(policy.CHRONIC_MANAGE)
def close(request, registry_id: int, payload: schemas.RegistryClose):
    registry = services.close_registry(actor=request.actor, registry_id=registry_id, **payload.model_dump())
    return registry_out(_fresh(registry.pk))


@router.post(
    "/registries/{int:registry_id}/transfer",
    response=schemas.RegistryRead,
    summary="转管（管理机构、责任医生）",
)
@requires(policy.CHRONIC_MANAGE)
def transfer(request, registry_id: int, payload: schemas.RegistryTransfer):
    registry = services.transfer_registry(
        actor=request.actor, registry_id=registry_id, **payload.model_dump()
    )
    return registry_out(_fresh(registry.pk))


@router.get(
    "/patients/{int:patient_id}/registries",
    response=schemas.ChronicProfileRead,
    summary="患者慢病档案：专病档案、随访记录（新到旧）、待跟踪转诊（查阅留痕）",
)
@requires(policy.CHRONIC_MANAGE)
def patient_profile(request, patient_id: int, response: HttpResponse):
    from yilian.chronic.api.followups import follow_up_out, referral_out

    response["Cache-Control"] = "no-store"
    profile = selectors.access_patient_profile(request.actor, patient_id, purpose="api")
    referral_ids = selectors.referral_ids_by_follow_up([fu.pk for fu in profile.follow_ups])
    return {
        "patient_id": profile.patient.pk,
        "patient_name": profile.patient.name,
        "registries": [registry_out(r) for r in profile.registries],
        "follow_ups": [follow_up_out(fu, referral_ids.get(fu.pk), full=True) for fu in profile.follow_ups],
        "open_referrals": [referral_out(r) for r in profile.open_referrals],
    }
