"""Staff pages: one patient's chronic-disease profile (慢病档案) and enrolment (建档).

``/chronic/patients/<id>/``: the registries with status, responsible doctor and next due date; the
follow-up history (newest first); open referrals; a small BP/glucose trend (ECharts, served
locally); an enrolment form posted with HTMX. As thin as the API: reads through
``selectors.registries.access_patient_profile`` (audited, out-of-scope = 404), writes through
``services.registries``. Readable at 360 px: tables scroll sideways inside their card.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from yilian.chronic import rules
from yilian.chronic.models import Disease, Registry
from yilian.chronic.selectors import registries as selectors
from yilian.chronic.services import registries as services
from yilian.common import policy
from yilian.common.access import requires
from yilian.common.errors import DomainError
from yilian.common.htmx import is_htmx
from yilian.community.models import Organisation, Staff

MAX_ORG_CHOICES = 400
MAX_DOCTOR_CHOICES = 200


def _orgs_for(actor, patient) -> list[Organisation]:
    """Managing organisations the actor may choose: in scope, the patient's own clinic first."""
    paths = policy.scope_paths(actor, policy.CHRONIC_MANAGE)
    if not paths:
        return []
    q = Q()
    for p in paths:
        q |= Q(path__startswith=p)
    orgs = list(
        Organisation.objects.filter(q, status=Organisation.Status.ACTIVE).order_by("path")[:MAX_ORG_CHOICES]
    )
    orgs.sort(key=lambda o: (o.pk != patient.home_org_id, o.path))
    return orgs


def _doctors_for(orgs: list[Organisation], patient) -> list[Staff]:
    """Active staff of the organisations on the patient's path (clinic, township, county) that the
    actor may choose from: the ones eligible as responsible doctor for a registry at home."""
    on_path = [o.pk for o in orgs if patient.home_org.path.startswith(o.path)]
    return list(
        Staff.objects.filter(organisation_id__in=on_path, is_active=True)
        .select_related("organisation")
        .order_by("-organisation__depth", "name")[:MAX_DOCTOR_CHOICES]
    )


