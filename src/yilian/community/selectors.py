"""Reads of the community structure: organisations, departments and staff.

Organisations and departments are reference data that every holder of ``policy.ORG_VIEW`` may
read; staff lists are scoped to the subtrees where the reader holds ``ORG_VIEW``
(``policy.scope_paths``, the materialised-path prefix rule of ``common.policy``).
"""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from yilian.common import labels, policy
from yilian.common.policy import Actor
from yilian.community import rules
from yilian.community.errors import OrganisationNotFound, UnknownOrganisation, UnknownStaff
from yilian.community.models import Department, Organisation, RoleAssignment, Staff


def organisation_by_code(code: str, *, as_input: bool = True, field: str = "code") -> Organisation:
    """The organisation with ``code`` (case-insensitive input), or ``UNKNOWN_ORGANISATION``.

    ``as_input`` (a code given in a request body) gives 422; a code in a URL gives 404.
    The message names the code so that the caller sees which one is wrong.
    """
    normalised = rules.normalise_code(code or "")
    org = Organisation.objects.filter(code=normalised).first()
    if org is None:
        error = UnknownOrganisation if as_input else OrganisationNotFound
        raise error(
            _("机构编码 %(code)s 不存在。") % {"code": normalised or code},
            field=field if as_input else None,
            organisation_code=normalised or code,
        )
    return org


def subtree(org: Organisation) -> QuerySet[Organisation]:
    """The organisation and everything under it (materialised-path prefix)."""
    return Organisation.objects.filter(path__startswith=org.path)


def with_counts(qs: QuerySet[Organisation]) -> QuerySet[Organisation]:
    """Annotate ``child_count`` (direct child organisations) and ``staff_count`` (active staff
    of the organisation itself) with correlated subqueries: one query, no N+1, no row fan-out."""
    children = (
        Organisation.objects.filter(parent=OuterRef("pk"))
        .order_by()
        .values("parent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    staff = (
        Staff.objects.filter(organisation=OuterRef("pk"), is_active=True)
        .order_by()
        .values("organisation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return qs.annotate(
        child_count=Coalesce(Subquery(children, output_field=IntegerField()), Value(0)),
        staff_count=Coalesce(Subquery(staff, output_field=IntegerField()), Value(0)),
    )


def children_with_counts(org: Organisation | None) -> QuerySet[Organisation]:
    """Direct children of ``org`` (the roots when ``None``), each with its counts, in path order."""
    qs = (
        Organisation.objects.filter(parent=org)
        if org is not None
        else Organisation.objects.filter(parent__isnull=True)
    )
    return with_counts(qs).order_by("path")


def organisations_with_counts() -> QuerySet[Organisation]:
    """Every organisation with its counts, in path (= tree pre-order) order."""
    return with_counts(Organisation.objects.all()).order_by("path")


def ancestors(org: Organisation) -> list[Organisation]:
    """The chain from the root down to ``org``'s parent (for breadcrumbs), in one query."""
    prefixes = []
    segments = org.path.split(".")[:-1]
    for i in range(1, len(segments)):
        prefixes.append(".".join(segments[:i]) + ".")
    if not prefixes:
        return []
    return list(Organisation.objects.filter(path__in=prefixes).order_by("path"))


def departments_of(org: Organisation) -> QuerySet[Department]:
    staff = (
        Staff.objects.filter(department=OuterRef("pk"), is_active=True)
        .order_by()
        .values("department")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Department.objects.filter(organisation=org)
        .annotate(staff_count=Coalesce(Subquery(staff, output_field=IntegerField()), Value(0)))
        .order_by("code")
    )


def department_by_code(org: Organisation, code: str) -> Department | None:
    return Department.objects.filter(organisation=org, code=rules.normalise_code(code)).first()


def _scope_q(actor: Actor, permission: str, field: str) -> Q | None:
    paths = policy.scope_paths(actor, permission)
    if not paths:
        return None
    q = Q()
    for prefix in paths:
        q |= Q(**{f"{field}__startswith": prefix})
    return q


def staff_visible_to(actor: Actor) -> QuerySet[Staff]:
    """Staff of the subtrees where ``actor`` holds ``ORG_VIEW`` (none for everyone else),
    with organisation, department and role assignments loaded in a fixed number of queries."""
    q = _scope_q(actor, policy.ORG_VIEW, "organisation__path")
    if q is None:
        return Staff.objects.none()
    return (
        Staff.objects.filter(q)
        .select_related("organisation", "department", "user")
        .prefetch_related(
            Prefetch(
                "roles",
                queryset=RoleAssignment.objects.select_related("organisation").order_by("id"),
            )
        )
        .order_by("organisation__path", "name", "pk")
    )


def staff_for(actor: Actor, staff_id: int) -> Staff:
    """One staff member visible to ``actor``; missing and out of scope alike give ``UNKNOWN_STAFF``."""
    staff = staff_visible_to(actor).filter(pk=staff_id).first()
    if staff is None:
        raise UnknownStaff()
    return staff


def role_labels(staff: Staff) -> list[str]:
    return [labels.role_label(r.role) for r in staff.roles.all()]
