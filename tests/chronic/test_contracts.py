"""Family-doctor teams and contracts (家庭医生签约): services and API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction

from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_chronic_patient
from yilian.chronic import errors
from yilian.chronic.models import FamilyDoctorContract
from yilian.chronic.services import contracts as services
from yilian.common import policy
from yilian.common.errors import NotFound
from yilian.common.models import AuditEvent

TODAY = date(2026, 6, 1)
URL = "/api/v1/chronic"


@pytest.fixture
def doctor(township_doctor):
    return actor_of(township_doctor)


@pytest.fixture
def team(doctor, community, township_doctor, village_doctor):
    return services.create_team(
        actor=doctor,
        organisation_id=community.township.pk,
        name="留格庄一组",
        leader_id=township_doctor.pk,
        member_ids=[village_doctor.pk],
    )


@pytest.fixture
def resident(community):
    return make_chronic_patient(community.village, name="冯秀英", birth=date(1955, 8, 8), sex="F")


def sign(actor, patient, team, *, starts_on=TODAY, ends_on=date(2027, 5, 31), **kw):
    return services.sign_contract(
        actor=actor,
        patient_id=patient.pk,
        team_id=team.pk,
        signed_on=kw.pop("signed_on", starts_on),
        starts_on=starts_on,
        ends_on=ends_on,
        today=kw.pop("today", TODAY),
        **kw,
    )


def test_team_has_leader_and_members_from_the_org_subtree(team, township_doctor, village_doctor):
    assert team.leader_id == township_doctor.pk
    assert set(team.members.values_list("pk", flat=True)) == {township_doctor.pk, village_doctor.pk}
    assert AuditEvent.objects.filter(action="chronic.team.create").exists()


def test_team_member_of_another_township_is_refused(doctor, community, township_doctor, other_village_doctor):
    with pytest.raises(services.TeamMemberNotEligible):
        services.create_team(
            actor=doctor,
            organisation_id=community.township.pk,
            name="二组",
            leader_id=township_doctor.pk,
            member_ids=[other_village_doctor.pk],
        )


def test_team_name_is_unique_per_org(doctor, community, township_doctor, team):
    with pytest.raises(services.TeamNameTaken):
        services.create_team(
            actor=doctor,
            organisation_id=community.township.pk,
            name="留格庄一组",
            leader_id=township_doctor.pk,
        )


def test_team_of_an_org_outside_scope_is_not_found(community, staff_of, township_doctor):
    village = actor_of(staff_of(policy.VILLAGE_DOCTOR, community.village))
    with pytest.raises(NotFound):
        services.create_team(
            actor=village, organisation_id=community.township.pk, name="越权", leader_id=township_doctor.pk
        )


def test_sign_contract(doctor, team, resident):
    contract = sign(doctor, resident, team, package="慢病包")
    assert contract.status == FamilyDoctorContract.Status.ACTIVE
    assert AuditEvent.objects.filter(action="chronic.contract.sign", patient_id=resident.pk).exists()


def test_only_one_active_contract_per_resident(doctor, team, resident):
    sign(doctor, resident, team)
    with pytest.raises(services.ContractAlreadyActive) as exc:
        sign(doctor, resident, team)
    assert exc.value.status == 409
    assert FamilyDoctorContract.objects.count() == 1


def test_database_refuses_a_second_active_contract(doctor, team, resident):
    first = sign(doctor, resident, team)
    with pytest.raises(IntegrityError), transaction.atomic():
        FamilyDoctorContract.objects.create(
            patient=resident, team=team, signed_on=TODAY, starts_on=TODAY, ends_on=first.ends_on
        )


@pytest.mark.parametrize(
    ("starts_on", "ends_on"),
    [
        (TODAY, TODAY),  # ends on the day it starts
        (TODAY, TODAY - timedelta(days=1)),  # ends before it starts
        (TODAY, date(2030, 1, 1)),  # longer than 3 years
    ],
)
def test_term_must_end_after_start_and_be_sane(doctor, team, resident, starts_on, ends_on):
    with pytest.raises(services.ContractTermInvalid):
        sign(doctor, resident, team, starts_on=starts_on, ends_on=ends_on)
    assert not FamilyDoctorContract.objects.exists()


def test_future_signature_is_refused(doctor, team, resident):
    with pytest.raises(errors.DateInFuture):
        sign(doctor, resident, team, signed_on=TODAY + timedelta(days=1), starts_on=TODAY + timedelta(days=1))


def test_terminate_then_sign_again(doctor, team, resident):
    contract = sign(doctor, resident, team)
    services.terminate_contract(
        actor=doctor, contract_id=contract.pk, terminated_on=TODAY, reason="迁出", today=TODAY
    )
    contract.refresh_from_db()
    assert contract.status == FamilyDoctorContract.Status.TERMINATED
    assert contract.terminated_on == TODAY
    with pytest.raises(services.ContractNotActive):
        services.terminate_contract(actor=doctor, contract_id=contract.pk, terminated_on=TODAY, today=TODAY)
    assert sign(doctor, resident, team).status == FamilyDoctorContract.Status.ACTIVE


def test_expire_contracts_ends_terms_that_are_over(doctor, team, resident, community):
    other = make_chronic_patient(community.village, name="陈二")
    ended = sign(
        doctor,
        resident,
        team,
        starts_on=date(2025, 6, 1),
        ends_on=date(2026, 5, 31),
        signed_on=date(2025, 6, 1),
        today=date(2025, 6, 1),
    )
    running = sign(doctor, other, team)
    assert services.expire_contracts(date(2026, 5, 31)) == 0  # the last day of the term is still in it
    assert services.expire_contracts(TODAY) == 1
    ended.refresh_from_db()
    running.refresh_from_db()
    assert ended.status == FamilyDoctorContract.Status.ENDED
    assert running.status == FamilyDoctorContract.Status.ACTIVE
    assert AuditEvent.objects.filter(action="chronic.contract.expire").exists()


def test_renewal_after_the_term_does_not_wait_for_the_nightly_expiry(doctor, team, resident):
    sign(
        doctor,
        resident,
        team,
        starts_on=date(2025, 6, 1),
        ends_on=date(2026, 5, 31),
        signed_on=date(2025, 6, 1),
        today=date(2025, 6, 1),
    )
    renewed = sign(doctor, resident, team, starts_on=TODAY, ends_on=date(2027, 5, 31))
    assert renewed.status == FamilyDoctorContract.Status.ACTIVE
    assert FamilyDoctorContract.objects.filter(status=FamilyDoctorContract.Status.ENDED).count() == 1


def test_other_township_cannot_terminate(doctor, team, resident, community, staff_of):
    contract = sign(doctor, resident, team)
    outsider = actor_of(staff_of(policy.DOCTOR, community.other_township))
    with pytest.raises(NotFound):
        services.terminate_contract(actor=outsider, contract_id=contract.pk, terminated_on=TODAY, today=TODAY)


# --- API --------------------------------------------------------------------------------------------


def test_api_team_and_contract_round_trip(login, township_doctor, village_doctor, community, resident):
    client = login(township_doctor)
    r = client.post(
        f"{URL}/family-doctor-teams",
        {
            "organisation_id": community.township.pk,
            "name": "三组",
            "leader_id": township_doctor.pk,
            "member_ids": [village_doctor.pk],
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    team_id = r.json()["id"]
    assert {m["id"] for m in r.json()["members"]} == {township_doctor.pk, village_doctor.pk}
    today = date.today()
    body = {
        "patient_id": resident.pk,
        "team_id": team_id,
        "signed_on": today.isoformat(),
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=364)).isoformat(),
        "package": "基础包",
    }
    r = client.post(f"{URL}/contracts", body, content_type="application/json")
    assert r.status_code == 201, r.content
    contract_id = r.json()["id"]
    r = client.post(f"{URL}/contracts", body, content_type="application/json")
    assert r.status_code == 409
    assert r.json()["code"] == "CONTRACT_ALREADY_ACTIVE"
    r = client.get(f"{URL}/contracts/active")
    assert r.status_code == 200 and r.json()["total"] == 1
    assert "*" in r.json()["items"][0]["patient"]["id_masked"]
    r = client.post(
        f"{URL}/contracts/{contract_id}/terminate",
        {"terminated_on": today.isoformat()},
        content_type="application/json",
    )
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    r = client.get(f"{URL}/contracts", {"patient_id": resident.pk})
    assert [c["status"] for c in r.json()] == ["terminated"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"ends_on": "2020-01-01"}, 422, "CONTRACT_TERM_INVALID"),
        ({"ends_on": "not a date"}, 422, "VALIDATION_ERROR"),
        ({"team_id": "abc"}, 422, "VALIDATION_ERROR"),
        ({"package": "包" * 41}, 422, "VALIDATION_ERROR"),
        ({"team_id": 999999}, 404, "NOT_FOUND"),
        ({"patient_id": 999999}, 404, "NOT_FOUND"),
    ],
)
def test_api_bad_contract_input_is_4xx(login, township_doctor, team, resident, change, status, code):
    today = date.today()
    body = {
        "patient_id": resident.pk,
        "team_id": team.pk,
        "signed_on": today.isoformat(),
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=364)).isoformat(),
        **change,
    }
    r = login(township_doctor).post(f"{URL}/contracts", body, content_type="application/json")
    assert r.status_code == status, r.content
    assert r.json()["code"] == code
    assert not FamilyDoctorContract.objects.exists()


def test_api_other_townships_resident_is_not_found(login, community, staff_of, team):
    stranger = make_chronic_patient(community.other_village, name="外乡人")
    today = date.today()
    body = {
        "patient_id": stranger.pk,
        "team_id": team.pk,
        "signed_on": today.isoformat(),
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=364)).isoformat(),
    }
    r = login(staff_of(policy.DOCTOR, community.township)).post(
        f"{URL}/contracts", body, content_type="application/json"
    )
    assert r.status_code == 404
    assert (
        login(staff_of(policy.DOCTOR, community.township))
        .get(f"{URL}/contracts", {"patient_id": stranger.pk})
        .status_code
        == 404
    )


def test_api_refuses_roles_without_chronic_manage(login, community, staff_of, resident):
    client = login(staff_of(policy.PHARMACIST, community.township))
    assert client.get(f"{URL}/family-doctor-teams").status_code == 403
    assert client.get(f"{URL}/contracts", {"patient_id": resident.pk}).status_code == 403
