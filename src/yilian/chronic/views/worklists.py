"""The village doctor's phone pages: work lists, the call list and the follow-up form (R7.3, R2–R5).

Phone-first (360 px, big tap targets, small pages, HTMX only). As thin as the API: the lists come
from ``selectors.worklists``; a call result from ``services.worklists.record_call``; the follow-up
form posts to ``services.followups.record_follow_up`` with a hidden ``client_uuid`` (a double tap or
a retry on a weak network records once) and redirects to the result page (post/redirect/get).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yilian.chronic import rules
from yilian.chronic.models import CallAttempt, Disease, FollowUp, Registry
from yilian.chronic.selectors import worklists as selectors
from yilian.chronic.services import followups as followup_services
from yilian.chronic.services import worklists as services
from yilian.common import audit, policy
from yilian.common.access import requires
from yilian.common.errors import DomainError
from yilian.common.htmx import is_htmx
from yilian.community.models import Organisation, Staff

MAX_MEDICATION_ROWS = 10
LIFESTYLE_ADVICE = {
    "low_salt": _("低盐饮食（每日<5克）"),
    "quit_smoking": _("戒烟"),
    "limit_alcohol": _("限酒"),
    "exercise": _("规律运动"),
    "weight": _("控制体重"),
    "diet": _("合理膳食（控糖、控油）"),
    "mood": _("心理平衡"),
}
# A DomainError's ``field`` (the service's name) → the form input it belongs to.
FIELD_ALIASES = {"fpg_mmol": "glucose", "glucose_any_mmol": "glucose", "diseases": None, "patient_id": None}


def _int_param(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _filters(actor):
    """The organisation and doctor choices of a township (or county) user; none for one village."""
    paths = policy.scope_paths(actor, policy.CHRONIC_MANAGE)
    orgs = []
    for p in paths:
        orgs.extend(
            Organisation.objects.filter(path__startswith=p).only("id", "name", "depth").order_by("path")
        )
    if len(orgs) <= 1:
        return [], []
    doctors = (
        Staff.objects.filter(organisation_id__in=[o.pk for o in orgs], is_active=True)
        .only("id", "name", "organisation_id")
        .order_by("organisation_id", "name")[:200]
    )
    return orgs, list(doctors)


@never_cache
@require_GET
@requires(policy.CHRONIC_MANAGE)
def worklist(request):
    """随访工作清单: tabs 本周应随访 / 逾期 / 未达标 / 本季未随访 / 电话随访名单 / 失访 (R7.3)."""
    kind = request.GET.get("tab", selectors.OVERDUE)
    if kind not in selectors.KINDS:
        kind = selectors.OVERDUE
    org_id = _int_param(request, "org")
    doctor_id = _int_param(request, "doctor")
    page = selectors.worklist(
        request.actor, kind, page=_int_param(request, "page") or 1, org_id=org_id, doctor_id=doctor_id
    )
    context = {
        "page": page,
        "kind": kind,
        "org_id": org_id,
        "doctor_id": doctor_id,
        "outcomes": CallAttempt.Outcome.choices,
        "query": _query(kind, org_id, doctor_id),
    }
    if is_htmx(request):
        return render(request, "chronic/worklists/worklist.html#list", context)
    orgs, doctors = _filters(request.actor)
    counts = selectors.worklist_counts(request.actor, org_id=org_id, doctor_id=doctor_id, today=page.today)
    context |= {
        "tabs": [(k, selectors.KIND_LABELS[k], counts[k]) for k in selectors.KINDS],
        "orgs": orgs,
        "doctors": doctors,
    }
    return render(request, "chronic/worklists/worklist.html", context)


def _query(kind: str, org_id: int | None, doctor_id: int | None) -> str:
    parts = [f"tab={kind}"]
    if org_id:
        parts.append(f"org={org_id}")
    if doctor_id:
        parts.append(f"doctor={doctor_id}")
    return "&".join(parts)


@never_cache
@require_POST
@requires(policy.CHRONIC_MANAGE)
def call_outcome(request, registry_id: int):
    """电话随访结果 (one tap, R7.3): the row is replaced by what happened to it."""
    outcome = request.POST.get("outcome", "")[:20]
    try:
        call = services.record_call(
            actor=request.actor,
            registry_id=registry_id,
            outcome=outcome,
            note=request.POST.get("note", "")[:300],
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        return render(
            request,
            "chronic/worklists/worklist.html#call-done",
            {"error": exc, "registry_id": registry_id},
            status=exc.status,
        )
    registry = Registry.objects.only("status", "call_snoozed_until").get(pk=registry_id)
    return render(
        request,
        "chronic/worklists/worklist.html#call-done",
        {"call": call, "registry": registry, "outcome_label": CallAttempt.Outcome(call.outcome).label},
    )


@never_cache
@require_POST
@requires(policy.CHRONIC_MANAGE)
def send_reminders(request):
    """发送短信提醒 (R7.4) now, for the actor's own patients; the daily task does the same for all."""
    queued = services.send_due_reminders(actor=request.actor)
    return render(request, "chronic/worklists/worklist.html#reminders-done", {"queued": queued})


