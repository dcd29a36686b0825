"""The demo county's year of chronic-disease history (ops/demo/chronic.py, issue #4 item 7)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest

from yilian.chronic import rules
from yilian.chronic.models import FollowUp, Referral, Registry, RegistryStatusHistory, RegistryYear
from yilian.community.models import RoleAssignment
from yilian.ops.demo.build import build_demo
from yilian.ops.demo.chronic import build_chronic

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def county():
    build_demo(patients=900, seed=7, villages=12)
    return build_chronic(seed=7, today=TODAY)


def snapshot() -> dict:
    return {
        "registries": sorted(
            Registry.objects.values_list(
                "patient__id_hash",
                "disease",
                "status",
                "registered_on",
                "diagnosed_on",
                "diagnosis_source",
                "managing_org__code",
                "responsible_doctor__licence_number",
                "next_follow_up_on",
                "last_classification",
                "closed_on",
            )
        ),
        "follow_ups": sorted(
            FollowUp.objects.values_list(
                "patient__id_hash", "disease", "visit_on", "mode", "sbp", "dbp", "fpg_mmol", "classification"
            ),
            key=str,
        ),
        "referrals": sorted(
            Referral.objects.values_list("patient__id_hash", "disease", "kind", "opened_on", "status"),
            key=str,
        ),
    }


def test_registries_are_for_residents_aged_35_or_more_at_their_village_clinic(county):
    registries = list(Registry.objects.select_related("patient", "managing_org"))
    assert county.registries == len(registries) > 20
    assert {r.disease for r in registries} >= {"htn", "t2dm"}
    assert county.by_disease["htn"] > county.by_disease["t2dm"] > 0
    doctors = set(
        RoleAssignment.objects.filter(role="village_doctor").values_list("staff_id", "organisation_id")
    )
    for r in registries:
        assert rules.age_on(r.patient.birth_date, TODAY) >= 35
        assert r.managing_org_id == r.patient.home_org_id and r.managing_org.kind == "village_clinic"
        assert (r.responsible_doctor_id, r.managing_org_id) in doctors
        assert r.diagnosed_on <= r.registered_on < TODAY
    assert any(r.registered_on.year == TODAY.year for r in registries), "some enrolled this year"


def test_plan_columns_follow_the_latest_follow_up(county):
    by_registry = defaultdict(list)
    for fu in FollowUp.objects.order_by("visit_on", "id"):
        by_registry[fu.registry_id].append(fu)
    assert by_registry
    for registry in Registry.objects.all():
        visits = by_registry.get(registry.pk, [])
        if not visits:
            assert registry.last_follow_up_on is None and registry.next_follow_up_on is None
            continue
        latest = visits[-1]
        assert registry.last_follow_up_on == latest.visit_on
        assert registry.next_follow_up_on == latest.next_due_on
        classified = [v.classification for v in visits if v.classification]
        assert registry.last_classification == (classified[-1] if classified else "")


def test_every_follow_up_is_the_rules_evaluation_chained_on_the_previous_visit(county):
    previous: dict[int, rules.PreviousVisit | None] = {}
    plan: dict[int, date | None] = {}
    checked = 0
    for fu in FollowUp.objects.order_by("registry_id", "visit_on", "id"):
        registry = fu.registry
        assert registry.registered_on <= fu.visit_on <= TODAY
        if registry.closed_on:
            assert fu.visit_on <= registry.closed_on
        sbp, dbp = fu.sbp, fu.dbp
        if fu.sbp2 is not None:
            sbp, dbp = (fu.sbp + fu.sbp2 + 1) // 2, (fu.dbp + fu.dbp2 + 1) // 2
        evaluation = rules.evaluate_visit(
            rules.VisitInput(
                disease=fu.disease,
                visit_on=fu.visit_on,
                mode=fu.mode,
                age=fu.age_at_visit,
                sbp=sbp,
                dbp=dbp,
                fpg_mmol=fu.fpg_mmol,
                heart_rate=fu.heart_rate,
                symptoms=frozenset(fu.symptoms),
                adr=fu.adr,
                adr_uncontrollable=fu.adr_uncontrollable,
                new_complication=fu.new_complication,
                complication_worsened=fu.complication_worsened,
            ),
            previous.get(fu.registry_id),
            current_plan=plan.get(fu.registry_id),
        )
        assert (fu.classification, fu.referral, fu.next_due_on, fu.urgent) == (
            evaluation.classification,
            evaluation.referral,
            evaluation.next_due_on,
            evaluation.urgent,
        )
        assert fu.rules_fired == list(evaluation.rules_fired)
        assert fu.urgent_signs == list(evaluation.urgent_signs)
        measured = fu.fpg_at_target if fu.disease == "t2dm" else fu.bp_at_target
        if fu.mode in rules.FACE_TO_FACE and measured is not None:
            previous[fu.registry_id] = rules.PreviousVisit(fu.visit_on, measured)
        plan[fu.registry_id] = fu.next_due_on
        checked += 1
    assert checked == county.follow_ups > 50


def test_history_is_realistic_in_shape(county):
    follow_ups = FollowUp.objects.all()
    modes = {m for m in follow_ups.values_list("mode", flat=True)}
    assert modes == {"clinic", "home", "phone"}
    f2f = follow_ups.filter(mode__in=["clinic", "home"], bp_at_target__isnull=False)
    share = f2f.filter(bp_at_target=True).count() / f2f.count()
    assert 0.35 < share < 0.75
    assert follow_ups.filter(referral="routine").exists()
    window = TODAY - timedelta(days=365)
    recent = set(follow_ups.filter(visit_on__gte=window).values_list("registry_id", flat=True))
    active = Registry.objects.filter(status="active", registered_on__lt=window)
    assert active.exclude(pk__in=recent).exists(), "some are lost to follow-up (失访)"
    # One visit of a patient in two registries (HTN + T2DM) is one row per registry, one visit key (R5.7).
    visits = defaultdict(set)
    for key, patient_id, day in follow_ups.values_list("visit_key", "patient_id", "visit_on"):
        visits[key].add((patient_id, day))
    assert all(len(v) == 1 for v in visits.values())


def test_referrals_go_up_to_the_township_and_are_tracked_by_the_next_visit(county):
    referrals = list(Referral.objects.select_related("from_org", "to_org", "follow_up"))
    assert referrals and county.referrals == len(referrals)
    for r in referrals:
        assert r.to_org_id == r.from_org.parent_id and r.to_org.kind == "township_centre"
        assert r.tracking_due_on == r.opened_on + timedelta(days=14)
        assert r.follow_up.visit_on == r.opened_on and r.follow_up.referral == r.kind
        later = FollowUp.objects.filter(registry_id=r.registry_id, visit_on__gte=r.opened_on).exclude(
            pk=r.follow_up_id
        )
        if r.status == "tracked":
            assert later.filter(visit_on=r.tracked_on).exists()
        else:
            assert r.status == "open" and not later.exists()


def test_deaths_and_moves_close_registries_with_history(county):
    closed = Registry.objects.filter(status="closed")
    for r in closed:
        assert r.close_reason in {"death", "moved_out"} and r.closed_on >= r.registered_on
        assert RegistryStatusHistory.objects.filter(registry=r, to_status="closed").exists()
    assert RegistryStatusHistory.objects.filter(to_status="active").count() == county.registries
    assert county.closed == closed.count()


def test_year_rollups_exist_for_registries_visited_this_year(county):
    assert county.rollup_rows and county.rollup_rows == RegistryYear.objects.count()
    visited = set(
        FollowUp.objects.filter(visit_on__year=TODAY.year, mode__in=["clinic", "home"]).values_list(
            "registry_id", flat=True
        )
    )
    rolled = dict(RegistryYear.objects.filter(year=TODAY.year).values_list("registry_id", "ff_dates"))
    assert visited and visited <= set(rolled)
    for registry_id in list(visited)[:20]:
        days = (
            FollowUp.objects.filter(
                registry_id=registry_id, visit_on__year=TODAY.year, mode__in=["clinic", "home"]
            )
            .values("visit_on")
            .distinct()
            .count()
        )
        assert rolled[registry_id] == days


def test_same_seed_and_day_build_the_same_history(county):
    first = snapshot()
    build_demo(patients=900, seed=7, villages=12, force=True)
    build_chronic(seed=7, today=TODAY)
    assert snapshot() == first
    build_demo(patients=900, seed=7, villages=12, force=True)
    build_chronic(seed=8, today=TODAY)
    assert snapshot()["registries"] != first["registries"]


def test_a_county_without_patients_builds_no_history():
    build_demo(patients=0, seed=7, villages=3)
    result = build_chronic(seed=7, today=TODAY)
    assert (result.registries, result.follow_ups, result.referrals) == (0, 0, 0)
    assert not Registry.objects.exists()
