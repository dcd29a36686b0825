"""Physical-exam packages (体检套餐, PE-1): eligibility and the daily capacity."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from yilian.common import audit
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.policy import Actor
from yilian.exams import errors, rules
from yilian.exams.models import (
    ExamPackage,
    PackageOrder,
)
from yilian.exams.services.base import (
    _recipient,
    access_patient,
    check_may_book_for,
)
from yilian.patients.models import Patient

# --- Physical-exam packages (PE-1) --------------------------------------------------------------------


def package_problems(package: ExamPackage, patient: Patient, day: date) -> list[str]:
    """PE-1: the reasons the patient cannot take the package (plain Chinese), empty if eligible."""
    items = [rules.PackageItemSpec(i.name, i.sex, i.min_age, i.max_age) for i in package.items.all()]
    texts = {
        "sex": _("%(item)s 不适用于该性别"),
        "too_young": _("%(item)s 不适用于该年龄（年龄过小）"),
        "too_old": _("%(item)s 不适用于该年龄（年龄过大）"),
    }
    return [
        str(texts[code]) % {"item": name}
        for name, code in rules.ineligible_items(items, sex=patient.sex, birth=patient.birth_date, day=day)
    ]


def order_package(
    *, actor: Actor, patient: Patient, package: ExamPackage, service_date: date, now: datetime | None = None
) -> PackageOrder:
    """Book a physical-exam package on a day (PE-1): eligibility of every item (sex, age), then one
    numbered place of the daily capacity. Places are claimed by inserting the lowest free numbers in
    random order under a unique index, so concurrent bookers rarely meet on one row and never
    exceed the capacity."""
    check_may_book_for(actor, patient)
    now = now or timezone.now()
    today = timezone.localdate(now)
    if service_date <= today:
        raise InvalidInput(_("体检日期须从明天起选择。"), field="date")
    if service_date > today + timedelta(days=30):
        raise InvalidInput(_("体检最多可提前 30 天预约。"), field="date")
    if not package.is_active:
        raise NotFound()
    problems = package_problems(package, patient, service_date)
    if problems:
        raise errors.PackageNotEligible(
            gettext("该套餐含有不适用的项目：%(list)s。") % {"list": "；".join(problems)}, items=problems
        )
    for _attempt in range(5):
        try:
            return _claim_package_place(
                actor=actor, patient=patient, package=package, service_date=service_date, now=now
            )
        except IntegrityError:
            if PackageOrder.objects.filter(
                patient=patient, service_date=service_date, status=rules.PACKAGE_BOOKED
            ).exists():
                raise InvalidInput(_("该就诊人当天已有体检预约。"), field="date") from None
            continue
    raise errors.SlotUnavailable(_("该套餐当天名额正在被抢约，请稍后重试。"))


@transaction.atomic
def _claim_package_place(
    *, actor: Actor, patient: Patient, package: ExamPackage, service_date: date, now: datetime
) -> PackageOrder:
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    if PackageOrder.objects.filter(
        patient=patient, service_date=service_date, status=rules.PACKAGE_BOOKED
    ).exists():
        raise InvalidInput(_("该就诊人当天已有体检预约。"), field="date")
    taken = set(
        PackageOrder.objects.filter(
            package=package, service_date=service_date, status=rules.PACKAGE_BOOKED
        ).values_list("place", flat=True)
    )
    free = [p for p in range(1, package.daily_capacity + 1) if p not in taken]
    if not free:
        raise errors.SlotUnavailable(_("该套餐当天名额已约满，请选择其他日期。"))
    place = random.choice(free[:8])
    order = PackageOrder.objects.create(
        package=package,
        patient=patient,
        service_date=service_date,
        place=place,
        booked_by_id=actor.user_id,
        booked_at=now,
    )
    audit.record(
        actor,
        "exams.package_order",
        target=audit.Target("exams.PackageOrder", order.pk, patient.pk),
        detail={"package": package.code, "date": service_date.isoformat()},
    )
    from yilian.notifications import services as notification_services

    recipient, account_phone = _recipient(patient, actor)
    fasting = package.items.filter(requires_fasting=True).exists()
    body = gettext("%(name)s，您已预约%(date)s的%(package)s。%(prep)s") % {
        "name": patient.name,
        "date": service_date.strftime("%m月%d日"),
        "package": package.name,
        "prep": (gettext(rules.NOTE_FASTING) + " " if fasting else "") + package.preparation,
    }
    notification_services.notify(
        recipient=recipient,
        template_code="exam_package_booked",
        context={"title": gettext("体检预约成功"), "body": body},
        phone=(account_phone or patient.phone or None),
        link="/exams/my/",
    )
    return order


@transaction.atomic
def cancel_package_order(*, actor: Actor, package_order_id: int, now: datetime | None = None) -> PackageOrder:
    now = now or timezone.now()
    order = PackageOrder.objects.select_for_update().filter(pk=package_order_id).first()
    if order is None:
        raise NotFound()
    access_patient(actor, order.patient_id, purpose="exam_package_cancel")
    if order.status != rules.PACKAGE_BOOKED or order.service_date <= timezone.localdate(now):
        raise errors.InvalidTransition(_("只能在体检日前一天及更早取消已预约的体检。"))
    order.status = rules.PACKAGE_CANCELLED
    order.cancelled_at = now
    order.save(update_fields=["status", "cancelled_at"])
    audit.record(
        actor, "exams.package_cancel", target=audit.Target("exams.PackageOrder", order.pk, order.patient_id)
    )
    return order
