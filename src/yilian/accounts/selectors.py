"""Who is asking: turn a session user or an API key into a ``common.policy.Actor``."""

from __future__ import annotations

import hashlib

from django.utils import timezone

from yilian.accounts.models import ApiKey, User
from yilian.common.policy import ANONYMOUS, INTEGRATION, Actor, Assignment


def actor_for_user(user: User | None) -> Actor:
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    if user.kind == User.Kind.PATIENT:
        account = getattr(user, "patient_account", None)
        if account is None:
            return ANONYMOUS
        from yilian.patients.models import FamilyLink  # patients depends on accounts, not the reverse

        managed = frozenset(FamilyLink.objects.filter(account=account).values_list("patient_id", flat=True))
        return Actor(
            kind="patient",
            user_id=user.pk,
            label=f"patient-account:{account.pk}",
            patient_account_id=account.pk,
            managed_patient_ids=managed,
        )
    staff = getattr(user, "staff", None)
    if staff is None or not staff.is_active:
        return Actor(kind="staff", user_id=user.pk, label=user.username)
    assignments = tuple(
        Assignment(role=r.role, org_id=r.organisation_id, org_path=r.organisation.path)
        for r in staff.roles.select_related("organisation").order_by("id")
    )
    return Actor(
        kind="staff",
        user_id=user.pk,
        label=f"{user.username}/{staff.name}",
        assignments=assignments,
        staff_id=staff.pk,
    )


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def actor_for_api_key(raw: str) -> Actor | None:
    """Keys look like ``yl_<prefix>_<secret>``; an unknown, revoked or malformed key gives ``None``."""
    parts = raw.strip().split("_")
    if len(parts) != 3 or parts[0] != "yl":
        return None
    key = (
        ApiKey.objects.select_related("organisation").filter(prefix=parts[1], revoked_at__isnull=True).first()
    )
    if key is None or key.key_hash != hash_api_key(raw.strip()):
        return None
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return Actor(
        kind="system",
        label=f"api-key:{key.name}",
        assignments=(
            Assignment(role=INTEGRATION, org_id=key.organisation_id, org_path=key.organisation.path),
        ),
        api_key_id=key.pk,
    )
