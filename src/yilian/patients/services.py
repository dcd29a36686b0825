"""Writes on real-name patients: registration (with the e-health card), changes, contacts, merges.

Rules: ``patients.rules`` (GB 11643-1999 and document formats); PRODUCT.md non-negotiables
(every change audited; identifiers encrypted at rest and never logged); access.md scoping via
``common.policy`` (a role reaches its organisation's subtree). Audit rows name changed *fields*,
never their values.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.common import audit, crypto, masking, pinyin, policy
from yilian.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.community.models import Organisation
from yilian.patients import rules, selectors
from yilian.patients.models import Contact, FamilyLink, HealthCard, Patient

MESSAGES: dict[str, Any] = {
    "ID_TYPE_UNKNOWN": _("证件类型无效，请从列表中选择。"),
    "ID_REQUIRED": _("请填写证件号码。"),
    "ID_FORMAT": _("证件号码格式不正确，请核对证件类型和号码。"),
    "ID_AREA": _("身份证号码前两位不是有效的省级行政区划代码。"),
    "ID_BIRTH_DATE": _("身份证号码中的出生日期（第7–14位）不是有效日期，或晚于今天。"),
    "ID_CHECKSUM": _("身份证号码校验位（最后一位）不正确，请逐位核对。"),
    "ID_SEX_MISMATCH": _("所选性别与身份证号码（第17位）不一致。"),
    "ID_BIRTH_MISMATCH": _("所填出生日期与身份证号码中的出生日期不一致。"),
    "BIRTH_DATE_REQUIRED": _("非居民身份证登记时必须填写出生日期。"),
    "BIRTH_DATE_INVALID": _("出生日期不能晚于今天，也不能早于1900年。"),
    "SEX_REQUIRED": _("非居民身份证登记时必须选择性别。"),
    "SEX_INVALID": _("性别无效。"),
    "PHONE_FORMAT": _("手机号格式不正确，应为11位中国大陆手机号。"),
    "PHONE_REQUIRED": _("请填写联系电话。"),
    "NAME_REQUIRED": _("请填写姓名。"),
    "NAME_TOO_LONG": _("姓名不能超过50个字。"),
    "NAME_CHARACTERS": _("姓名只能由汉字（可含“·”）或英文字母（可含空格、“·”、“-”）组成。"),
    "UNKNOWN_ORG": _("机构编码不存在或已停用。"),
    "NATIONALITY_FORMAT": _("国籍应为三位字母代码（如 CHN）。"),
    "RELATIONSHIP_REQUIRED": _("请填写与患者的关系。"),
    "MERGE_REASON_REQUIRED": _("合并患者必须填写原因。"),
    "MERGE_SAME_PATIENT": _("不能把患者与自己合并。"),
    "DUPLICATE": _("该证件号码已建档（%(name)s），请直接检索使用已有档案，勿重复建档。"),
    "MERGE_NOT_ACTIVE": _("只能合并两份有效档案，其中一份已被合并。"),
}

ADDRESS_FIELDS = ("province", "city", "county", "township", "village", "address_detail")
_CARD_ALPHABET = "0123456789"


class PatientDataInvalid(InvalidInput):
    """A rule of ``patients.rules`` is broken; ``code`` is the rule's own code."""

    def __init__(self, code: str, field: str) -> None:
        super().__init__(MESSAGES.get(code, InvalidInput.default_message), field=field)
        self.code = code


class DuplicatePatient(Conflict):
    """An active patient already holds this document (证件号已建档)."""

    code = "DUPLICATE_PATIENT"
    default_message = MESSAGES["DUPLICATE"]


class MergeConflict(Conflict):
    """Both patients hold a record that may exist only once per patient; a person must decide."""

    code = "MERGE_CONFLICT"
    default_message = _("两份档案在“%(table)s”中都有只能存在一条的记录，无法自动合并，请先处理后再合并。")


def _full_clean(obj: models.Model, exclude: list[str] | None = None) -> None:
    """Model validation (lengths, choices) as a 422 naming the field, never a 500."""
    try:
        obj.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        error = InvalidInput(
            messages[0] if messages else None, field=None if field == NON_FIELD_ERRORS else field
        )
        raise error from exc


