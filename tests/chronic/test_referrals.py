"""Referral services (慢病转诊): one step up the path, tracking window, transitions (R3.3, R5.3–R5.5, R7.2)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.chronic.conftest import actor_of
from tests.chronic.factories import make_referral, make_registry
from yilian.chronic.errors import DateInFuture, InvalidTransition
from yilian.chronic.models import Referral
from yilian.chronic.services import referrals as services
from yilian.common.errors import InvalidInput, NotFound
from yilian.common.models import AuditEvent

pytestmark = pytest.mark.django_db
TODAY = date(2026, 9, 30)


def _open(actor, registry, from_org, **kw):
    args = dict(
        patient_id=registry.patient_id,
        disease=registry.disease,
        kind="routine",
        reasons=["two_consecutive_unsatisfied"],
        rules_fired=["R5.3"],
        from_org_id=from_org.pk,
        opened_on=date(2026, 9, 1),
        registry_id=registry.pk,
    )
    args.update(kw)
    return services.open_referral(actor=actor, **args)


def test_referral_goes_one_step_up_the_path(community):
    assert services.referral_target(community.village) == community.township
    assert services.referral_target(community.township) == community.county
    assert services.referral_target(community.county) == community.county


def test_open_sets_the_tracking_date_and_writes_audit(community, village_doctor):
    registry = make_registry(org=community.village)
    referral = _open(actor_of(village_doctor), registry, community.village)
    assert referral.to_org == community.township and referral.status == "open"
    assert referral.tracking_due_on == date(2026, 9, 15)
    assert referral.rules_fired == ["R5.3"]
    event = AuditEvent.objects.get(action="chronic.referral.open")
    assert event.patient_id == registry.patient_id and event.detail["to_org_id"] == community.township.pk


def test_open_from_an_organisation_out_of_scope_is_not_found(community, village_doctor):
    registry = make_registry(org=community.village)
    with pytest.raises(NotFound):
        _open(actor_of(village_doctor), registry, community.other_village)


@pytest.mark.parametrize(("change", "field"), [({"kind": "soon"}, "kind"), ({"reasons": []}, "reasons")])
def test_open_refuses_bad_values(community, village_doctor, change, field):
    registry = make_registry(org=community.village)
    with pytest.raises(InvalidInput) as err:
        _open(actor_of(village_doctor), registry, community.village, **change)
    assert err.value.field == field


def test_track_then_no_second_tracking(community, village_doctor):
    referral = make_referral(make_registry(org=community.village), opened_on=date(2026, 9, 1))
    actor = actor_of(village_doctor)
    done = services.track_referral(
        actor=actor,
        referral_id=referral.pk,
        tracked_on=date(2026, 9, 10),
        outcome="已到镇卫生院就诊",
        today=TODAY,
    )
    assert done.status == "tracked" and done.tracked_on == date(2026, 9, 10)
    with pytest.raises(InvalidTransition):
        services.track_referral(
            actor=actor, referral_id=referral.pk, tracked_on=date(2026, 9, 11), outcome="again", today=TODAY
        )


def test_track_dates_are_checked(community, village_doctor):
    referral = make_referral(make_registry(org=community.village), opened_on=date(2026, 9, 1))
    actor = actor_of(village_doctor)
    with pytest.raises(DateInFuture):
        services.track_referral(
            actor=actor, referral_id=referral.pk, tracked_on=date(2026, 10, 1), outcome="x", today=TODAY
        )
    with pytest.raises(InvalidInput):
        services.track_referral(
            actor=actor, referral_id=referral.pk, tracked_on=date(2026, 8, 31), outcome="x", today=TODAY
        )
    with pytest.raises(InvalidInput):
        services.track_referral(
            actor=actor, referral_id=referral.pk, tracked_on=date(2026, 9, 2), outcome=" ", today=TODAY
        )
    assert Referral.objects.get().status == "open"


def test_township_and_receiving_county_see_the_referral_but_another_village_does_not(
    community, township_doctor, other_village_doctor, staff_of
):
    referral = make_referral(make_registry(org=community.village), opened_on=date(2026, 9, 1))
    with pytest.raises(NotFound):
        services.cancel_referral(actor=actor_of(other_village_doctor), referral_id=referral.pk, reason="误开")
    done = services.cancel_referral(actor=actor_of(township_doctor), referral_id=referral.pk, reason="误开")
    assert done.status == "cancelled" and done.outcome == "误开"
    with pytest.raises(InvalidTransition):
        services.cancel_referral(actor=actor_of(township_doctor), referral_id=referral.pk, reason="again")


def test_cancel_needs_a_reason(community, village_doctor):
    referral = make_referral(make_registry(org=community.village), opened_on=date(2026, 9, 1))
    with pytest.raises(InvalidInput):
        services.cancel_referral(actor=actor_of(village_doctor), referral_id=referral.pk, reason="")


def test_referrals_visible_to_the_receiving_organisation(community, township_doctor, village_doctor):
    """A township sees a referral sent to it from outside its subtree; a village does not."""
    from yilian.chronic.selectors.registries import referrals_visible_to

    registry = make_registry(org=community.other_village)
    referral = make_referral(registry, opened_on=date(2026, 9, 1), to_org=community.township)
    assert list(referrals_visible_to(actor_of(township_doctor))) == [referral]
    assert not referrals_visible_to(actor_of(village_doctor)).exists()
