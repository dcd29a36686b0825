"""Pages of the medical-community structure: the organisation tree and an organisation's detail.

As thin as ``api.py``: forms parse, ``community.services`` decides. The tree renders the root and
its direct children; deeper levels (hundreds of village clinics) load with HTMX when a node opens.
HTMX form posts re-render their own panel with errors inline, or redirect (``HX-Redirect``) on success.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from yilian.common import labels, policy
from yilian.common.access import requires
from yilian.common.errors import DomainError
from yilian.common.htmx import is_htmx
from yilian.community import selectors, services
from yilian.community.forms import (
    DepartmentForm,
    OrganisationEditForm,
    OrganisationForm,
    RoleForm,
    StaffForm,
)
from yilian.community.models import Organisation, Staff

STAFF_PER_PAGE = 50

KIND_CSS = {
    Organisation.Kind.COUNTY_HOSPITAL: "county",
    Organisation.Kind.TOWNSHIP_CENTRE: "township",
    Organisation.Kind.COMMUNITY_CENTRE: "community",
    Organisation.Kind.VILLAGE_CLINIC: "village",
}


def _capabilities(actor) -> dict:
    return {
        "can_manage_orgs": policy.allows(actor, policy.ORG_MANAGE),
        "can_manage_staff": policy.allows(actor, policy.STAFF_MANAGE),
        "can_manage_roles": policy.allows(actor, policy.SECURITY_MANAGE),
    }


def _attach_error(form, error: DomainError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, str(error.message))


def _done(request, message: str, url: str):
    messages.success(request, message)
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@requires(policy.ORG_VIEW)
@require_GET
def org_tree(request):
    """The tree: roots and their direct children; deeper levels load lazily (``org_children``)."""
    roots = list(selectors.children_with_counts(None))
    for root in roots:
        root.kids = list(selectors.children_with_counts(root))
    totals = dict(Organisation.objects.values_list("kind").annotate(n=Count("pk")).order_by())
    summary = [(label, totals.get(kind, 0), KIND_CSS[kind]) for kind, label in Organisation.Kind.choices]
    staff_total = Staff.objects.filter(is_active=True).count()
    return render(
        request,
        "community/org_tree.html",
        {
            "roots": roots,
            "summary": summary,
            "staff_total": staff_total,
            "kind_css": KIND_CSS,
            **_capabilities(request.actor),
        },
    )


@requires(policy.ORG_VIEW)
@require_GET
def org_children(request, code: str):
    """HTMX fragment: the direct children of one organisation, each expandable in turn."""
    org = selectors.organisation_by_code(code, as_input=False)
    return render(
        request,
        "community/_org_nodes.html",
        {"nodes": selectors.children_with_counts(org), "kind_css": KIND_CSS},
    )


def _detail_context(request, org: Organisation, **forms) -> dict:
    actor = request.actor
    departments = list(selectors.departments_of(org))
    query = (request.GET.get("q") or "").strip()[:40]
    staff_qs = selectors.staff_visible_to(actor).filter(organisation=org)
    if query:
        staff_qs = staff_qs.filter(Q(name__icontains=query) | Q(user__username__icontains=query))
    staff_page = Paginator(staff_qs, STAFF_PER_PAGE).get_page(request.GET.get("page"))
    caps = _capabilities(actor)
    context = {
        "org": org,
        "ancestors": selectors.ancestors(org),
        "children": list(selectors.children_with_counts(org)),
        "departments": departments,
        "staff": staff_page.object_list,
        "staff_page": staff_page,
        "staff_query": query,
        "staff_in_scope": policy.covers(actor, policy.ORG_VIEW, org.path),
        "kind_css": KIND_CSS,
        "role_labels": labels.ROLE_LABELS,
        **caps,
    }
    can_add_child = caps["can_manage_orgs"] and policy.covers(actor, policy.ORG_MANAGE, org.path)
    if can_add_child and OrganisationForm(parent=org).fields["kind"].choices:
        context["org_form"] = forms.get("org_form") or OrganisationForm(parent=org)
    if can_add_child:
        context["dept_form"] = forms.get("dept_form") or DepartmentForm()
        context["edit_form"] = forms.get("edit_form") or OrganisationEditForm.for_organisation(org)
    if caps["can_manage_staff"] and policy.covers(actor, policy.STAFF_MANAGE, org.path):
        context["staff_form"] = forms.get("staff_form") or StaffForm(departments=departments)
    if caps["can_manage_roles"] and policy.covers(actor, policy.SECURITY_MANAGE, org.path):
        context["role_form"] = RoleForm(initial={"organisation_code": org.code})
    return context


@requires(policy.ORG_VIEW)
@require_GET
def org_detail(request, code: str):
    org = selectors.organisation_by_code(code, as_input=False)
    return render(request, "community/org_detail.html", _detail_context(request, org))


def _form_post(request, code: str, form_name: str, make_form, save, partial: str):
    """Shared shape of the three 'add' panels: validate, call the service, answer."""
    org = selectors.organisation_by_code(code, as_input=False)
    form = make_form(org)
    if form.is_valid():
        try:
            message = save(org, form.cleaned_data)
        except DomainError as error:
            _attach_error(form, error)
        else:
            return _done(request, message, reverse("community:org-detail", args=[org.code]))
    context = _detail_context(request, org, **{form_name: form})
    if is_htmx(request):
        return render(request, f"community/org_detail.html#{partial}", context)
    return render(request, "community/org_detail.html", context, status=422)


@requires(policy.ORG_MANAGE)
@require_POST
def org_create(request, code: str):
    """Add a subordinate organisation under ``code`` (system administrator)."""

    def save(parent, data):
        org = services.create_organisation(
            actor=request.actor,
            parent_code=parent.code,
            **{k: v for k, v in data.items() if k != "parent_code"},
        )
        return _("已新增机构：%(name)s（%(code)s）") % {"name": org.name, "code": org.code}

    return _form_post(
        request, code, "org_form", lambda org: OrganisationForm(request.POST, parent=org), save, "org-form"
    )


@requires(policy.ORG_MANAGE)
@require_POST
def org_update(request, code: str):
    """Edit an organisation's descriptive fields and status (system administrator)."""

    def save(org, data):
        org = services.update_organisation(actor=request.actor, code=org.code, **data)
        return _("已保存机构信息：%(name)s") % {"name": org.name}

    return _form_post(
        request,
        code,
        "edit_form",
        lambda org: OrganisationEditForm.for_organisation(org, request.POST),
        save,
        "edit-form",
    )


