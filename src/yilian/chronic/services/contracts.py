"""Family-doctor teams and contracts (家庭医生团队, 家庭医生签约服务): issue #4 item 1.

* A team belongs to a clinic; its leader and members are active staff of that clinic or of its
  subtree (a township team takes the village doctors of its villages).
* A resident has at most one *active* contract (database partial unique constraint
  ``fd_contract_one_active_per_patient``; a second signature is a clear 409, also under a race).
* The term ends after it starts (check constraint ``fd_contract_term_valid``) and lasts at most
  ``MAX_TERM_YEARS``; ``expire_contracts`` turns active contracts whose term has ended to ENDED.

Every write is atomic and audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from yilian.chronic import errors, rules
from yilian.chronic.models import FamilyDoctorContract, FamilyDoctorTeam
from yilian.chronic.selectors import screening as selectors
from yilian.common import audit
from yilian.common.errors import Conflict, InvalidInput
from yilian.common.policy import Actor

MAX_TERM_YEARS = 3
NAME_MAX = FamilyDoctorTeam._meta.get_field("name").max_length
PACKAGE_MAX = FamilyDoctorContract._meta.get_field("package").max_length


class ContractAlreadyActive(Conflict):
    code = "CONTRACT_ALREADY_ACTIVE"
    default_message = _("该居民已有履约中的家庭医生签约，请先解约或待其到期后再签。")


class ContractTermInvalid(InvalidInput):
    code = "CONTRACT_TERM_INVALID"
    default_message = _("签约期限有误：到期日期必须晚于生效日期。")


class ContractNotActive(errors.InvalidTransition):
    code = "CONTRACT_NOT_ACTIVE"
    default_message = _("该签约已到期或已解约，不能再解约。")


class TeamNameTaken(Conflict):
    code = "TEAM_NAME_TAKEN"
    default_message = _("本机构已有同名的家庭医生团队。")


class TeamMemberNotEligible(InvalidInput):
    code = "TEAM_MEMBER_NOT_ELIGIBLE"
    default_message = _("团队成员必须是本机构（或下属机构）在职的医务人员。")


class TeamInactive(Conflict):
    code = "TEAM_INACTIVE"
    default_message = _("该家庭医生团队已停用，不能签约。")


def _eligible_staff(organisation, staff_ids: Iterable[int], field: str) -> list:
    ids = sorted({int(i) for i in staff_ids})
    found = list(selectors.staff_eligible_for_team(organisation).filter(pk__in=ids))
    if len(found) != len(ids):
        raise TeamMemberNotEligible(field=field)
    return found


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("请填写团队名称。"), field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(_("团队名称不能超过 %(n)d 个字。") % {"n": NAME_MAX}, field="name")
    return name


@transaction.atomic
def create_team(
    *, actor: Actor, organisation_id: int, name: str, leader_id: int, member_ids: Iterable[int] = ()
) -> FamilyDoctorTeam:
    """Create a family-doctor team of a clinic in the actor's scope; the leader is always a member."""
    organisation = selectors.organisation_in_scope(actor, organisation_id)
    name = _name(name)
    (leader,) = _eligible_staff(organisation, [leader_id], "leader_id")
    members = _eligible_staff(organisation, [*member_ids, leader.pk], "member_ids")
    if FamilyDoctorTeam.objects.filter(organisation=organisation, name=name).exists():
        raise TeamNameTaken(field="name")
    try:
        with transaction.atomic():
            team = FamilyDoctorTeam.objects.create(organisation=organisation, name=name, leader=leader)
    except IntegrityError as exc:
        raise TeamNameTaken(field="name") from exc
    team.members.set(members)
    audit.record(
        actor,
        "chronic.team.create",
        target=audit.Target("family_doctor_team", team.pk),
        detail={
            "organisation_id": organisation.pk,
            "leader_id": leader.pk,
            "member_ids": [m.pk for m in members],
        },
    )
    return team


@transaction.atomic
def update_team(
    *,
    actor: Actor,
    team_id: int,
    leader_id: int | None = None,
    member_ids: Iterable[int] | None = None,
    is_active: bool | None = None,
) -> FamilyDoctorTeam:
    """Change a team's leader, members or whether it takes new contracts (existing ones stand)."""
    team = selectors.access_team(actor, team_id, for_update=True)
    if leader_id is not None:
        (team.leader,) = _eligible_staff(team.organisation, [leader_id], "leader_id")
    if member_ids is not None:
        team.members.set(_eligible_staff(team.organisation, [*member_ids, team.leader_id], "member_ids"))
    elif leader_id is not None:
        team.members.add(team.leader)
    if is_active is not None:
        team.is_active = bool(is_active)
    team.save()
    audit.record(
        actor,
        "chronic.team.update",
        target=audit.Target("family_doctor_team", team.pk),
        detail={
            "leader_id": team.leader_id,
            "member_ids": sorted(team.members.values_list("pk", flat=True)),
            "is_active": team.is_active,
        },
    )
    return team


