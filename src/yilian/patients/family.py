"""Family members managed by a patient account (家庭成员/就诊人绑定; access.md B-16, B-2).

Rules:

* B-16: an account binds at most ``FAMILY_BIND_MAX`` (5) patients; each binding needs the
  member's name and ID number, and the account holder's consent to the privacy notice of version
  ``CONSENT_VERSION`` (PIPL art. 14, 31: consent, and a guardian's consent for a minor).
* B-16: a patient under 14 can be managed only from a guardian's account, so a child is bound
  only as the account holder's child or grandchild (``GUARDIAN_RELATIONSHIPS``).
* B-2 (spirit): binding an identity that is already registered needs the registered name; a
  different name is refused (``IDENTITY_MISMATCH``) so that an ID number alone never hands a
  stranger's record to an account; after 5 such refusals in 24 hours the account may not bind
  (``IDENTITY_MISMATCH_LIMIT``, 429), so names cannot be tried against an ID number.
* L-1: every refusal is audited (after the rollback of the refused transaction).

Binds and unbinds are serialised per account (row lock), audited, and all-or-nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from yilian.accounts.models import PatientAccount
from yilian.common import audit, crypto
from yilian.common.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied, RateLimited
from yilian.common.models import AuditEvent
from yilian.common.policy import Actor
from yilian.patients.models import FamilyLink, Patient

FAMILY_BIND_MAX = getattr(settings, "FAMILY_BIND_MAX", 5)
CONSENT_VERSION = "2026-01"
GUARDIAN_AGE = 14  # B-16: under this age only a guardian may bind
ADULT_AGE = 18
GUARDIAN_RELATIONSHIPS = frozenset({"child", "grandchild"})
IDENTITY_MISMATCH_MAX = 5
IDENTITY_MISMATCH_WINDOW = timedelta(hours=24)


class ConsentRequired(DomainError):
    code = "CONSENT_REQUIRED"
    status = 422
    default_message = _("请阅读并勾选同意《就诊人信息授权书》后再添加就诊人")


class FamilyBindLimit(DomainError):
    code = "FAMILY_BIND_LIMIT"
    status = 422
    default_message = format_lazy(
        _("每个账号最多绑定 {max} 位就诊人，请先解绑不再需要的就诊人"), max=FAMILY_BIND_MAX
    )


class IdentityMismatch(DomainError):
    code = "IDENTITY_MISMATCH"
    status = 403
    default_message = _("姓名与该证件号码登记的信息不一致，请核对后重试")


class IdentityProbeLimited(RateLimited):
    code = "IDENTITY_MISMATCH_LIMIT"
    default_message = _(
        "姓名与证件号码多次核对不一致，添加就诊人功能已暂停 24 小时；如有疑问请到医院服务中心办理"
    )


class GuardianRequired(DomainError):
    code = "GUARDIAN_REQUIRED"
    status = 422
    default_message = _("未满 14 周岁的就诊人只能由监护人绑定，与本人关系请选择“子女”或“孙子女/外孙子女”")


class AlreadyBound(Conflict):
    code = "FAMILY_ALREADY_BOUND"
    default_message = _("该就诊人已在您的账号中，无需重复添加")


class SelfAlreadyBound(Conflict):
    code = "FAMILY_SELF_EXISTS"
    default_message = _("您的账号已绑定“本人”，每个账号只能有一位本人")


class SelfUnbindRefused(DomainError):
    code = "FAMILY_SELF_UNBIND"
    status = 422
    default_message = _("不能解绑“本人”；如需注销账号请联系医院服务中心")


def age_on(birth: date, today: date) -> int:
    """Completed years of age on ``today`` (the birthday counts)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def needs_guardian(birth: date, today: date) -> bool:
    """B-16: a patient under ``GUARDIAN_AGE`` can be bound only by a guardian."""
    return age_on(birth, today) < GUARDIAN_AGE


def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return "".join(s.split()).replace("•", "·").replace("．", "·").casefold()

    return norm(a) == norm(b)


def members_of(account_id: int | None) -> list[FamilyLink]:
    """The account's family links, "self" first, then in the order they were added."""
    if account_id is None:
        return []
    links = list(
        FamilyLink.objects.filter(account_id=account_id, patient__status=Patient.Status.ACTIVE)
        .select_related("patient")
        .defer("patient__id_number", "patient__phone")  # screens show them masked from clear columns
        .order_by("created_at", "id")
    )
    links.sort(key=lambda link: link.relationship != FamilyLink.Relationship.SELF)
    return links


def _refusals_audited(action: str):
    """access.md L-1: every refusal writes an audit entry. Written after the rollback of the
    refused transaction, so it survives; also what ``_check_identity_probes`` counts."""

    def decorate(service):
        @wraps(service)
        def run(*, actor: Actor, **kwargs):
            try:
                return service(actor=actor, **kwargs)
            except DomainError as exc:
                if actor.is_authenticated:
                    audit.refused(actor, action, code=exc.code)
                raise

        return run

    return decorate


