"""Patient phone pages (H5, /h5/): home, family members (就诊人), the e-health card (电子健康卡).

Thin views over ``patients.family`` and ``patients.card``. A patient account sees only the patients
it manages (``Actor.managed_patient_ids``); any other id is "not found" (access.md: forbidden and
missing look alike).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yilian.accounts.models import PatientAccount
from yilian.common import masking
from yilian.common.access import PATIENT, requires
from yilian.common.errors import DomainError, NotFound
from yilian.patients import card as health_card
from yilian.patients import family
from yilian.patients import selectors as patient_selectors
from yilian.patients.models import FamilyLink, HealthCard, Patient

CARD_SHOW_MAX_SECONDS = 300  # then the QR stops refreshing until the patient asks again


class FamilyMemberForm(forms.Form):
    """Add a family member (B-16). The rules themselves are checked by ``family.bind_family_member``."""

    name = forms.CharField(label=_("姓名"), max_length=50)
    id_type = forms.ChoiceField(label=_("证件类型"), choices=Patient.IdType.choices, initial="resident_id")
    id_number = forms.CharField(label=_("证件号码"), max_length=32)
    relationship = forms.ChoiceField(label=_("与本人关系"), choices=FamilyLink.Relationship.choices)
    phone = forms.CharField(label=_("手机号（选填）"), max_length=20, required=False)
    sex = forms.ChoiceField(
        label=_("性别"),
        choices=[("", _("请选择"))] + [c for c in Patient.Sex.choices if c[0] != "U"],
        required=False,
    )
    birth_date = forms.DateField(
        label=_("出生日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    consent = forms.BooleanField(label=_("我已阅读并同意《就诊人信息授权书》"), required=False)

    def __init__(self, *args, has_self: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # One "self" per account: once bound, it is not offered again.
        self.fields["relationship"].choices = [("", _("请选择"))] + [
            c
            for c in FamilyLink.Relationship.choices
            if not (has_self and c[0] == FamilyLink.Relationship.SELF)
        ]
        self.fields["name"].widget.attrs.update(
            {"autocomplete": "name", "placeholder": _("与证件上的姓名一致")}
        )
        self.fields["id_number"].widget.attrs.update(
            {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        )
        self.fields["phone"].widget.attrs.update({"inputmode": "tel", "autocomplete": "tel"})


def _account(request) -> PatientAccount:
    account = PatientAccount.objects.filter(pk=request.actor.patient_account_id).first()
    if account is None:
        raise NotFound()
    return account


def _managed_link(request, patient_id: int) -> FamilyLink:
    """The account's link to ``patient_id``; any other patient is 404 (never 403)."""
    if patient_id not in request.actor.managed_patient_ids:
        raise NotFound()
    link = (
        FamilyLink.objects.select_related("patient")
        .defer("patient__id_number", "patient__phone")  # shown masked from clear columns
        .filter(account_id=request.actor.patient_account_id, patient_id=patient_id)
        .first()
    )
    if link is None or link.patient.status != Patient.Status.ACTIVE:
        raise NotFound()
    return link


def _member_view(link: FamilyLink) -> dict:
    p = link.patient
    return {
        "link": link,
        "patient": p,
        "masked_name": masking.mask_name(p.name),
        "initial": p.name[:1],
        "masked_id": patient_selectors.masked_id(p.id_type, p.id_head, p.id_last4),
        "age": family.age_on(p.birth_date, timezone.localdate()),
    }


def _greeting() -> str:
    hour = timezone.localtime().hour
    if hour < 11:
        return _("上午好")
    if hour < 13:
        return _("中午好")
    if hour < 18:
        return _("下午好")
    return _("晚上好")


@require_GET
@requires(PATIENT)
def home(request):
    links = family.members_of(request.actor.patient_account_id)
    me = next((link for link in links if link.relationship == FamilyLink.Relationship.SELF), None)
    return render(
        request,
        "patients/h5/home.html",
        {
            "greeting": _greeting(),
            "me": _member_view(me) if me else None,
            "members": [_member_view(link) for link in links],
            "bind_max": family.FAMILY_BIND_MAX,
        },
    )


