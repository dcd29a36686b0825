"""Template context for every page: product version and what the signed-in actor may open."""

from django.conf import settings

from yilian import __version__
from yilian.common import policy

ALL_PERMISSIONS = sorted({p for perms in policy.ROLE_PERMISSIONS.values() for p in perms})


def product(request):
    actor = getattr(request, "actor", None)
    can: dict[str, bool] = {}
    if actor is not None and actor.is_authenticated and actor.is_staff_member:
        # ``{% if can.patient_search %}``: navigation shows only what the policy allows.
        can = {p.replace(".", "_"): policy.allows(actor, p) for p in ALL_PERMISSIONS}
    return {
        "YILIAN_VERSION": __version__,
        "CARD_REFRESH_SECONDS": settings.CARD_TOKEN_REFRESH_SECONDS,
        "can": can,
    }