def _expire_for_patient(patient_id: int, on: date) -> int:
    return FamilyDoctorContract.objects.filter(
        patient_id=patient_id, status=FamilyDoctorContract.Status.ACTIVE, ends_on__lt=on
    ).update(status=FamilyDoctorContract.Status.ENDED)


@transaction.atomic
def sign_contract(
    *,
    actor: Actor,
    patient_id: int,
    team_id: int,
    signed_on: date,
    starts_on: date,
    ends_on: date,
    package: str = "",
    today: date | None = None,
) -> FamilyDoctorContract:
    """Sign a family-doctor contract (签约) for a resident with a team, both in the actor's scope.

    One active contract per resident: a contract whose term has already ended is turned ENDED first
    (renewal does not wait for the nightly ``expire_contracts``); otherwise a second one is refused
    with ``CONTRACT_ALREADY_ACTIVE`` (409), the database constraint deciding under a race.
    """
    today = today or timezone.localdate()
    patient = selectors.access_screening_patient(actor, patient_id, purpose="contract")
    team = selectors.access_team(actor, team_id)
    if not team.is_active:
        raise TeamInactive(field="team_id")
    for field, value in (("signed_on", signed_on), ("starts_on", starts_on), ("ends_on", ends_on)):
        if not isinstance(value, date):
            raise InvalidInput(_("日期格式有误。"), field=field)
    if signed_on > today:
        raise errors.DateInFuture(_("签约日期不能晚于今天。"), field="signed_on")
    if ends_on <= starts_on:
        raise ContractTermInvalid(field="ends_on")
    if ends_on > rules.add_months(starts_on, 12 * MAX_TERM_YEARS):
        raise ContractTermInvalid(
            _("签约期限不能超过 %(n)d 年，请核对到期日期。") % {"n": MAX_TERM_YEARS}, field="ends_on"
        )
    if ends_on < today:
        raise ContractTermInvalid(_("到期日期已过，不能签订已结束的签约。"), field="ends_on")
    if starts_on < signed_on:
        raise ContractTermInvalid(_("生效日期不能早于签约日期。"), field="starts_on")
    package = (package or "").strip()
    if len(package) > PACKAGE_MAX:
        raise InvalidInput(_("服务包名称不能超过 %(n)d 个字。") % {"n": PACKAGE_MAX}, field="package")
    _expire_for_patient(patient.pk, today)
    if FamilyDoctorContract.objects.filter(
        patient=patient, status=FamilyDoctorContract.Status.ACTIVE
    ).exists():
        raise ContractAlreadyActive()
    try:
        with transaction.atomic():
            contract = FamilyDoctorContract.objects.create(
                patient=patient,
                team=team,
                signed_on=signed_on,
                starts_on=starts_on,
                ends_on=ends_on,
                package=package,
                created_by_id=actor.user_id,
            )
    except IntegrityError as exc:
        raise ContractAlreadyActive() from exc
    audit.record(
        actor,
        "chronic.contract.sign",
        target=audit.Target("family_doctor_contract", contract.pk, patient.pk),
        detail={"team_id": team.pk, "starts_on": str(starts_on), "ends_on": str(ends_on)},
    )
    return contract


@transaction.atomic
def terminate_contract(
    *, actor: Actor, contract_id: int, terminated_on: date, reason: str = "", today: date | None = None
) -> FamilyDoctorContract:
    """Terminate an active contract early (解约) on ``terminated_on`` (not in the future, not before
    it was signed)."""
    today = today or timezone.localdate()
    contract = selectors.access_contract(actor, contract_id, for_update=True)
    if contract.status != FamilyDoctorContract.Status.ACTIVE:
        raise ContractNotActive()
    if not isinstance(terminated_on, date):
        raise InvalidInput(_("日期格式有误。"), field="terminated_on")
    if terminated_on > today:
        raise errors.DateInFuture(_("解约日期不能晚于今天。"), field="terminated_on")
    if terminated_on < contract.signed_on:
        raise InvalidInput(_("解约日期不能早于签约日期。"), field="terminated_on")
    contract.status = FamilyDoctorContract.Status.TERMINATED
    contract.terminated_on = terminated_on
    contract.save(update_fields=["status", "terminated_on"])
    audit.record(
        actor,
        "chronic.contract.terminate",
        target=audit.Target("family_doctor_contract", contract.pk, contract.patient_id),
        reason=(reason or "")[:500],
    )
    return contract


@transaction.atomic
def expire_contracts(on: date | None = None, *, actor: Actor | None = None) -> int:
    """Turn every active contract whose term ended before ``on`` (``ends_on < on``) to ENDED; one
    conditional UPDATE, one audit row with the count. Run daily (periodic job)."""
    on = on or timezone.localdate()
    count = FamilyDoctorContract.objects.filter(
        status=FamilyDoctorContract.Status.ACTIVE, ends_on__lt=on
    ).update(status=FamilyDoctorContract.Status.ENDED)
    if count:
        audit.record(actor, "chronic.contract.expire", detail={"on": str(on), "count": count})
    return count
