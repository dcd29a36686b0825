"""Chronic-disease pages: screening at a village free clinic (义诊筛查) and family-doctor contracts.

Phone-first (a village doctor's cheap phone at a free clinic): small server-rendered pages, big
inputs (``inputmode="numeric"``), one live search box (the patients desk pattern, HTMX), no other
JavaScript. Forms carry a ``client_uuid`` so that a resubmission after a lost answer records once.
As thin as the API: every write calls the same service; a ``DomainError`` is shown on the form it
came from, with the values kept.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from yilian.chronic import rules
from yilian.chronic.models import Disease, FamilyDoctorContract, Registry, ScreeningReading
from yilian.chronic.selectors import screening as selectors
from yilian.chronic.services import contracts as contract_services
from yilian.chronic.services import screening as services
from yilian.common import policy
from yilian.common.access import requires
from yilian.common.errors import DomainError, InvalidInput
from yilian.common.htmx import is_htmx
from yilian.patients import selectors as patient_selectors

NUMERIC = {"inputmode": "numeric", "pattern": "[0-9]*", "autocomplete": "off", "class": "big"}
DECIMAL = {"inputmode": "decimal", "autocomplete": "off", "class": "big"}
DATE = {"type": "date"}


def _page_number(request) -> int:
    try:
        return max(1, min(int(request.GET.get("page", "1")), 100000))
    except ValueError:
        return 1


def _reading(label) -> forms.DecimalField:
    """An optional one-decimal reading (glucose, height, weight, waist) with a numeric keypad."""
    return forms.DecimalField(
        label=label, required=False, max_digits=5, decimal_places=1, widget=forms.TextInput(attrs=DECIMAL)
    )


class ScreeningForm(forms.Form):
    """Types and lengths here; plausibility (ranges, units, dates) in the service and rules."""

    taken_on = forms.DateField(label=_("测量日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    setting = forms.ChoiceField(label=_("场景"), choices=ScreeningReading.Setting.choices)
    sbp = forms.IntegerField(
        label=_("收缩压（高压）mmHg"), required=False, widget=forms.NumberInput(attrs=NUMERIC)
    )
    dbp = forms.IntegerField(
        label=_("舒张压（低压）mmHg"), required=False, widget=forms.NumberInput(attrs=NUMERIC)
    )
    fpg_mmol = _reading(_("空腹血糖 mmol/L"))
    glucose_any_mmol = _reading(_("随机血糖 mmol/L"))
    height_cm = _reading(_("身高 cm"))
    weight_kg = _reading(_("体重 kg"))
    waist_cm = _reading(_("腰围 cm"))
    ecg_abnormal = forms.NullBooleanField(
        label=_("心电图"),
        required=False,
        widget=forms.Select(choices=[("unknown", _("未做")), ("false", _("正常")), ("true", _("异常"))]),
    )
    family_history_htn = forms.BooleanField(label=_("家里有人得高血压"), required=False)
    family_history_dm = forms.BooleanField(label=_("家里有人得糖尿病"), required=False)
    high_salt_diet = forms.BooleanField(label=_("口味重、吃得咸"), required=False)
    heavy_drinking = forms.BooleanField(label=_("每天喝白酒二两以上"), required=False)
    smoking = forms.BooleanField(label=_("吸烟"), required=False)
    client_uuid = forms.UUIDField(widget=forms.HiddenInput)


def _search(request, q: str):
    return patient_selectors.search_patients(request.actor, q) if q.strip() else None


@requires(policy.CHRONIC_MANAGE)
def screening_home(request):
    """义诊筛查: find the resident (live search), then screen; what is due today below."""
    q = request.GET.get("q", "")[:64]
    context = {"q": q, "result": _search(request, q), "target": "screening"}
    if is_htmx(request):
        return render(request, "chronic/screening/_search.html", context)
    today = timezone.localdate()
    context["cases"] = selectors.cases_due(request.actor, today, per_page=10)
    context["due_total"] = selectors.screening_due(request.actor, today, per_page=1).total
    context["high_risk_total"] = selectors.high_risk_due(request.actor, today, per_page=1).total
    return render(request, "chronic/screening/home.html", context)


def _patient_context(request, patient, form, *, outcome=None, error=None) -> dict:
    summary = None
    if outcome is not None:
        summary = selectors.describe_screening(outcome.reading, outcome.cases, outcome.referral)
    contracts = selectors.contracts_of(patient)
    readings = selectors.readings_of(patient, limit=10)
    for r in readings:
        r.result_label = _(rules.RESULT_LABELS.get(r.result, r.result))
    return {
        **_patient_head(patient),
        "form": form,
        "outcome": outcome,
        "summary": summary,
        "error": error,
        "readings": readings,
        "cases": selectors.cases_of(patient),
        "registries": [Disease(d).label for d in selectors.active_registries_of(patient)],
        "contract": next((c for c in contracts if c.status == FamilyDoctorContract.Status.ACTIVE), None),
    }


def _patient_head(patient) -> dict:
    return {
        "patient": patient,
        "age": patient_selectors.age_on(patient.birth_date, timezone.localdate()),
        "id_masked": patient_selectors.masked_id(patient.id_type, patient.id_head, patient.id_last4),
    }


def _new_screening_form() -> ScreeningForm:
    return ScreeningForm(
        initial={"taken_on": timezone.localdate(), "setting": "free_clinic", "client_uuid": uuid.uuid4()}
    )


@never_cache
@requires(policy.CHRONIC_MANAGE)
@require_http_methods(["GET", "POST"])
def screening_patient(request, patient_id: int):
    """One resident: the screening form and, after recording, the result in plain Chinese (R1.2–R1.4)."""
    patient = selectors.access_screening_patient(request.actor, patient_id, purpose="screening")
    if request.method == "POST":
        form = ScreeningForm(request.POST)
        if not form.is_valid():
            ctx = _patient_context(request, patient, form)
            return render(request, "chronic/screening/patient.html", ctx, status=422)
        data = form.cleaned_data
        ecg = data.pop("ecg_abnormal")
        org = selectors.default_organisation(request.actor)
        try:
            if org is None:
                raise InvalidInput(_("您没有所属机构，不能记录筛查。"))
            outcome = services.record_screening(
                actor=request.actor, patient_id=patient.pk, organisation_id=org.pk, ecg_abnormal=ecg, **data
            )
        except DomainError as exc:
            ctx = _patient_context(request, patient, form, error=exc)
            return render(request, "chronic/screening/patient.html", ctx, status=exc.status)
        # The form is replaced by a fresh one (new client_uuid) under the result.
        ctx = _patient_context(request, patient, _new_screening_form(), outcome=outcome)
        return render(
            request, "chronic/screening/patient.html", ctx, status=201 if not outcome.replayed else 200
        )
    return render(
        request, "chronic/screening/patient.html", _patient_context(request, patient, _new_screening_form())
    )


LISTS = {
    "screening": _("待筛查（35岁以上、今年未测血压）"),
    "high_risk": _("高危人群到期测血压"),
    "cases": _("疑似病例到期复查/转诊跟踪"),
}


@requires(policy.CHRONIC_MANAGE)
def screening_lists(request):
    """The work lists of screening: R1.1 screening due, R1.3 high-risk due, R1.2 cases due."""
    tab = request.GET.get("tab", "screening")
    if tab not in LISTS:
        tab = "screening"
    today = timezone.localdate()
    page_no = _page_number(request)
    if tab == "screening":
        page = selectors.screening_due(request.actor, today, page=page_no)
    elif tab == "high_risk":
        page = selectors.high_risk_due(request.actor, today, page=page_no)
    else:
        page = selectors.cases_due(request.actor, today, page=page_no)
    return render(
        request,
        "chronic/screening/lists.html",
        {"tab": tab, "tabs": LISTS.items(), "title": LISTS[tab], "page": page, "today": today},
    )


class ConfirmForm(forms.Form):
    diagnosed_on = forms.DateField(label=_("确诊日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    diagnosis_source = forms.ChoiceField(label=_("确诊来源"), choices=Registry.DiagnosisSource.choices)
    managing_org = forms.ChoiceField(label=_("管理机构"))
    responsible_doctor = forms.ChoiceField(label=_("责任医生"), required=False)
    reminder_consent = forms.BooleanField(label=_("同意短信提醒随访"), required=False)

    def __init__(self, *args, orgs=(), doctors=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["managing_org"].choices = [(o.pk, o.name) for o in orgs]
        self.fields["responsible_doctor"].choices = [
            ("", "—"),
            *((s.pk, f"{s.name}（{s.organisation.name}）") for s in doctors),
        ]


class ExcludeForm(forms.Form):
    excluded_on = forms.DateField(label=_("排除日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    reason = forms.CharField(label=_("原因"), max_length=200, required=False)


def _doctors(actor):
    """Staff to choose from: active staff of the actor's own (topmost) organisation and its subtree."""
    orgs = selectors.organisations_in_scope(actor)
    if not orgs:
        return []
    return list(selectors.staff_eligible_for_team(orgs[0]).order_by("organisation__path", "name")[:200])