@require_http_methods(["GET", "POST"])
@requires(PATIENT)
def family_page(request):
    account = _account(request)
    links = family.members_of(account.pk)
    has_self = any(link.relationship == FamilyLink.Relationship.SELF for link in links)
    status = 200
    if request.method == "POST":
        form = FamilyMemberForm(request.POST, has_self=has_self)
        if form.is_valid():
            data = form.cleaned_data
            try:
                link = family.bind_family_member(
                    actor=request.actor,
                    account=account,
                    name=data["name"],
                    id_type=data["id_type"],
                    id_number=data["id_number"],
                    relationship=data["relationship"],
                    phone=data["phone"],
                    sex=data["sex"] or None,
                    birth_date=data["birth_date"],
                    consent=data["consent"],
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
                form.error_code = exc.code
                status = exc.status
            else:
                messages.success(
                    request, _("已添加就诊人 %(name)s") % {"name": masking.mask_name(link.patient.name)}
                )
                return redirect("h5:family")
        else:
            status = 422
    else:
        form = FamilyMemberForm(has_self=has_self, initial={"relationship": "" if has_self else "self"})
    return render(
        request,
        "patients/h5/family.html",
        {
            "form": form,
            "members": [_member_view(link) for link in links],
            "bind_max": family.FAMILY_BIND_MAX,
            "can_add": len(links) < family.FAMILY_BIND_MAX,
            "consent_version": family.CONSENT_VERSION,
            "open_form": request.method == "POST",
        },
        status=status,
    )


@require_POST
@requires(PATIENT)
def family_remove(request, patient_id: int):
    account = _account(request)
    link = _managed_link(request, patient_id)
    name = masking.mask_name(link.patient.name)
    try:
        family.unbind_family_member(actor=request.actor, account=account, patient_id=patient_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("已解绑就诊人 %(name)s") % {"name": name})
    return redirect("h5:family")


def _active_card(patient: Patient) -> HealthCard | None:
    return HealthCard.objects.filter(patient=patient, status=HealthCard.Status.ACTIVE).first()


def _qr_context(link: FamilyLink, *, scanned: bool = False, shown_since: int | None = None) -> dict:
    card = _active_card(link.patient)
    if card is None:
        return {"link": link, "card": None}
    token = health_card.make_token(card)
    _card_no, expires, nonce = health_card.token_parts(token)
    return {
        "link": link,
        "card": card,
        "svg": health_card.card_qr_svg(token, title=str(_("电子健康卡二维码"))),
        "nonce": nonce,
        "expires": expires,
        "since": shown_since if shown_since is not None else int(timezone.now().timestamp()),
        "refresh_seconds": health_card.refresh_seconds(),
        "scanned": scanned,
    }


def _int_param(request, name: str) -> int | None:
    try:
        return int(request.GET.get(name, "")[:12])
    except ValueError:
        return None


@require_GET
@requires(PATIENT)
def card_page(request, patient_id: int | None = None):
    """The e-health card of a managed patient (HC-1); without an id, the account holder's own."""
    if patient_id is None:
        links = family.members_of(request.actor.patient_account_id)
        if not links:
            return render(request, "patients/h5/card_empty.html")
        link = links[0]
    else:
        link = _managed_link(request, patient_id)
    members = family.members_of(request.actor.patient_account_id)
    context = _qr_context(link)
    context.update(
        {
            "member": _member_view(link),
            "members": [_member_view(m) for m in members],
            "card_no_display": _group(context["card"].card_no) if context.get("card") else "",
        }
    )
    return render(request, "patients/h5/card.html", context)


def _group(card_no: str) -> str:
    return " ".join(card_no[i : i + 4] for i in range(0, len(card_no), 4))


@require_GET
@requires(PATIENT)
def card_qr(request, patient_id: int):
    """The QR fragment, polled by HTMX every 2 s. 204 (keep the code on screen) until it is due.

    A code is replaced when it has been scanned (its nonce is used: the phone shows at once that
    the scan worked), when its refresh time has come, or when asked without ``n``/``e`` (the
    "refresh" button). After ``CARD_SHOW_MAX_SECONDS`` of showing, refreshing pauses until the
    patient taps "continue": a phone left open on the card neither keeps a live code on screen nor
    keeps the session alive for ever (MLPS 2.0 session timeout).
    """
    link = _managed_link(request, patient_id)
    nonce = request.GET.get("n", "")[:32]
    expires = _int_param(request, "e")
    since = _int_param(request, "s")
    now = timezone.now().timestamp()
    scanned = bool(nonce) and health_card.token_was_used(nonce)
    if nonce and expires is not None and not scanned:
        issued = expires - settings.CARD_TOKEN_TTL_SECONDS
        if now < issued + health_card.refresh_seconds():
            return HttpResponse(status=204)
    if since is not None and now - since > CARD_SHOW_MAX_SECONDS:
        return render(
            request,
            "patients/h5/card.html#qr",
            {"link": link, "card": _active_card(link.patient), "paused": True},
        )
    return render(request, "patients/h5/card.html#qr", _qr_context(link, scanned=scanned, shown_since=since))
