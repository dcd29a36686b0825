"""Who is asking: turn a session user or an API key into a ``common.policy.Actor``."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from yilian.accounts import rules
from yilian.accounts.models import ApiKey, PatientAccount, User
from yilian.common import labels, masking, policy
from yilian.common.policy import ANONYMOUS, INTEGRATION, Actor, Assignment
from yilian.community.models import Organisation, Staff

LAST_USED_RESOLUTION = timedelta(minutes=1)


def actor_for_user(user: User | None) -> Actor:
    """The signed-in user as an ``Actor``, in one query (after the user's own row).

    A patient account: the account and its family links (``managed_patient_ids``) come from one
    LEFT JOIN. Staff: the staff row and its role assignments with their organisations' paths,
    likewise. This runs on every authenticated request, so it stays a single indexed read and
    builds no model instances it does not need.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    if user.kind == User.Kind.PATIENT:
        return _patient_actor(user)
    return _staff_actor(user)


def _patient_actor(user: User) -> Actor:
    if User.patient_account.is_cached(user):
        account = user.patient_account
        if account is None:
            return ANONYMOUS
        links = [(account.pk, pid) for pid in account.family_links.values_list("patient_id", flat=True)]
        links = links or [(account.pk, None)]
    else:
        links = list(
            PatientAccount.objects.filter(user_id=user.pk).values_list("pk", "family_links__patient")
        )
        if not links:
            return ANONYMOUS
    account_id = links[0][0]
    return Actor(
        kind="patient",
        user_id=user.pk,
        label=f"patient-account:{account_id}",
        patient_account_id=account_id,
        managed_patient_ids=frozenset(pid for _, pid in links if pid is not None),
    )


def _staff_actor(user: User) -> Actor:
    rows = list(
        Staff.objects.filter(user_id=user.pk)
        .order_by("roles__id")
        .values_list(
            "pk", "name", "is_active", "roles__role", "roles__organisation_id", "roles__organisation__path"
        )
    )
    if not rows or not rows[0][2]:
        return Actor(kind="staff", user_id=user.pk, label=user.username)
    staff_id, name = rows[0][0], rows[0][1]
    assignments = tuple(
        Assignment(role=role, org_id=org_id, org_path=path)
        for _, _, _, role, org_id, path in rows
        if role is not None
    )
    return Actor(
        kind="staff",
        user_id=user.pk,
        label=f"{user.username}/{name}",
        assignments=assignments,
        staff_id=staff_id,
    )


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def actor_for_api_key(raw: str) -> Actor | None:
    """Keys look like ``yl_<prefix>_<secret>``; an unknown, revoked or malformed key gives ``None``."""
    raw = raw.strip()
    match = rules.API_KEY_SHAPE.match(raw)
    if match is None:
        return None
    key = (
        ApiKey.objects.select_related("organisation")
        .filter(prefix=match.group(1), revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw)):
        return None
    now = timezone.now()
    # At most one write a minute per key: a busy integration must not write on every request.
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=key.pk
    ).update(last_used_at=now)
    return Actor(
        kind="system",
        label=f"api-key:{key.name}",
        assignments=(
            Assignment(role=INTEGRATION, org_id=key.organisation_id, org_path=key.organisation.path),
        ),
        api_key_id=key.pk,
    )


# --- reads for the security administrator and "who am I" -----------------------------------


def _scope_q(actor: Actor, permission: str, field: str) -> Q | None:
    """Materialised-path prefixes where ``actor`` holds ``permission`` (common.policy), as a Q."""
    paths = policy.scope_paths(actor, permission)
    if not paths:
        return None
    q = Q()
    for prefix in paths:
        q |= Q(**{f"{field}__startswith": prefix})
    return q


def organisations_for_keys(actor: Actor) -> QuerySet[Organisation]:
    """Organisations a security administrator may issue API keys for (their subtrees)."""
    q = _scope_q(actor, policy.SECURITY_MANAGE, "path")
    return Organisation.objects.filter(q).order_by("path") if q is not None else Organisation.objects.none()


def api_keys_visible_to(actor: Actor) -> QuerySet[ApiKey]:
    """API keys of organisations in the actor's ``SECURITY_MANAGE`` scope, newest first."""
    q = _scope_q(actor, policy.SECURITY_MANAGE, "organisation__path")
    if q is None:
        return ApiKey.objects.none()
    return (
        ApiKey.objects.filter(q)
        .select_related("organisation", "created_by__staff")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at", "-id")
    )


def locked_users_visible_to(actor: Actor, *, now=None) -> QuerySet[User]:
    """Staff accounts locked right now (MLPS login-failure lock) in the actor's scope."""
    q = _scope_q(actor, policy.SECURITY_MANAGE, "staff__organisation__path")
    if q is None:
        return User.objects.none()
    return (
        User.objects.filter(q, kind=User.Kind.STAFF, locked_until__gt=now or timezone.now())
        .select_related("staff__organisation")
        .order_by("-locked_until", "pk")
    )


def who_am_i(actor: Actor) -> dict:
    """The signed-in caller as the API's ``/me`` shows it: kind, a display name, roles with org codes."""
    if actor.kind == "patient":
        account = PatientAccount.objects.filter(pk=actor.patient_account_id).first()
        return {
            "kind": "patient",
            "name": masking.mask_phone(account.phone) if account else "",
            "username": "",
            "roles": [],
            "patient_account_id": actor.patient_account_id,
            "managed_patient_ids": sorted(actor.managed_patient_ids),
        }
    orgs = {
        o.pk: o
        for o in Organisation.objects.filter(pk__in={a.org_id for a in actor.assignments}).only(
            "pk", "code", "name"
        )
    }
    roles = [
        {
            "role": a.role,
            "role_label": labels.role_label(a.role),
            "organisation_code": orgs[a.org_id].code if a.org_id in orgs else "",
            "organisation_name": orgs[a.org_id].name if a.org_id in orgs else "",
        }
        for a in actor.assignments
    ]
    if actor.kind == "system":
        name = actor.label.removeprefix("api-key:")
        username = ""
    else:
        user = User.objects.select_related("staff").filter(pk=actor.user_id).first()
        staff = getattr(user, "staff", None) if user else None
        name = staff.name if staff else (user.username if user else "")
        username = user.username if user else ""
    return {
        "kind": actor.kind,
        "name": name,
        "username": username,
        "roles": roles,
        "patient_account_id": None,
        "managed_patient_ids": [],
    }
