"""Working the call list and the SMS reminders (电话随访与短信提醒): chronic.md R7.3, R7.4.

* ``record_call`` — one tap on a call-list row: the outcome is stored (``CallAttempt``), the
  registry is snoozed per ``rules.call_outcome_effect`` (reached → 30 days, remind later → 7 days,
  R7.3), and "moved"/"died" close the registry through ``services.registries.close_registry``.
* ``send_due_reminders`` — R7.4: an SMS to each patient with reminder consent and a phone whose
  plan is ≥ ``reminder_overdue_days`` overdue, at most once per planned date (the ``Reminder``
  row's unique (registry, planned_on) constraint is the guarantee, also against two runs at once),
  sent through ``notifications.services.notify`` (quiet hours and retries are applied there).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.errors import DateInFuture, RegistryClosed
from yilian.chronic.models import CallAttempt, Disease, Registry, Reminder
from yilian.chronic.selectors import worklists as selectors
from yilian.chronic.services import registries as registry_services
from yilian.common import audit, policy
from yilian.common.errors import DomainError, NotFound, PermissionDenied
from yilian.common.policy import Actor
from yilian.community.models import Organisation
from yilian.notifications import services as notification_services

SYSTEM = Actor(kind="system", label="system:chronic")
NOTE_MAX_LENGTH = 200
# The R7.4 message template (notifications migration 0007); an edited template in the admin wins.
# The ``title``/``body`` in the context serve the ``generic`` fallback if the template was deleted.
REMINDER_TEMPLATE = "chronic_follow_up_reminder"
DISEASE_LABELS = dict(Disease.choices)


class InvalidCallOutcome(DomainError):
    code = "INVALID_CALL_OUTCOME"
    status = 422
    default_message = _("通话结果无效：请选择 已联系 / 稍后再联系 / 无人接听 / 已迁出 / 已死亡。")


class NoteTooLong(DomainError):
    code = "NOTE_TOO_LONG"
    status = 422
    default_message = _("备注最多 200 字。")


@transaction.atomic
def record_call(
    *, actor: Actor, registry_id: int, outcome: str, note: str = "", on: date | None = None
) -> CallAttempt:
    """R7.3 call results: store the call, snooze the registry on the call list, close it for a
    death or a move. Another organisation's registry is ``NotFound``; a closed one ``RegistryClosed``."""
    if outcome not in CallAttempt.Outcome.values:
        raise InvalidCallOutcome(field="outcome")
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise NoteTooLong(field="note")
    today = selectors.today_local()
    on = on or today
    if on > today:
        raise DateInFuture(field="on")
    registry = selectors.registry_for_actor(actor, registry_id, for_update=True)
    if registry.status != Registry.Status.ACTIVE:
        raise RegistryClosed()
    snoozed_until, close_reason = rules.call_outcome_effect(outcome, on, selectors.parameters())
    call = CallAttempt(
        registry=registry, outcome=outcome, note=note, called_on=on, called_by_id=actor.user_id
    )
    call.full_clean()
    call.save()
    Registry.objects.filter(pk=registry.pk).update(
        call_snoozed_until=snoozed_until, updated_at=timezone.now()
    )
    audit.record(
        actor,
        "chronic.call",
        target=audit.Target("chronic_registry", registry.pk, registry.patient_id),
        detail={"outcome": outcome, "snoozed_until": snoozed_until.isoformat() if snoozed_until else None},
    )
    if close_reason:
        registry_services.close_registry(
            actor=actor,
            registry_id=registry.pk,
            closed_on=on,
            reason=close_reason,
            note=note or str(CallAttempt.Outcome(outcome).label),
        )
    return call


