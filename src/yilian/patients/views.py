"""Staff pages for patients: the search desk, the profile, registration and merging.

As thin as ``api.py``: every page calls the same services and selectors; HTMX requests get the
template partial (django-template-partials) instead of the whole page. Refusals and domain errors
are rendered by ``common.middleware.DomainErrorMiddleware``.
"""

from __future__ import annotations

import time

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from yilian.common import masking, policy
from yilian.common.access import requires
from yilian.common.errors import DomainError
from yilian.common.htmx import is_htmx
from yilian.community.models import Organisation
from yilian.patients import selectors, services
from yilian.patients.models import Patient

ACTION_LABELS = {
    "patient.view": _("查阅档案"),
    "patient.register": _("建档"),
    "patient.update": _("修改信息"),
    "patient.contact.add": _("添加联系人"),
    "patient.merge": _("合并档案（保留）"),
    "patient.merged_away": _("合并档案（注销）"),
    "patient.write": _("修改（被拒绝）"),
}
REASON_LABELS = {
    "profile": _("查看档案"),
    "reveal_id": _("显示完整证件号"),
    "reveal_phone": _("显示完整手机号"),
    "card_scan": _("扫码识别"),
    "api": _("接口调用"),
    "merge_preview": _("合并预览"),
    "edit": _("修改信息"),
    "card_presented": _("扫码后查看"),
}


PRESENCE_SECONDS = 15 * 60
_PRESENCE_KEY = "yl_presented_patients"


def remember_presented(request, patient_id: int) -> None:
    """After a verified card scan (``patients.card_views``), let this session open the record for a
    while although the patient may belong to another organisation: the patient is at the desk
    (access.md HC-1). Every page opened this way is still audited."""
    now = int(time.time())
    grants = {k: v for k, v in request.session.get(_PRESENCE_KEY, {}).items() if v > now}
    grants[str(patient_id)] = now + PRESENCE_SECONDS
    request.session[_PRESENCE_KEY] = grants


def _presented(request, patient_id: int) -> bool:
    return request.session.get(_PRESENCE_KEY, {}).get(str(patient_id), 0) > time.time()


def _open(request, patient_id: int, purpose: str) -> Patient:
    """The record gate for pages: org scope, or a card presented at this desk moments ago."""
    if _presented(request, patient_id):
        return selectors.access_presented_patient(request.actor, patient_id, purpose=purpose)
    return selectors.access_patient(request.actor, patient_id, purpose=purpose)


def _orgs_in_scope(actor, permission: str):
    paths = policy.scope_paths(actor, permission)
    if not paths:
        return Organisation.objects.none()
    q = Q()
    for p in paths:
        q |= Q(path__startswith=p)
    return Organisation.objects.filter(q, status=Organisation.Status.ACTIVE).order_by("path")


LIVE_FIELDS = ("name", "id_type", "id_number", "sex", "birth_date", "phone")