def _check_identity_probes(actor: Actor) -> None:
    """B-2 spirit: a name that does not match an ID number is refused; repeated refusals look like
    someone trying names against a stranger's ID, so after ``IDENTITY_MISMATCH_MAX`` in
    ``IDENTITY_MISMATCH_WINDOW`` the account may not bind for a while."""
    if actor.user_id is None:
        return
    recent = AuditEvent.objects.filter(
        actor_id=actor.user_id,
        action="family.bind",
        outcome=AuditEvent.Outcome.REFUSED,
        detail__code=IdentityMismatch.code,
        at__gte=timezone.now() - IDENTITY_MISMATCH_WINDOW,
    ).count()
    if recent >= IDENTITY_MISMATCH_MAX:
        raise IdentityProbeLimited()


def _check_actor(actor: Actor, account: PatientAccount) -> None:
    if actor.kind == "patient" and actor.patient_account_id != account.pk:
        raise PermissionDenied()


@_refusals_audited("family.bind")
@transaction.atomic
def bind_family_member(
    *,
    actor: Actor,
    account: PatientAccount,
    name: str,
    id_type: str,
    id_number: str,
    relationship: str,
    phone: str = "",
    sex: str | None = None,
    birth_date: date | None = None,
    consent: bool,
) -> FamilyLink:
    """Bind a patient to an account (B-16), registering the patient if the identity is new."""
    from yilian.patients import services as patient_services

    _check_actor(actor, account)
    _check_identity_probes(actor)
    if not consent:
        raise ConsentRequired(field="consent")
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("请填写就诊人姓名"), field="name")
    if relationship not in FamilyLink.Relationship.values:
        raise InvalidInput(_("请选择与本人的关系"), field="relationship")
    if id_type not in Patient.IdType.values:
        raise InvalidInput(_("请选择证件类型"), field="id_type")
    if not (id_number or "").strip():
        raise InvalidInput(_("请填写证件号码"), field="id_number")

    # Serialise binds of one account so that the limit holds under concurrent requests.
    account = PatientAccount.objects.select_for_update().get(pk=account.pk)
    links = FamilyLink.objects.filter(account=account)
    if links.count() >= FAMILY_BIND_MAX:
        raise FamilyBindLimit(max=FAMILY_BIND_MAX)
    if relationship == FamilyLink.Relationship.SELF and links.filter(relationship="self").exists():
        raise SelfAlreadyBound(field="relationship")

    id_hash = crypto.blind_index("id", id_number)
    patient = Patient.objects.filter(id_type=id_type, id_hash=id_hash, status=Patient.Status.ACTIVE).first()
    if patient is not None:
        if not _same_name(patient.name, name):
            raise IdentityMismatch(field="name")
        if links.filter(patient=patient).exists():
            raise AlreadyBound(field="id_number")
        created = False
    else:
        patient = patient_services.register_patient(
            actor=actor,
            name=name,
            id_type=id_type,
            id_number=id_number,
            sex=sex,
            birth_date=birth_date,
            phone=phone,
            realname_verified=False,
        )
        created = True

    today = timezone.localdate()
    minor = age_on(patient.birth_date, today) < ADULT_AGE
    if needs_guardian(patient.birth_date, today) and relationship not in GUARDIAN_RELATIONSHIPS:
        raise GuardianRequired(field="relationship")

    link = FamilyLink(
        account=account,
        patient=patient,
        relationship=relationship,
        is_guardian=minor and relationship in GUARDIAN_RELATIONSHIPS,
        consent_version=CONSENT_VERSION,
        consent_at=timezone.now(),
    )
    link.full_clean(exclude=["account", "patient"])
    link.save()
    audit.record(
        actor,
        "family.bind",
        target=audit.Target("patients.FamilyLink", link.pk, patient_id=patient.pk),
        detail={
            "relationship": relationship,
            "consent_version": CONSENT_VERSION,
            "new_patient": created,
            "guardian": link.is_guardian,
        },
    )
    return link


@_refusals_audited("family.unbind")
@transaction.atomic
def unbind_family_member(*, actor: Actor, account: PatientAccount, patient_id: int) -> None:
    """Remove a patient from an account; the patient record itself stays (B-16)."""
    _check_actor(actor, account)
    link = FamilyLink.objects.select_for_update().filter(account=account, patient_id=patient_id).first()
    if link is None:
        raise NotFound()
    if link.relationship == FamilyLink.Relationship.SELF:
        raise SelfUnbindRefused()
    audit.record(
        actor,
        "family.unbind",
        target=audit.Target("patients.FamilyLink", link.pk, patient_id=patient_id),
        detail={"relationship": link.relationship, "consent_version": link.consent_version},
    )
    link.delete()