def _invalid(violation: rules.RuleViolation) -> PatientDataInvalid:
    return PatientDataInvalid(violation.code, violation.field)


def _org_by_code(code: str) -> Organisation:
    org = Organisation.objects.filter(code=code.strip(), status=Organisation.Status.ACTIVE).first()
    if org is None:
        raise PatientDataInvalid("UNKNOWN_ORG", "home_org_code")
    return org


def _home_org_for(actor: Actor, home_org_code: str | None, permission: str) -> Organisation:
    """The managing organisation: the code given, else where the actor holds ``permission``.

    Staff and systems may only place a patient inside their own scope. A patient account adding a
    family member (H5) has no scope; without a code the patient goes to the lead hospital.
    """
    if home_org_code:
        org = _org_by_code(home_org_code)
    elif actor.kind == "patient":
        org = Organisation.objects.filter(parent__isnull=True).order_by("path").first()
        if org is None:
            raise PatientDataInvalid("UNKNOWN_ORG", "home_org_code")
    else:
        own = next(
            (a for a in actor.assignments if permission in policy.ROLE_PERMISSIONS.get(a.role, ())), None
        )
        if own is None:
            raise PermissionDenied()
        org = Organisation.objects.get(pk=own.org_id)
    if actor.kind != "patient" and not policy.covers(actor, permission, org.path):
        raise PermissionDenied(_("您不能在本机构管辖范围以外建立或迁入患者档案。"), field="home_org_code")
    return org


def _set_identifiers(patient: Patient, identity: rules.Identity) -> None:
    patient.id_type = identity.id_type
    patient.id_number = identity.id_number
    patient.id_hash = crypto.blind_index("id", identity.id_number)
    patient.id_last4 = identity.last4
    patient.id_head = identity.head
    patient.birth_date = identity.birth_date
    patient.sex = identity.sex


def _set_phone(patient: Patient, phone: str) -> None:
    patient.phone = phone
    patient.phone_hash = crypto.blind_index("phone", phone) if phone else ""
    patient.phone_last4 = phone[-4:] if phone else ""


def _check_nationality(value: str) -> str:
    value = (value or "CHN").strip().upper()
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise PatientDataInvalid("NATIONALITY_FORMAT", "nationality")
    return value


def _duplicate_error(id_type: str, id_hash: str, actor: Actor) -> DuplicatePatient:
    existing = Patient.objects.filter(id_type=id_type, id_hash=id_hash, status=Patient.Status.ACTIVE).first()
    name = masking.mask_name(existing.name) if existing else ""
    extra: dict[str, Any] = {"existing_name": name}
    if existing is not None and _in_scope(actor, existing, policy.PATIENT_VIEW):
        extra["existing_id"] = existing.pk
    return DuplicatePatient(DuplicatePatient.default_message % {"name": name}, field="id_number", **extra)


def _in_scope(actor: Actor, patient: Patient, permission: str) -> bool:
    if actor.kind == "patient":
        return patient.pk in actor.managed_patient_ids
    return policy.covers(actor, permission, patient.home_org.path)


def identity_taken(id_type: str, id_hash: str, *, other_than: int | None = None) -> bool:
    """Whether an active patient already holds this document (the friendly early check; the partial
    unique constraint is what actually guarantees it under concurrency)."""
    rows = Patient.objects.filter(id_type=id_type, id_hash=id_hash, status=Patient.Status.ACTIVE)
    if other_than is not None:
        rows = rows.exclude(pk=other_than)
    return rows.exists()


def new_card_no() -> str:
    """A random card number (``YL`` + 16 digits): carries no personal data and cannot be guessed."""
    return "YL" + "".join(secrets.choice(_CARD_ALPHABET) for _ in range(16))


def _issue_card(patient: Patient) -> HealthCard:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return HealthCard.objects.create(
                    patient=patient, card_no=new_card_no(), issued_at=timezone.now()
                )
        except IntegrityError:  # 10^16 numbers: a clash is astronomically rare, but never fatal
            continue
    raise Conflict()


