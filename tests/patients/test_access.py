"""Scoping and audit of patient reads (access.md: organisation subtree; every view audited)."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.patients.factories import actor_of, system_actor
from yilian.common.errors import NotFound, PermissionDenied
from yilian.common.models import AuditEvent
from yilian.patients import selectors


@pytest.fixture
def patients(community):
    return {
        "village": f.make_patient(community.village, name="张村民"),
        "township": f.make_patient(community.township, name="李镇民"),
        "other_village": f.make_patient(community.other_village, name="王外村"),
    }


def _visible(actor) -> set[str]:
    return set(selectors.patients_visible_to(actor).values_list("name", flat=True))


def test_village_doctor_sees_own_village_only(staff_of, community, patients):
    actor = actor_of(staff_of("village_doctor", community.village))
    assert _visible(actor) == {"张村民"}
    with pytest.raises(NotFound):
        selectors.access_patient(actor, patients["other_village"].pk)
    with pytest.raises(NotFound):
        selectors.access_patient(actor, patients["township"].pk)


def test_township_doctor_sees_its_villages(staff_of, community, patients):
    actor = actor_of(staff_of("doctor", community.township))
    assert _visible(actor) == {"张村民", "李镇民"}
    assert selectors.access_patient(actor, patients["village"].pk) == patients["village"]


def test_county_doctor_sees_everyone(staff_of, patients):
    actor = actor_of(staff_of("doctor"))
    assert _visible(actor) == {"张村民", "李镇民", "王外村"}


def test_roles_without_clinical_access_see_nobody(staff_of, patients):
    actor = actor_of(staff_of("sysadmin"))
    assert _visible(actor) == set()
    with pytest.raises(NotFound):
        selectors.access_patient(actor, patients["village"].pk)


def test_patient_account_sees_only_managed_patients(patients):
    account = f.make_patient_account()
    f.link(account, patients["village"])
    actor = actor_of(account.user)
    assert _visible(actor) == {"张村民"}
    assert selectors.access_patient(actor, patients["village"].pk) == patients["village"]
    with pytest.raises(NotFound):
        selectors.access_patient(actor, patients["township"].pk)


def test_api_key_is_scoped_by_its_organisation(community, patients):
    actor = system_actor(community.other_township)
    assert _visible(actor) == {"王外村"}
    with pytest.raises(NotFound):
        selectors.access_patient(actor, patients["village"].pk)


def test_missing_and_forbidden_look_alike(staff_of, community, patients):
    actor = actor_of(staff_of("village_doctor", community.village))
    with pytest.raises(NotFound) as missing:
        selectors.access_patient(actor, 999999)
    with pytest.raises(NotFound) as forbidden:
        selectors.access_patient(actor, patients["other_village"].pk)
    assert missing.value.as_dict() == forbidden.value.as_dict()


def test_every_view_is_audited_with_its_purpose(staff_of, patients):
    actor = actor_of(staff_of("doctor"))
    selectors.access_patient(actor, patients["village"].pk, purpose="reveal_id")
    event = AuditEvent.objects.get(action="patient.view")
    assert (event.patient_id, event.reason, event.outcome) == (patients["village"].pk, "reveal_id", "ok")
    assert event.actor_id == actor.user_id


def test_refused_view_of_a_real_record_is_audited_against_it(staff_of, community, patients):
    actor = actor_of(staff_of("village_doctor", community.village))
    with pytest.raises(NotFound):
        selectors.access_patient(actor, patients["other_village"].pk)
    event = AuditEvent.objects.get(patient_id=patients["other_village"].pk)
    assert (event.action, event.outcome) == ("patient.view", "refused")


def test_card_scan_ignores_org_scope_but_is_audited(staff_of, community, patients):
    actor = actor_of(staff_of("nurse", community.village))
    other = patients["other_village"]
    assert selectors.access_patient_for_card_scan(actor, other) == other
    event = AuditEvent.objects.get(action="patient.view")
    assert (event.patient_id, event.reason) == (other.pk, "card_scan")


def test_card_scan_needs_the_card_scan_permission(staff_of, patients):
    actor = actor_of(staff_of("coordinator"))
    with pytest.raises(PermissionDenied):
        selectors.access_patient_for_card_scan(actor, patients["village"])
    assert not AuditEvent.objects.filter(action="patient.view").exists()