_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class EnrolForm(forms.Form):
    """建档: types and lengths here; the rules (dates, scope, one per disease) in the service."""

    disease = forms.ChoiceField(label=_("病种"), choices=Disease.choices)
    diagnosed_on = forms.DateField(label=_("确诊日期"), widget=_DATE)
    registered_on = forms.DateField(label=_("建档日期"), widget=_DATE)
    diagnosis_source = forms.ChoiceField(label=_("确诊来源"), choices=Registry.DiagnosisSource.choices)
    managing_org_id = forms.TypedChoiceField(label=_("管理机构"), coerce=int)
    responsible_doctor_id = forms.TypedChoiceField(
        label=_("责任医生"), coerce=int, required=False, empty_value=None
    )
    reminder_consent = forms.BooleanField(label=_("同意接收随访短信提醒"), required=False)
    prior_cvd = forms.BooleanField(label=_("既往心肌梗死或脑卒中"), required=False)

    def __init__(self, *args, orgs=(), doctors=(), enrolled=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Offer only the diseases the patient is not managed for yet (the service refuses a second one).
        self.fields["disease"].choices = [c for c in Disease.choices if c[0] not in enrolled]
        self.fields["managing_org_id"].choices = [(o.pk, o.name) for o in orgs]
        self.fields["responsible_doctor_id"].choices = [("", _("暂不指定"))] + [
            (d.pk, f"{d.name}（{d.organisation.name}）") for d in doctors
        ]


class CloseForm(forms.Form):
    """结案: death, moving out or a revoked diagnosis only (失访 is derived, never a close reason)."""

    reason = forms.ChoiceField(label=_("结案原因"), choices=Registry.CloseReason.choices)
    closed_on = forms.DateField(label=_("结案日期"), widget=_DATE)
    note = forms.CharField(label=_("说明"), max_length=180, required=False)


def _enrol_form(actor, patient, data=None, enrolled=()) -> EnrolForm:
    orgs = _orgs_for(actor, patient)
    today = timezone.localdate()
    initial = {"registered_on": today, "managing_org_id": orgs[0].pk if orgs else None}
    return EnrolForm(data, orgs=orgs, doctors=_doctors_for(orgs, patient), enrolled=enrolled, initial=initial)


def _followup_url(patient_id: int) -> str | None:
    """The village doctor's follow-up form (area D), when that page exists."""
    try:
        return reverse("chronic:followup", args=[patient_id])
    except NoReverseMatch:
        return None


@never_cache
@require_GET
@requires(policy.CHRONIC_MANAGE)
def patient_profile(request, patient_id: int):
    """患者慢病档案 (audited as ``patient.view``, reason ``chronic_profile``)."""
    profile = selectors.access_patient_profile(request.actor, patient_id, purpose="chronic_profile")
    today = timezone.localdate()
    referral_ids = selectors.referral_ids_by_follow_up([fu.pk for fu in profile.follow_ups])
    for fu in profile.follow_ups:
        fu.referral_id = referral_ids.get(fu.pk)
        fu.reason_labels = [rules.REASON_LABELS.get(r, r) for r in fu.referral_reasons]
        fu.symptom_labels = [rules.SYMPTOM_LABELS.get(s, s) for s in fu.symptoms]
    for registry in profile.registries:
        registry.close_form = CloseForm(prefix=f"close{registry.pk}", initial={"closed_on": today})
        registry.days_overdue = (
            rules.days_overdue(registry.next_follow_up_on, today)
            if registry.status == Registry.Status.ACTIVE
            else None
        )
    active = set(profile.active_diseases)
    context = {
        "patient": profile.patient,
        "age": rules.age_on(profile.patient.birth_date, today),
        "profile": profile,
        "trend": selectors.trend_points(profile.follow_ups),
        "form": _enrol_form(request.actor, profile.patient, enrolled=active),
        "may_enrol": len(active) < len(Disease.values),
        "followup_url": _followup_url(patient_id) if active else None,
        "today": today,
    }
    return render(request, "chronic/registries/profile.html", context)


@require_POST
@requires(policy.CHRONIC_MANAGE)
def enrol(request, patient_id: int):
    """建档 from the profile page (HTMX form; without HTMX, post/redirect/get)."""
    profile = selectors.access_patient_profile(request.actor, patient_id, purpose="enrol")
    form = _enrol_form(request.actor, profile.patient, request.POST)
    error = None
    if form.is_valid():
        try:
            services.enrol(actor=request.actor, patient_id=patient_id, **form.cleaned_data)
        except DomainError as exc:
            if exc.status == 404:
                raise
            error = exc
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc.message))
        else:
            messages.success(request, _("已建档。"))
            target = reverse("chronic:patient-profile", args=[patient_id])
            if is_htmx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
    template = (
        "chronic/registries/profile.html#enrol-form" if is_htmx(request) else "chronic/registries/enrol.html"
    )
    return render(request, template, {"form": form, "error": error, "patient": profile.patient}, status=422)


@require_POST
@requires(policy.CHRONIC_MANAGE)
def close(request, registry_id: int):
    """结案 from the profile page (HTMX form per registry; without HTMX, post/redirect/get)."""
    registry = selectors.access_registry(request.actor, registry_id, purpose="close")
    form = CloseForm(request.POST, prefix=f"close{registry.pk}")
    error = None
    if form.is_valid():
        try:
            services.close_registry(actor=request.actor, registry_id=registry.pk, **form.cleaned_data)
        except DomainError as exc:
            if exc.status == 404:
                raise
            error = exc
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc.message))
        else:
            messages.success(request, _("已结案。"))
            target = reverse("chronic:patient-profile", args=[registry.patient_id])
            if is_htmx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
    registry.close_form = form
    context = {"r": registry, "close_error": error, "patient": registry.patient}
    template = (
        "chronic/registries/profile.html#close-form" if is_htmx(request) else "chronic/registries/close.html"
    )
    return render(request, template, context, status=422)


urlpatterns = [
    path("patients/<int:patient_id>/", patient_profile, name="patient-profile"),
    path("patients/<int:patient_id>/enrol/", enrol, name="patient-enrol"),
    path("registries/<int:registry_id>/close/", close, name="registry-close"),
]