@transaction.atomic
def register_patient(
    *,
    actor: Actor,
    name: str,
    id_type: str,
    id_number: str,
    sex: str | None = None,
    birth_date: date | None = None,
    phone: str = "",
    home_org_code: str | None = None,
    nationality: str = "CHN",
    ethnicity: str = "",
    province: str = "",
    city: str = "",
    county: str = "",
    township: str = "",
    village: str = "",
    address_detail: str = "",
    realname_verified: bool = False,
) -> Patient:
    """Create a real-name patient (建档) and issue an active e-health card, in one transaction.

    A document already held by an active patient is ``DUPLICATE_PATIENT`` (409). The partial unique
    constraint ``patient_active_identity_unique`` makes this race-safe: two clerks registering the
    same person at once get one patient and one 409, and nothing half-written.
    """
    try:
        clean_name = rules.check_name(name)
        identity = rules.check_identity(id_type, id_number, sex=sex or None, birth_date=birth_date)
        clean_phone = rules.check_mobile(phone)
    except rules.RuleViolation as exc:
        raise _invalid(exc) from exc
    org = _home_org_for(actor, home_org_code, policy.PATIENT_CREATE)
    patient = Patient(
        name=clean_name,
        name_initials=pinyin.initials(clean_name),
        nationality=_check_nationality(nationality),
        ethnicity=ethnicity.strip(),
        home_org=org,
        realname_verified=realname_verified,
        province=province.strip(),
        city=city.strip(),
        county=county.strip(),
        township=township.strip(),
        village=village.strip(),
        address_detail=address_detail.strip(),
    )
    _set_identifiers(patient, identity)
    _set_phone(patient, clean_phone)
    if identity_taken(identity.id_type, patient.id_hash):
        raise _duplicate_error(identity.id_type, patient.id_hash, actor)
    _full_clean(patient, exclude=["id_hash", "id_last4", "name_initials", "home_org", "merged_into"])
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:  # lost the race with a concurrent registration of the same person
        raise _duplicate_error(identity.id_type, patient.id_hash, actor) from exc
    card = _issue_card(patient)
    audit.record(
        actor,
        "patient.register",
        target=audit.Target("patient", patient.pk, patient.pk),
        detail={"id_type": identity.id_type, "home_org": org.code, "card_id": card.pk},
    )
    return patient


UPDATABLE_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "id_type",
    "id_number",
    "phone",
    "nationality",
    "ethnicity",
    *ADDRESS_FIELDS,
    "home_org_code",
    "realname_verified",
)


def _locked_patient(actor: Actor, patient_id: int, permission: str) -> Patient:
    """Lock a patient row for a write; out of scope and missing alike are ``NotFound``."""
    patient = Patient.objects.select_for_update().filter(pk=patient_id).first()
    if patient is None:
        raise NotFound()
    patient.home_org = Organisation.objects.get(pk=patient.home_org_id)
    if actor.kind == "patient" or not _in_scope(actor, patient, permission):
        if actor.kind != "patient" and policy.allows(actor, policy.PATIENT_VIEW):
            audit.refused(actor, "patient.write", target=audit.Target("patient", patient.pk, patient.pk))
        raise NotFound()
    return patient