@requires(policy.ORG_MANAGE)
@require_POST
def department_create(request, code: str):
    def save(org, data):
        dept = services.create_department(actor=request.actor, organisation_code=org.code, **data)
        return _("已新增科室：%(name)s") % {"name": dept.name}

    return _form_post(request, code, "dept_form", lambda org: DepartmentForm(request.POST), save, "dept-form")


@requires(policy.STAFF_MANAGE)
@require_POST
def staff_create(request, code: str):
    def make(org):
        return StaffForm(request.POST, departments=selectors.departments_of(org))

    def save(org, data):
        staff = services.create_staff(actor=request.actor, organisation_code=org.code, **data)
        return _("已新增人员：%(name)s。请安全管理员为其分配角色后方可使用系统。") % {"name": staff.name}

    return _form_post(request, code, "staff_form", make, save, "staff-form")


def _roles_cell(request, staff_id: int, *, form=None, error: str = "", status: int = 200):
    staff = selectors.staff_for(request.actor, staff_id)
    context = {
        "member": staff,
        "role_form": form or RoleForm(initial={"organisation_code": staff.organisation.code}),
        "role_error": error,
        "role_labels": labels.ROLE_LABELS,
        **_capabilities(request.actor),
    }
    return render(request, "community/_staff_roles.html", context, status=status)


@requires(policy.SECURITY_MANAGE)
@require_POST
def role_assign(request, staff_id: int):
    """Grant a role to a staff member (security administrator; 三员分立 enforced by the service)."""
    form = RoleForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.assign_role(
                actor=request.actor,
                staff=staff_id,
                role=form.cleaned_data["role"],
                organisation=form.cleaned_data["organisation_code"],
            )
        except DomainError as exc:
            error = str(exc.message)
        else:
            form = None
    else:
        error = "；".join(str(e) for errors in form.errors.values() for e in errors)
    return _roles_cell(request, staff_id, form=form, error=error)


@requires(policy.SECURITY_MANAGE)
@require_POST
def role_revoke(request, staff_id: int, role_id: int):
    error = ""
    try:
        services.revoke_role(actor=request.actor, staff=staff_id, assignment_id=role_id)
    except DomainError as exc:
        error = str(exc.message)
    return _roles_cell(request, staff_id, error=error)


@requires(policy.STAFF_MANAGE)
@require_POST
def staff_status(request, staff_id: int):
    """Mark a member of staff as left or back (system administrator), then show the page again."""
    member = selectors.staff_for(request.actor, staff_id)
    active = request.POST.get("active") == "1"
    try:
        services.set_staff_active(actor=request.actor, staff=member, active=active)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        done = _("%(name)s 已恢复在职。") if active else _("%(name)s 已标记为离职，不能再登录。")
        messages.success(request, done % {"name": member.name})
    url = reverse("community:org-detail", args=[member.organisation.code]) + "#staff"
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