def _reminder_candidates(actor: Actor, on: date, org_id: int | None, params: rules.Parameters):
    """Active, consenting registries with a phone whose plan is in the reminder window and has no
    reminder yet. The date window is R7.4 (≥ ``reminder_overdue_days``) bounded by R7.3 (not lost);
    ``rules.reminder_eligible`` has the final word per row."""
    if actor.kind == "system" and not actor.assignments:
        qs = Registry.objects.filter(status=Registry.Status.ACTIVE)
        if org_id is not None:
            org = Organisation.objects.filter(pk=org_id).only("path").first()
            if org is None:
                raise NotFound()
            qs = qs.filter(managing_org__path__startswith=org.path)
    else:
        qs = selectors.registries_in_scope(actor, org_id=org_id)
    already = Reminder.objects.filter(registry_id=OuterRef("pk"), planned_on=OuterRef("next_follow_up_on"))
    return (
        qs.filter(
            reminder_consent=True,
            next_follow_up_on__lte=on - timedelta(days=params.reminder_overdue_days),
            next_follow_up_on__gte=on - timedelta(days=params.lost_after_days),
        )
        .exclude(patient__phone_last4="")
        .filter(~Q(Exists(already)))
        .select_related("patient", "managing_org")
        # Only the phone is decrypted, not the ID number of every candidate.
        .only(
            "id",
            "disease",
            "reminder_consent",
            "next_follow_up_on",
            "patient__name",
            "patient__phone",
            "patient__phone_last4",
            "managing_org__name",
            "managing_org__phone",
        )
        .order_by("patient_id", "disease")
    )


@transaction.atomic
def send_due_reminders(*, actor: Actor, on: date | None = None, org_id: int | None = None) -> int:
    """R7.4: queue the follow-up reminder SMS due on ``on``; returns how many SMS were queued.

    One SMS per patient even when several of their registries are due (it names every disease);
    one ``Reminder`` row per registry and planned date, so no plan is ever reminded twice. A staff
    actor reminds within their ``CHRONIC_MANAGE`` scope; ``SYSTEM`` (the daily task) everywhere.
    """
    if actor.kind != "system" and not policy.allows(actor, policy.CHRONIC_MANAGE):
        raise PermissionDenied()
    today = selectors.today_local()
    on = on or today
    if on > today:
        raise DateInFuture(field="on")
    params = selectors.parameters()
    by_patient: dict[int, list[Registry]] = defaultdict(list)
    for registry in _reminder_candidates(actor, on, org_id, params):
        eligible = rules.reminder_eligible(
            days_overdue=rules.days_overdue(registry.next_follow_up_on, on),
            consent=registry.reminder_consent,
            has_phone=bool(registry.patient.phone_last4),
            already_sent=False,
            params=params,
        )
        if eligible:
            by_patient[registry.patient_id].append(registry)
    sent = 0
    now = timezone.now()
    for registries in by_patient.values():
        try:
            with transaction.atomic():
                reminders = [
                    Reminder.objects.create(registry=r, planned_on=r.next_follow_up_on, sent_at=now)
                    for r in registries
                ]
                sms = _send(registries)
                if sms is not None:
                    Reminder.objects.filter(pk__in=[m.pk for m in reminders]).update(notification_id=sms.pk)
                for r in registries:
                    audit.record(
                        actor,
                        "chronic.reminder",
                        target=audit.Target("chronic_registry", r.pk, r.patient_id),
                        detail={"planned_on": r.next_follow_up_on.isoformat(), "sms": bool(sms)},
                    )
        except IntegrityError:
            continue  # another run reminded this plan meanwhile: once per plan (R7.4)
        sent += sms is not None
    return sent


def _send(registries: list[Registry]):
    """The reminder SMS for one patient's due registries (``REMINDER_TEMPLATE``)."""
    patient = registries[0].patient
    org = registries[0].managing_org
    planned = min(r.next_follow_up_on for r in registries)
    diseases = "、".join(str(DISEASE_LABELS.get(r.disease, r.disease)) for r in registries)
    context = {
        "patient_name": patient.name,
        "diseases": diseases,
        "planned_on": _month_day(planned),
        "org_name": org.name,
        "org_phone": org.phone,
        "title": str(_("慢病随访提醒")),
        "body": str(
            _(
                "%(name)s您好：您的%(diseases)s随访原定%(planned)s，已过期。请尽快到%(org)s复诊"
                "（测量血压/血糖、调整用药）。如已随访请忽略本短信。"
            )
            % {"name": patient.name, "diseases": diseases, "planned": _month_day(planned), "org": org.name}
        ),
    }
    notified = notification_services.notify(
        recipient=None,
        template_code="chronic_follow_up_reminder",
        context=context,
        phone=patient.phone,
        urgent=False,
    )
    return notified.sms


def _month_day(d: date) -> str:
    return f"{d.month}月{d.day}日"