@transaction.atomic
def update_patient(*, actor: Actor, patient_id: int, **changes: Any) -> Patient:
    """Change a patient's demographics. Identity changes are re-validated (GB 11643-1999) and re-hashed.

    Only keys in ``UPDATABLE_FIELDS`` are accepted; a key given with its current value is no change.
    The audit row lists the changed field names, never old or new values (identifiers stay out of logs).
    """
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidInput(_("不能修改字段：%(fields)s") % {"fields": ", ".join(sorted(unknown))})
    patient = _locked_patient(actor, patient_id, policy.PATIENT_UPDATE)
    if patient.status != Patient.Status.ACTIVE:
        raise Conflict(_("该档案已合并到其他档案，请修改合并后的档案。"))
    changed: list[str] = []
    try:
        if "name" in changes and changes["name"] is not None:
            name = rules.check_name(changes["name"])
            if name != patient.name:
                patient.name, patient.name_initials = name, pinyin.initials(name)
                changed.append("name")
        identity_keys = {"sex", "birth_date", "id_type", "id_number"}
        if identity_keys & {k for k, v in changes.items() if v is not None}:
            id_type = changes.get("id_type") or patient.id_type
            id_number = changes.get("id_number") or patient.id_number
            replaced = (id_type, rules.normalise_id(id_number)) != (patient.id_type, patient.id_number)
            # A resident ID decides sex and birth date (GB 11643-1999). When the number is replaced,
            # values merely carried over from the old record (an edit form sends every field) must
            # not contradict the new number; values the clerk actually changed still cross-check it.
            sex, birth = changes.get("sex"), changes.get("birth_date")
            if id_type == rules.RESIDENT_ID and replaced:
                sex = None if sex == patient.sex else sex
                birth = None if birth == patient.birth_date else birth
            elif id_type != rules.RESIDENT_ID:
                sex, birth = sex or patient.sex, birth or patient.birth_date
            identity = rules.check_identity(id_type, id_number, sex=sex, birth_date=birth)
            before = (patient.id_type, patient.id_number, patient.sex, patient.birth_date)
            _set_identifiers(patient, identity)
            after = (patient.id_type, patient.id_number, patient.sex, patient.birth_date)
            changed += [
                f
                for f, b, a in zip(("id_type", "id_number", "sex", "birth_date"), before, after, strict=True)
                if b != a
            ]
        if changes.get("phone") is not None:
            phone = rules.check_mobile(changes["phone"])
            if phone != patient.phone:
                _set_phone(patient, phone)
                changed.append("phone")
    except rules.RuleViolation as exc:
        raise _invalid(exc) from exc
    if changes.get("nationality") is not None:
        nationality = _check_nationality(changes["nationality"])
        if nationality != patient.nationality:
            patient.nationality = nationality
            changed.append("nationality")
    for field in ("ethnicity", *ADDRESS_FIELDS):
        if changes.get(field) is not None and changes[field].strip() != getattr(patient, field):
            setattr(patient, field, changes[field].strip())
            changed.append(field)
    if (
        changes.get("realname_verified") is not None
        and bool(changes["realname_verified"]) != patient.realname_verified
    ):
        patient.realname_verified = bool(changes["realname_verified"])
        changed.append("realname_verified")
    if changes.get("home_org_code"):
        org = _home_org_for(actor, changes["home_org_code"], policy.PATIENT_UPDATE)
        if org.pk != patient.home_org_id:
            patient.home_org = org
            changed.append("home_org")
    if not changed:
        return patient
    id_changed = bool({"id_type", "id_number"} & set(changed))
    if id_changed and identity_taken(patient.id_type, patient.id_hash, other_than=patient.pk):
        raise _duplicate_error(patient.id_type, patient.id_hash, actor)
    _full_clean(patient, exclude=["id_hash", "id_last4", "name_initials", "home_org", "merged_into"])
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:
        raise _duplicate_error(patient.id_type, patient.id_hash, actor) from exc
    audit.record(
        actor,
        "patient.update",
        target=audit.Target("patient", patient.pk, patient.pk),
        detail={"fields": sorted(changed)},
    )
    return patient


@transaction.atomic
def add_contact(*, actor: Actor, patient_id: int, name: str, relationship: str, phone: str) -> Contact:
    """Add an emergency/family contact (联系人); the phone may be a mobile or a landline."""
    patient = _locked_patient(actor, patient_id, policy.PATIENT_UPDATE)
    try:
        clean_name = rules.check_name(name)
        clean_phone = rules.check_contact_phone(phone)
    except rules.RuleViolation as exc:
        raise _invalid(exc) from exc
    relationship = (relationship or "").strip()
    if not relationship:
        raise PatientDataInvalid("RELATIONSHIP_REQUIRED", "relationship")
    contact = Contact(patient=patient, name=clean_name, relationship=relationship, phone=clean_phone)
    _full_clean(contact, exclude=["patient"])
    contact.save()
    audit.record(
        actor,
        "patient.contact.add",
        target=audit.Target("patient", patient.pk, patient.pk),
        detail={"contact_id": contact.pk},
    )
    return contact


