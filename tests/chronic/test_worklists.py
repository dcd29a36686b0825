"""Work lists (R7.3): membership, ordering, scope and query counts of each list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as f
from tests.chronic.factories import make_chronic_patient, make_follow_up, make_registry
from yilian.accounts.selectors import actor_for_user
from yilian.chronic import rules
from yilian.chronic.selectors import worklists as wl
from yilian.common import policy
from yilian.common.errors import NotFound

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 18)  # a Wednesday in Q4 (quarter starts 2026-10-01)


@pytest.fixture
def village_doctor(community):
    return actor_for_user(f.make_staff(policy.VILLAGE_DOCTOR, community.village, name="村医").user)


def _reg(org, days_overdue: int | None, *, name="李建国", **kwargs):
    patient = make_chronic_patient(org, name=name, phone=kwargs.pop("phone", "13900001111"))
    plan = None if days_overdue is None else TODAY - timedelta(days=days_overdue)
    return make_registry(patient=patient, next_follow_up_on=plan, registered_on=date(2024, 1, 5), **kwargs)


def _ids(page):
    return [row.registry_id for row in page.rows]


def test_overdue_list_sorts_high_risk_first_then_fewest_days_overdue(community, village_doctor):
    ten = _reg(community.village, 10)
    two = _reg(community.village, 2)
    risky = _reg(community.village, 40, high_risk=True)
    _reg(community.village, 0)  # due today: not overdue
    _reg(community.village, -3)  # planned later
    _reg(community.village, 400)  # lost

    page = wl.worklist(village_doctor, wl.OVERDUE, today=TODAY)

    assert _ids(page) == [risky.pk, two.pk, ten.pk]
    assert [row.days_overdue for row in page.rows] == [40, 2, 10]
    assert page.rows[0].high_risk


def test_lost_after_365_days_overdue_moves_to_the_lost_list(community, village_doctor):
    boundary = _reg(community.village, 365)
    lost = _reg(community.village, 366)
    older = _reg(community.village, 900)

    assert rules.is_lost(365) is False and rules.is_lost(366) is True
    assert _ids(wl.worklist(village_doctor, wl.OVERDUE, today=TODAY)) == [boundary.pk]
    assert _ids(wl.worklist(village_doctor, wl.CALL, today=TODAY)) == [boundary.pk]
    assert _ids(wl.worklist(village_doctor, wl.LOST, today=TODAY)) == [lost.pk, older.pk]


def test_due_this_week_runs_from_today_to_sunday(community, village_doctor):
    today = _reg(community.village, 0)
    sunday = _reg(community.village, -4)  # 2026-11-22
    _reg(community.village, -5)  # next Monday
    _reg(community.village, 1)  # yesterday: overdue

    never_seen = _reg(community.village, None)  # enrolled, no follow-up yet: due now, listed first

    assert _ids(wl.worklist(village_doctor, wl.DUE, today=TODAY)) == [never_seen.pk, today.pk, sunday.pk]
    assert wl.worklist(village_doctor, wl.DUE, today=TODAY).rows[0].days_overdue is None
    assert never_seen.pk not in _ids(wl.worklist(village_doctor, wl.OVERDUE, today=TODAY))
    assert wl.worklist_counts(village_doctor, today=TODAY)["due"] == 3


def test_missed_visit_means_overdue_without_a_face_to_face_visit_this_quarter(community, village_doctor):
    none_this_quarter = _reg(community.village, 20)
    make_follow_up(none_this_quarter, visit_on=date(2026, 9, 20), sbp=150, dbp=95, update_registry=False)
    phone_only = _reg(community.village, 10)
    make_follow_up(phone_only, visit_on=date(2026, 10, 20), mode="phone", update_registry=False)
    seen = _reg(community.village, 5)
    make_follow_up(seen, visit_on=date(2026, 10, 1), mode="home", sbp=150, dbp=95, update_registry=False)
    _reg(community.village, -2)  # not overdue
    _reg(community.village, 500)  # lost: on the lost list instead

    page = wl.worklist(village_doctor, wl.MISSED, today=TODAY)

    assert set(_ids(page)) == {none_this_quarter.pk, phone_only.pk}
    assert _ids(page) == [phone_only.pk, none_this_quarter.pk]


def test_uncontrolled_list_is_the_last_classification_unsatisfied(community, village_doctor):
    bad = _reg(community.village, -10, last_classification="unsatisfied")
    bad_overdue = _reg(community.village, 3, last_classification="unsatisfied")
    _reg(community.village, -10, last_classification="satisfied")
    _reg(community.village, 700, last_classification="unsatisfied")  # lost

    assert _ids(wl.worklist(village_doctor, wl.UNCONTROLLED, today=TODAY)) == [bad_overdue.pk, bad.pk]


def test_call_list_leaves_out_snoozed_registries_until_the_snooze_date(community, village_doctor):
    snoozed = _reg(community.village, 5)
    snoozed.call_snoozed_until = TODAY + timedelta(days=1)
    snoozed.save()
    back_today = _reg(community.village, 6)
    back_today.call_snoozed_until = TODAY
    back_today.save()
    plain = _reg(community.village, 7)

    assert _ids(wl.worklist(village_doctor, wl.CALL, today=TODAY)) == [back_today.pk, plain.pk]
    assert snoozed.pk in _ids(wl.worklist(village_doctor, wl.OVERDUE, today=TODAY))


def test_closed_registries_are_on_no_list(community, village_doctor):
    _reg(community.village, 5, closed_on=date(2026, 6, 1), close_reason="death")
    counts = wl.worklist_counts(village_doctor, today=TODAY)
    assert counts == dict.fromkeys(wl.KINDS, 0)


def test_township_list_covers_its_villages_and_a_village_doctor_sees_only_the_village(community, staff_of):
    in_village = _reg(community.village, 4)
    in_township = _reg(community.township, 3)
    elsewhere = _reg(community.other_village, 2)
    township = actor_for_user(staff_of(policy.DOCTOR, community.township).user)
    other_village = actor_for_user(staff_of(policy.VILLAGE_DOCTOR, community.other_village).user)
    village = actor_for_user(staff_of(policy.VILLAGE_DOCTOR, community.village).user)

    assert _ids(wl.worklist(township, wl.OVERDUE, today=TODAY)) == [in_township.pk, in_village.pk]
    assert _ids(wl.worklist(village, wl.OVERDUE, today=TODAY)) == [in_village.pk]
    assert _ids(wl.worklist(other_village, wl.OVERDUE, today=TODAY)) == [elsewhere.pk]
    # Filtering by one village of the township; another township's village looks missing.
    assert _ids(wl.worklist(township, wl.OVERDUE, today=TODAY, org_id=community.village.pk)) == [
        in_village.pk
    ]
    with pytest.raises(NotFound):
        wl.worklist(township, wl.OVERDUE, today=TODAY, org_id=community.other_village.pk)
    with pytest.raises(NotFound):
        wl.worklist(village, wl.OVERDUE, today=TODAY, org_id=community.township.pk)


def test_a_village_doctor_of_another_village_sees_nothing(community, staff_of):
    _reg(community.village, 4)
    _reg(community.village, 400)
    other = actor_for_user(staff_of(policy.VILLAGE_DOCTOR, community.other_village).user)
    assert wl.worklist_counts(other, today=TODAY) == dict.fromkeys(wl.KINDS, 0)
    pharmacist = actor_for_user(staff_of(policy.PHARMACIST, community.village).user)
    assert wl.worklist(pharmacist, wl.OVERDUE, today=TODAY).total == 0


def test_filter_by_responsible_doctor(community, staff_of, village_doctor):
    doctor = staff_of(policy.VILLAGE_DOCTOR, community.village, name="赵医生")
    mine = _reg(community.village, 4, responsible_doctor=doctor)
    _reg(community.village, 5)
    page = wl.worklist(village_doctor, wl.OVERDUE, today=TODAY, doctor_id=doctor.pk)
    assert _ids(page) == [mine.pk]
    assert page.rows[0].doctor_name == "赵医生"


def test_rows_are_masked_and_carry_age_tags_and_last_reading(community, village_doctor):
    patient = make_chronic_patient(
        community.village, name="张三丰", birth=date(1950, 12, 1), phone="13812345678"
    )
    htn = make_registry(patient=patient, registered_on=date(2024, 1, 5), high_risk=True)
    make_registry(patient=patient, disease="t2dm", registered_on=date(2024, 1, 5))
    make_follow_up(htn, visit_on=date(2026, 8, 1), sbp=152, dbp=96, next_due_on=TODAY - timedelta(days=9))

    row = wl.worklist(village_doctor, wl.OVERDUE, today=TODAY).rows[0]

    assert row.name_masked == "张*丰"
    assert "张三丰" not in repr(row)
    assert row.phone_masked == "*******5678" and "13812345678" not in repr(row)
    assert row.age == 75
    assert (row.disease_label, row.other_disease_labels) == ("高血压", ("2型糖尿病",))
    assert row.days_overdue == 9
    assert row.last_reading == "152/96 mmHg"
    assert row.last_classification_label == "控制不满意"


def test_pages_hold_25_rows_and_a_page_past_the_end_gives_the_last(community, village_doctor):
    for i in range(30):
        _reg(community.village, i + 1)
    first = wl.worklist(village_doctor, wl.OVERDUE, today=TODAY)
    last = wl.worklist(village_doctor, wl.OVERDUE, today=TODAY, page=9)
    assert (first.total, first.pages, len(first.rows)) == (30, 2, 25)
    assert (last.page, len(last.rows)) == (2, 5)
    assert set(_ids(first)).isdisjoint(_ids(last))


@pytest.mark.parametrize("kind", wl.KINDS)
def test_a_page_costs_the_same_few_queries_however_many_rows(community, village_doctor, kind):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            page = wl.worklist(village_doctor, kind, today=TODAY)
            assert page.rows
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for _ in range(n):
            days = {"due": -1, "lost": 500}.get(kind, 4)
            r = _reg(community.village, days, last_classification="unsatisfied")
            make_follow_up(r, visit_on=date(2026, 6, 1), sbp=150, dbp=95, update_registry=False)
            r.last_follow_up_on = date(2026, 6, 1)
            r.save()
            make_registry(patient=r.patient, disease="t2dm", registered_on=date(2024, 1, 5))

    add(2)
    few = queries()
    add(12)
    assert queries() == few == 5  # scope, count, rows (+patient, org, doctor), last readings, diseases


def test_tab_counts_come_in_one_query_after_the_scope(community, village_doctor, django_assert_num_queries):
    _reg(community.village, 4)
    _reg(community.village, -1, last_classification="unsatisfied")
    _reg(community.village, 400)
    with django_assert_num_queries(2):
        counts = wl.worklist_counts(village_doctor, today=TODAY)
    assert counts == {"due": 1, "overdue": 1, "uncontrolled": 1, "missed": 1, "call": 1, "lost": 1}