class PatientForm(forms.Form):
    """Registration form: types and lengths here; the identity rules in ``patients.rules``."""

    name = forms.CharField(label=_("姓名"), max_length=50)
    id_type = forms.ChoiceField(label=_("证件类型"), choices=Patient.IdType.choices, initial="resident_id")
    id_number = forms.CharField(label=_("证件号码"), max_length=30)
    sex = forms.ChoiceField(
        label=_("性别"), choices=[("", _("由身份证号推出")), *Patient.Sex.choices], required=False
    )
    birth_date = forms.DateField(
        label=_("出生日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    phone = forms.CharField(label=_("手机号"), max_length=20, required=False)
    home_org_code = forms.ChoiceField(label=_("签约/管理机构"))
    nationality = forms.CharField(label=_("国籍"), max_length=3, initial="CHN")
    ethnicity = forms.CharField(label=_("民族"), max_length=20, required=False, initial="汉族")
    province = forms.CharField(label=_("省"), max_length=30, required=False)
    city = forms.CharField(label=_("市"), max_length=30, required=False)
    county = forms.CharField(label=_("县（区）"), max_length=30, required=False)
    township = forms.CharField(label=_("乡镇（街道）"), max_length=30, required=False)
    village = forms.CharField(label=_("村（社区）"), max_length=30, required=False)
    address_detail = forms.CharField(label=_("详细地址"), max_length=120, required=False)
    realname_verified = forms.BooleanField(label=_("已核验身份证件原件"), required=False)

    def __init__(self, *args, orgs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["home_org_code"].choices = [(o.code, o.name) for o in orgs]
        for name in LIVE_FIELDS:
            self.fields[name].widget.attrs["class"] = "live"
        self.fields["id_number"].widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})


class ContactForm(forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=50)
    relationship = forms.CharField(label=_("关系"), max_length=20)
    phone = forms.CharField(label=_("电话"), max_length=20)


@requires(policy.PATIENT_SEARCH)
def staff_home(request):
    """患者检索: one box for ID number, mobile, pinyin initials or name; results update as one types."""
    q = request.GET.get("q", "")[:64]
    result = selectors.search_patients(request.actor, q) if q.strip() else None
    context = {"q": q, "result": result, "may_register": policy.allows(request.actor, policy.PATIENT_CREATE)}
    if is_htmx(request):
        return render(request, "patients/staff/home.html#results", context)
    context["recent"] = selectors.recent_patients(request.actor)
    context["may_merge"] = policy.allows(request.actor, policy.PATIENT_MERGE)
    return render(request, "patients/staff/home.html", context)


@never_cache
@requires(policy.PATIENT_VIEW)
def detail(request, patient_id: int):
    """患者档案: demographics (identifiers masked until asked for), contacts, family, card, access log."""
    patient = _open(request, patient_id, "profile")
    log = selectors.access_log(patient)
    for event in log:
        event.action_label = ACTION_LABELS.get(event.action, event.action)
        event.reason_label = REASON_LABELS.get(event.reason, event.reason)
    contacts = selectors.contacts_of(patient)
    for c in contacts:
        c.phone_masked = masking.mask_phone(c.phone)
    links = selectors.family_links_of(patient)
    for link in links:
        link.phone_masked = masking.mask_phone(link.account.phone)
    context = {
        "patient": patient,
        "age": selectors.age_on(patient.birth_date),
        "id_masked": selectors.masked_id(patient.id_type, patient.id_head, patient.id_last4),
        "phone_masked": selectors.masked_phone(patient.phone_last4),
        "contacts": contacts,
        "links": links,
        "cards": selectors.cards_of(patient),
        "log": log,
        "may_update": policy.covers(request.actor, policy.PATIENT_UPDATE, patient.home_org.path),
        "contact_form": ContactForm(),
    }
    return render(request, "patients/staff/detail.html", context)


@never_cache
@require_POST
@requires(policy.PATIENT_VIEW)
def reveal_id(request, patient_id: int):
    """显示完整证件号: a deliberate, audited act (reason ``reveal_id``); returns the fragment only."""
    patient = _open(request, patient_id, "reveal_id")
    return render(request, "patients/staff/detail.html#revealed", {"value": patient.id_number})


@never_cache
@require_POST
@requires(policy.PATIENT_VIEW)
def reveal_phone(request, patient_id: int):
    """显示完整手机号: audited like the ID number (reason ``reveal_phone``)."""
    patient = _open(request, patient_id, "reveal_phone")
    return render(request, "patients/staff/detail.html#revealed", {"value": patient.phone or "—"})


@require_POST
@requires(policy.PATIENT_UPDATE)
def contact_add(request, patient_id: int):
    form = ContactForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.add_contact(actor=request.actor, patient_id=patient_id, **form.cleaned_data)
        except DomainError as exc:
            if exc.status == 404:
                raise
            error = exc
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc.message))
        else:
            messages.success(request, _("已添加联系人。"))
            if is_htmx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = reverse("patients:detail", args=[patient_id])
                return response
            return redirect("patients:detail", patient_id=patient_id)
    return render(
        request,
        "patients/staff/detail.html#contact-form",
        {"contact_form": form, "error": error, "patient": {"pk": patient_id}},
        status=422,
    )


def _form_context(request, form, patient=None):
    return {"form": form, "patient": patient}