@dataclass(frozen=True)
class MergeOutcome:
    survivor: Patient
    duplicate_id: int
    moved: dict[str, int]


@transaction.atomic
def merge_patients(*, actor: Actor, survivor_id: int, duplicate_id: int, reason: str) -> MergeOutcome:
    """Merge a duplicate patient record into the survivor (重复档案合并).

    Both must be active and in the actor's ``PATIENT_MERGE`` scope. Every row of every table that
    points at the duplicate is moved to the survivor. Known unique conflicts are resolved: an account
    linked to both keeps its link to the survivor only; the duplicate's active card is revoked (its
    history moves with it). Any other conflict stops the merge (``MERGE_CONFLICT``) rather than
    guessing which clinical record to drop. The duplicate becomes ``merged`` with ``merged_into``.
    """
    reason = (reason or "").strip()
    if not reason:
        raise PatientDataInvalid("MERGE_REASON_REQUIRED", "reason")
    if survivor_id == duplicate_id:
        raise PatientDataInvalid("MERGE_SAME_PATIENT", "duplicate_id")
    # Lock in id order so that two concurrent merges of the same pair cannot deadlock; lock the
    # patient rows only (``of``), not the joined organisation rows that every new patient references.
    locked = {
        p.pk: p
        for p in Patient.objects.select_for_update(of=("self",))
        .select_related("home_org")
        .filter(pk__in=[survivor_id, duplicate_id])
        .order_by("pk")
    }
    if len(locked) != 2 or not all(_in_scope(actor, p, policy.PATIENT_MERGE) for p in locked.values()):
        raise NotFound()
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    if survivor.status != Patient.Status.ACTIVE or duplicate.status != Patient.Status.ACTIVE:
        raise Conflict(MESSAGES["MERGE_NOT_ACTIVE"])
    now = timezone.now()
    revoked = HealthCard.objects.filter(patient=duplicate, status=HealthCard.Status.ACTIVE).update(
        status=HealthCard.Status.REVOKED, revoked_at=now
    )
    survivor_accounts = FamilyLink.objects.filter(patient=survivor).values_list("account_id", flat=True)
    dropped_links = FamilyLink.objects.filter(
        patient=duplicate, account_id__in=list(survivor_accounts)
    ).delete()[0]
    moved: dict[str, int] = {}
    for rel in selectors.reverse_relations():
        model, field = rel.related_model, rel.field
        rows = model._base_manager.filter(**{field.name: duplicate})
        if model is Patient:
            rows = rows.exclude(pk=duplicate.pk)
        try:
            with transaction.atomic():
                count = rows.update(**{field.name: survivor})
        except IntegrityError as exc:
            raise MergeConflict(
                MergeConflict.default_message % {"table": model._meta.verbose_name}, table=model._meta.label
            ) from exc
        if count:
            moved[f"{model._meta.label_lower}.{field.name}"] = count
    Patient.objects.filter(pk=duplicate.pk).update(
        status=Patient.Status.MERGED, merged_into=survivor, updated_at=now
    )
    detail = {
        "survivor_id": survivor.pk,
        "duplicate_id": duplicate.pk,
        "moved": moved,
        "cards_revoked": revoked,
        "family_links_dropped": dropped_links,
    }
    audit.record(
        actor,
        "patient.merge",
        target=audit.Target("patient", survivor.pk, survivor.pk),
        reason=reason,
        detail=detail,
    )
    audit.record(
        actor,
        "patient.merged_away",
        target=audit.Target("patient", duplicate.pk, duplicate.pk),
        reason=reason,
        detail=detail,
    )
    survivor.refresh_from_db()
    return MergeOutcome(survivor=survivor, duplicate_id=duplicate.pk, moved=moved)