@never_cache
@requires(policy.CHRONIC_MANAGE)
@require_http_methods(["GET", "POST"])
def screening_case(request, case_id: int):
    """A screening case: confirm (确诊 → 建档, R2.1) or exclude (排除)."""
    case = selectors.access_case(request.actor, case_id)
    orgs = selectors.organisations_in_scope(request.actor)
    doctors = _doctors(request.actor)
    today = timezone.localdate()
    default_org = selectors.default_organisation(request.actor)
    confirm = ConfirmForm(
        initial={
            "diagnosed_on": today,
            "diagnosis_source": "screening",
            "managing_org": default_org and default_org.pk,
        },
        orgs=orgs,
        doctors=doctors,
    )
    exclude = ExcludeForm(initial={"excluded_on": today})
    error = None
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "confirm":
                confirm = ConfirmForm(request.POST, orgs=orgs, doctors=doctors)
                if not confirm.is_valid():
                    raise InvalidInput(_("请检查确诊信息。"))
                d = confirm.cleaned_data
                services.confirm_case(
                    actor=request.actor,
                    case_id=case.pk,
                    diagnosed_on=d["diagnosed_on"],
                    diagnosis_source=d["diagnosis_source"],
                    managing_org_id=int(d["managing_org"]),
                    responsible_doctor_id=int(d["responsible_doctor"]) if d["responsible_doctor"] else None,
                    reminder_consent=d["reminder_consent"],
                )
                messages.success(request, _("已确诊并纳入专病管理。"))
                return redirect(reverse("chronic:screening-patient", args=[case.patient_id]))
            if action == "exclude":
                exclude = ExcludeForm(request.POST)
                if not exclude.is_valid():
                    raise InvalidInput(_("请检查排除信息。"))
                services.exclude_case(actor=request.actor, case_id=case.pk, **exclude.cleaned_data)
                messages.success(request, _("已排除该疑似病例。"))
                return redirect(reverse("chronic:screening-patient", args=[case.patient_id]))
            raise InvalidInput(_("未知操作。"))
        except DomainError as exc:
            error, status = exc, exc.status
    patient = selectors.access_screening_patient(request.actor, case.patient_id, purpose="screening_case")
    return render(
        request,
        "chronic/screening/case.html",
        {
            "case": case,
            "patient": patient,
            "open": case.status in selectors.OPEN_CASE_STATUSES,
            "referrals": list(case.referrals.select_related("to_org").order_by("-opened_on")),
            "confirm": confirm,
            "exclude": exclude,
            "error": error,
        },
        status=status,
    )