@require_http_methods(["GET", "POST"])
@requires(policy.PATIENT_CREATE)
def register(request):
    """建档: one form; errors are shown next to their field, live (HTMX) and on save."""
    orgs = list(_orgs_in_scope(request.actor, policy.PATIENT_CREATE))
    if request.method == "POST":
        form = PatientForm(request.POST, orgs=orgs)
        if form.is_valid():
            try:
                patient = services.register_patient(actor=request.actor, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
                existing = exc.extra.get("existing_id")
                ctx = _form_context(request, form) | {"existing_id": existing}
                return render(request, "patients/staff/register.html", ctx, status=exc.status)
            messages.success(request, _("建档成功，已发放电子健康卡。"))
            return redirect("patients:detail", patient_id=patient.pk)
        return render(request, "patients/staff/register.html", _form_context(request, form), status=422)
    own = next((o for o in orgs if o.pk == request.actor.primary_org_id), orgs[0] if orgs else None)
    initial = {}
    if own is not None:
        initial = {
            "home_org_code": own.code,
            "province": own.province,
            "city": own.city,
            "county": own.county,
        }
    form = PatientForm(initial=initial, orgs=orgs)
    return render(request, "patients/staff/register.html", _form_context(request, form))


@never_cache
@require_http_methods(["GET", "POST"])
@requires(policy.PATIENT_UPDATE)
def edit(request, patient_id: int):
    """修改患者信息: the registration form, filled in; only changed fields are written and audited."""
    orgs = list(_orgs_in_scope(request.actor, policy.PATIENT_UPDATE))
    if request.method == "POST":
        form = PatientForm(request.POST, orgs=orgs)
        if form.is_valid():
            changes = dict(form.cleaned_data)
            changes["sex"] = changes["sex"] or None
            try:
                services.update_patient(actor=request.actor, patient_id=patient_id, **changes)
            except DomainError as exc:
                if exc.status == 404:
                    raise
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
                patient = {"pk": patient_id}
                return render(
                    request,
                    "patients/staff/register.html",
                    _form_context(request, form, patient),
                    status=exc.status,
                )
            messages.success(request, _("已保存修改。"))
            return redirect("patients:detail", patient_id=patient_id)
        patient = {"pk": patient_id}
        return render(
            request, "patients/staff/register.html", _form_context(request, form, patient), status=422
        )
    patient = selectors.access_patient(request.actor, patient_id, purpose="edit")
    if patient.status != Patient.Status.ACTIVE or not policy.covers(
        request.actor, policy.PATIENT_UPDATE, patient.home_org.path
    ):
        return redirect("patients:detail", patient_id=patient_id)
    if all(o.pk != patient.home_org_id for o in orgs):
        orgs.append(patient.home_org)
    initial = {f: getattr(patient, f) for f in PatientForm.base_fields if hasattr(patient, f)}
    initial["home_org_code"] = patient.home_org.code
    form = PatientForm(initial=initial, orgs=orgs)
    return render(request, "patients/staff/register.html", _form_context(request, form, patient))


@require_POST
@requires(policy.PATIENT_CREATE)
def register_check(request):
    """Live validation of the registration form (HTMX): what is wrong, and what the ID number says."""
    form = PatientForm(request.POST, orgs=_orgs_in_scope(request.actor, policy.PATIENT_CREATE))
    form.is_valid()
    data = {k: form.cleaned_data.get(k) for k in LIVE_FIELDS}
    editing = request.POST.get("patient_id", "")
    problems, derived = selectors.registration_problems(
        request.actor, data, editing_id=int(editing) if editing.isdigit() else None
    )
    for field, errs in form.errors.items():
        if field in data and request.POST.get(field):
            problems.setdefault(field, errs[0])
    return render(
        request,
        "patients/staff/register.html#checks",
        {"problems": problems, "derived": derived, "live_fields": LIVE_FIELDS},
    )


@require_http_methods(["GET", "POST"])
@requires(policy.PATIENT_MERGE)
def merge(request):
    """合并重复档案 (coordinators): pick the record to keep and the duplicate, preview, give a reason."""
    context: dict = {"q": request.GET.get("q", "")[:64]}
    if request.method == "POST":
        try:
            survivor_id = int(request.POST.get("survivor_id", ""))
            duplicate_id = int(request.POST.get("duplicate_id", ""))
        except ValueError:
            context["error"] = _("请先选择保留档案和重复档案。")
        else:
            try:
                outcome = services.merge_patients(
                    actor=request.actor,
                    survivor_id=survivor_id,
                    duplicate_id=duplicate_id,
                    reason=request.POST.get("reason", "")[:500],
                )
            except DomainError as exc:
                context["error"] = exc.message
            else:
                messages.success(request, _("已合并：重复档案的全部记录已转入保留档案。"))
                return redirect("patients:detail", patient_id=outcome.survivor.pk)
        status = 422
    else:
        status = 200
    if context["q"].strip():
        context["result"] = selectors.search_patients(request.actor, context["q"])
    if is_htmx(request) and request.method == "GET":
        return render(request, "patients/staff/merge.html#candidates", context)
    return render(request, "patients/staff/merge.html", context, status=status)


@requires(policy.PATIENT_MERGE)
def merge_preview(request):
    """Side by side: the two records (masked) and how many linked records the duplicate carries."""
    try:
        ids = [int(request.GET.get("survivor_id", "")), int(request.GET.get("duplicate_id", ""))]
    except ValueError:
        return render(request, "patients/staff/merge.html#preview", {"incomplete": True})
    sides = []
    for pid in ids:
        p = selectors.access_patient(request.actor, pid, purpose="merge_preview")
        sides.append(
            {
                "patient": p,
                "id_masked": selectors.masked_id(p.id_type, p.id_head, p.id_last4),
                "phone_masked": selectors.masked_phone(p.phone_last4),
                "counts": selectors.related_counts(p),
            }
        )
    return render(
        request,
        "patients/staff/merge.html#preview",
        {"survivor": sides[0], "duplicate": sides[1], "same": ids[0] == ids[1]},
    )