@never_cache
@require_POST
@requires(policy.CHRONIC_MANAGE)
def reveal_phone(request, registry_id: int):
    """拨打电话: shows the full number as a ``tel:`` link; a deliberate, audited act (reveal_phone)."""
    registry = selectors.registry_for_actor(request.actor, registry_id)
    audit.record(
        request.actor,
        "patient.view",
        target=audit.Target("patient", registry.patient_id, registry.patient_id),
        reason="reveal_phone",
    )
    return render(request, "chronic/worklists/worklist.html#phone", {"phone": registry.patient.phone})


# --- The follow-up form -----------------------------------------------------------------------


class FollowUpForm(forms.Form):
    """随访记录表 (phone form): types and lengths here; the reading rules in the service (R3–R5)."""

    client_uuid = forms.UUIDField(widget=forms.HiddenInput)
    visit_on = forms.DateField(
        label=_("随访日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    mode = forms.ChoiceField(label=_("随访方式"), choices=FollowUp.Mode.choices, widget=forms.RadioSelect)
    sbp = forms.IntegerField(label=_("收缩压"), required=False, min_value=0, max_value=999)
    dbp = forms.IntegerField(label=_("舒张压"), required=False, min_value=0, max_value=999)
    sbp2 = forms.IntegerField(label=_("收缩压（第二次）"), required=False, min_value=0, max_value=999)
    dbp2 = forms.IntegerField(label=_("舒张压（第二次）"), required=False, min_value=0, max_value=999)
    glucose_kind = forms.ChoiceField(
        label=_("血糖类型"),
        choices=[("fasting", _("空腹")), ("random", _("随机"))],
        widget=forms.RadioSelect,
        initial="fasting",
        required=False,
    )
    glucose = forms.DecimalField(
        label=_("血糖 (mmol/L)"), required=False, max_digits=5, decimal_places=1, min_value=0
    )
    heart_rate = forms.IntegerField(label=_("心率"), required=False, min_value=0, max_value=999)
    temperature_c = forms.DecimalField(
        label=_("体温 (°C)"), required=False, max_digits=4, decimal_places=1, min_value=0
    )
    weight_kg = forms.DecimalField(
        label=_("体重 (kg)"), required=False, max_digits=5, decimal_places=1, min_value=0
    )
    waist_cm = forms.DecimalField(
        label=_("腰围 (cm)"), required=False, max_digits=5, decimal_places=1, min_value=0
    )
    symptoms = forms.MultipleChoiceField(label=_("症状"), required=False, widget=forms.CheckboxSelectMultiple)
    pregnant_or_lactating = forms.BooleanField(label=_("妊娠或哺乳期"), required=False)
    unmanageable_other_disease = forms.BooleanField(label=_("存在不能处理的其他疾病"), required=False)
    adr = forms.BooleanField(label=_("药物不良反应"), required=False)
    adr_uncontrollable = forms.BooleanField(label=_("不良反应难以控制"), required=False)
    new_complication = forms.BooleanField(label=_("出现新的并发症"), required=False)
    complication_worsened = forms.BooleanField(label=_("原有并发症加重"), required=False)
    adherence = forms.ChoiceField(
        label=_("服药依从性"),
        choices=FollowUp.Adherence.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    lifestyle = forms.MultipleChoiceField(
        label=_("生活方式指导"),
        choices=list(LIFESTYLE_ADVICE.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    note = forms.CharField(
        label=_("备注"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, diseases: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        wanted: set[str] = set()
        if Disease.HTN in diseases:
            wanted |= rules.HTN_SYMPTOMS
        if Disease.T2DM in diseases:
            wanted |= rules.T2DM_SYMPTOMS
        wanted = wanted or set(rules.OTHER_DISEASE_URGENT_SYMPTOMS)
        # In the order of the standard's lists (R3.1, then R3.2), as on the paper form.
        self.fields["symptoms"].choices = [
            (c, label) for c, label in rules.SYMPTOM_LABELS.items() if c in wanted
        ]
        for name in ("sbp", "dbp", "sbp2", "dbp2", "heart_rate"):
            self.fields[name].widget.attrs.update({"inputmode": "numeric", "pattern": "[0-9]*"})
        for name in ("glucose", "temperature_c", "weight_kg", "waist_cm"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "step": "0.1"})


def _medications(post) -> tuple[list[dict], str | None]:
    """The repeating medication rows (药名 / 用法 / 剂量): blank rows are dropped."""
    names = post.getlist("med_name")[: MAX_MEDICATION_ROWS + 1]
    if len(names) > MAX_MEDICATION_ROWS:
        return [], str(_("用药最多填写 %(n)s 行。") % {"n": MAX_MEDICATION_ROWS})
    freqs = post.getlist("med_frequency")
    doses = post.getlist("med_dose")
    meds = []
    for i, name in enumerate(names):
        name = name.strip()[:60]
        if not name:
            continue
        meds.append(
            {
                "name": name,
                "frequency": (freqs[i] if i < len(freqs) else "").strip()[:30],
                "dose": (doses[i] if i < len(doses) else "").strip()[:30],
            }
        )
    return meds, None


def _data(cleaned: dict, medications: list[dict]) -> followup_services.FollowUpData:
    glucose: Decimal | None = cleaned.get("glucose")
    fasting = cleaned.get("glucose_kind") != "random"
    advice = list(cleaned.get("lifestyle") or [])
    return followup_services.FollowUpData(
        visit_on=cleaned["visit_on"],
        mode=cleaned["mode"],
        sbp=cleaned.get("sbp"),
        dbp=cleaned.get("dbp"),
        sbp2=cleaned.get("sbp2"),
        dbp2=cleaned.get("dbp2"),
        fpg_mmol=glucose if fasting else None,
        glucose_any_mmol=None if fasting else glucose,
        heart_rate=cleaned.get("heart_rate"),
        temperature_c=cleaned.get("temperature_c"),
        weight_kg=cleaned.get("weight_kg"),
        waist_cm=cleaned.get("waist_cm"),
        symptoms=list(cleaned.get("symptoms") or []),
        pregnant_or_lactating=bool(cleaned.get("pregnant_or_lactating")),
        unmanageable_other_disease=bool(cleaned.get("unmanageable_other_disease")),
        adr=bool(cleaned.get("adr")),
        adr_uncontrollable=bool(cleaned.get("adr_uncontrollable")),
        new_complication=bool(cleaned.get("new_complication")),
        complication_worsened=bool(cleaned.get("complication_worsened")),
        adherence=cleaned.get("adherence") or "",
        medications=medications,
        lifestyle={"advice": advice} if advice else {},
        note=cleaned.get("note") or "",
    )


def _form_page(request, subject, form, *, medications=None, error=None, status=200):
    meds = medications or []
    blank_rows = max(1, 2 - len(meds))
    return render(
        request,
        "chronic/worklists/followup.html",
        {
            "subject": subject,
            "form": form,
            "error": error,
            "medications": meds,
            "blank_rows": range(blank_rows),
            "disease_labels": [r.get_disease_display() for r in subject.registries],
            "has_t2dm": Disease.T2DM in subject.diseases,
            "last_plans": subject.registries,
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@requires(policy.CHRONIC_MANAGE)
def follow_up(request, patient_id: int):
    """随访录入: the phone form for one visit of a patient (every active registry the actor manages)."""
    subject = selectors.access_follow_up_subject(
        request.actor,
        patient_id,
        purpose="chronic_follow_up" if request.method == "GET" else "chronic_follow_up_save",
    )
    if request.method == "GET":
        form = FollowUpForm(
            initial={"client_uuid": uuid.uuid4(), "visit_on": selectors.today_local(), "mode": "clinic"},
            diseases=subject.diseases,
        )
        return _form_page(request, subject, form)
    form = FollowUpForm(request.POST, diseases=subject.diseases)
    medications, med_error = _medications(request.POST)
    if not form.is_valid() or med_error:
        return _form_page(request, subject, form, medications=medications, error=med_error, status=422)
    try:
        stored = followup_services.record_follow_up(
            actor=request.actor,
            patient_id=patient_id,
            data=_data(form.cleaned_data, medications),
            diseases=subject.diseases,
            client_uuid=form.cleaned_data["client_uuid"],
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        field = FIELD_ALIASES.get(exc.field, exc.field) if exc.field else None
        if field in form.fields:
            form.add_error(field, str(exc.message))
            error = None
        else:
            error = exc.message
        return _form_page(request, subject, form, medications=medications, error=error, status=exc.status)
    target = reverse("chronic:followup-done", args=[patient_id, stored[0].visit_key])
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target, permanent=False)


# The R3.x danger signs stored on a follow-up (``FollowUp.urgent_signs``), in words for the result.
URGENT_SIGN_LABELS = {
    "sbp>=180": _("收缩压≥180 mmHg"),
    "dbp>=110": _("舒张压≥110 mmHg"),
    "glucose>=16.7": _("血糖≥16.7 mmol/L"),
    "glucose<=3.9": _("血糖≤3.9 mmol/L"),
    "heart_rate>100": _("心率>100次/分"),
    "temperature>39.0": _("体温>39.0 ℃"),
    "pregnant_bp>=140/90": _("妊娠或哺乳期血压≥140/90 mmHg"),
    "pregnant_fpg>=threshold": _("妊娠或哺乳期空腹血糖升高"),
    "unmanageable_other_disease": _("存在不能处理的其他疾病"),
}


def urgent_sign_label(sign: str) -> str:
    """A danger sign in words: a reading threshold, or the symptom's label (rules.SYMPTOM_LABELS)."""
    if sign.startswith("symptom:"):
        code = sign.removeprefix("symptom:")
        return str(rules.SYMPTOM_LABELS.get(code, code))
    return str(URGENT_SIGN_LABELS.get(sign, sign))


@never_cache
@require_GET
@requires(policy.CHRONIC_MANAGE)
def follow_up_done(request, patient_id: int, visit_key: uuid.UUID):
    """随访结果: the classification in plain Chinese, the referral opened, the next due date."""
    outcome = selectors.follow_up_outcome(request.actor, patient_id, visit_key)
    referrals = outcome.referrals
    first = outcome.follow_ups[0]
    for fu in outcome.follow_ups:
        fu.urgent_sign_labels = [urgent_sign_label(sign) for sign in (fu.urgent_signs or [])]
    return render(
        request,
        "chronic/worklists/followup_done.html",
        {
            "outcome": outcome,
            "follow_ups": outcome.follow_ups,
            "referrals": referrals,
            "urgent": [r for r in referrals if r.kind == "urgent"],
            "routine": [r for r in referrals if r.kind != "urgent"],
            "reason_labels": rules.REASON_LABELS,
            "patient_id": patient_id,
            "visit_on": first.visit_on,
            "next_due": min(fu.next_due_on for fu in outcome.follow_ups),
        },
    )


@require_GET
@requires(policy.CHRONIC_MANAGE)
def medication_row(request):
    """One more blank medication row (HTMX ``beforeend``)."""
    return render(request, "chronic/worklists/followup.html#med-row", {"med": {}})


urlpatterns = [
    path("worklist/", worklist, name="worklist"),
    path("worklist/calls/<int:registry_id>/", call_outcome, name="worklist-call"),
    path("worklist/calls/<int:registry_id>/phone/", reveal_phone, name="worklist-phone"),
    path("worklist/reminders/", send_reminders, name="worklist-reminders"),
    path("followup/<int:patient_id>/", follow_up, name="followup"),
    path("followup/<int:patient_id>/done/<uuid:visit_key>/", follow_up_done, name="followup-done"),
    path("followup/medication-row/", medication_row, name="followup-med-row"),
]