# --- family-doctor contracts (家庭医生签约) ----------------------------------------------------------


class TeamForm(forms.Form):
    organisation = forms.ChoiceField(label=_("所属机构"))
    name = forms.CharField(label=_("团队名称"), max_length=60)
    leader = forms.ChoiceField(label=_("团队长"))
    members = forms.MultipleChoiceField(label=_("成员"), required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, orgs=(), staff=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].choices = [(o.pk, o.name) for o in orgs]
        choices = [(s.pk, f"{s.name}（{s.organisation.name}）") for s in staff]
        self.fields["leader"].choices = choices
        self.fields["members"].choices = choices


class ContractForm(forms.Form):
    team = forms.ChoiceField(label=_("家庭医生团队"))
    signed_on = forms.DateField(label=_("签约日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    starts_on = forms.DateField(label=_("生效日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    ends_on = forms.DateField(label=_("到期日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    package = forms.CharField(label=_("服务包"), max_length=40, required=False)

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(t.pk, f"{t.name}（{t.organisation.name}）") for t in teams]


class TerminateForm(forms.Form):
    terminated_on = forms.DateField(
        label=_("解约日期"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d")
    )
    reason = forms.CharField(label=_("原因"), max_length=200, required=False)


def _team_form(request, data=None) -> TeamForm:
    orgs = selectors.organisations_in_scope(request.actor)
    staff = _doctors(request.actor)
    return TeamForm(data, orgs=orgs, staff=staff)


@requires(policy.CHRONIC_MANAGE)
@require_http_methods(["GET", "POST"])
def contracts_home(request):
    """家庭医生签约: teams, find a resident to sign, contracts ending soonest (renewals)."""
    q = request.GET.get("q", "")[:64]
    context = {"q": q, "result": _search(request, q), "target": "contracts"}
    if is_htmx(request):
        return render(request, "chronic/screening/_search.html", context)
    team_form = _team_form(request)
    status = 200
    if request.method == "POST":
        team_form = _team_form(request, request.POST)
        try:
            if not team_form.is_valid():
                raise InvalidInput(_("请检查团队信息。"))
            d = team_form.cleaned_data
            contract_services.create_team(
                actor=request.actor,
                organisation_id=int(d["organisation"]),
                name=d["name"],
                leader_id=int(d["leader"]),
                member_ids=[int(m) for m in d["members"]],
            )
            messages.success(request, _("团队已创建。"))
            return redirect(reverse("chronic:contracts"))
        except DomainError as exc:
            context["team_error"] = exc
            status = exc.status
    context.update(
        {
            "teams": list(selectors.teams_visible_to(request.actor).prefetch_related("members")[:100]),
            "team_form": team_form,
            "page": selectors.active_contracts(request.actor, page=_page_number(request)),
            "today": timezone.localdate(),
        }
    )
    return render(request, "chronic/screening/contracts.html", context, status=status)


@never_cache
@requires(policy.CHRONIC_MANAGE)
@require_http_methods(["GET", "POST"])
def contract_patient(request, patient_id: int):
    """One resident's contracts: sign a new one (one active at a time)."""
    patient = selectors.access_screening_patient(request.actor, patient_id, purpose="contract")
    teams = [t for t in selectors.teams_visible_to(request.actor) if t.is_active]
    today = timezone.localdate()
    form = ContractForm(
        initial={
            "signed_on": today,
            "starts_on": today,
            "ends_on": rules.add_months(today, 12) - timedelta(days=1),  # a one-year term
        },
        teams=teams,
    )
    error, status = None, 200
    if request.method == "POST":
        form = ContractForm(request.POST, teams=teams)
        try:
            if not form.is_valid():
                raise InvalidInput(_("请检查签约信息。"))
            d = form.cleaned_data
            contract_services.sign_contract(
                actor=request.actor,
                patient_id=patient.pk,
                team_id=int(d["team"]),
                signed_on=d["signed_on"],
                starts_on=d["starts_on"],
                ends_on=d["ends_on"],
                package=d["package"],
            )
            messages.success(request, _("签约成功。"))
            return redirect(reverse("chronic:contract-patient", args=[patient.pk]))
        except DomainError as exc:
            error, status = exc, exc.status
    contracts = selectors.contracts_of(patient)
    return render(
        request,
        "chronic/screening/contract_patient.html",
        {
            **_patient_head(patient),
            "registries": [Disease(d).label for d in selectors.active_registries_of(patient)],
            "form": form,
            "error": error,
            "contracts": contracts,
            "contract": next((c for c in contracts if c.status == FamilyDoctorContract.Status.ACTIVE), None),
            "terminate": TerminateForm(initial={"terminated_on": today}),
            "teams": teams,
        },
        status=status,
    )


@requires(policy.CHRONIC_MANAGE)
@require_POST
def contract_terminate(request, contract_id: int):
    """解约 an active contract."""
    contract = selectors.access_contract(request.actor, contract_id)
    form = TerminateForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(_("请填写正确的解约日期。"), field="terminated_on")
    contract_services.terminate_contract(actor=request.actor, contract_id=contract.pk, **form.cleaned_data)
    messages.success(request, _("已解约。"))
    return redirect(reverse("chronic:contract-patient", args=[contract.patient_id]))


urlpatterns = [
    path("screening/", screening_home, name="screening"),
    path("screening/due/", screening_lists, name="screening-lists"),
    path("screening/patient/<int:patient_id>/", screening_patient, name="screening-patient"),
    path("screening/cases/<int:case_id>/", screening_case, name="screening-case"),
    path("contracts/", contracts_home, name="contracts"),
    path("contracts/patient/<int:patient_id>/", contract_patient, name="contract-patient"),
    path("contracts/<int:contract_id>/terminate/", contract_terminate, name="contract-terminate"),
]
