"""community.selectors: subtrees, counts without N+1, staff scoping."""

from __future__ import annotations

from django.contrib.admin.sites import site
from django.urls import reverse

from tests import factories as f
from yilian.accounts.selectors import actor_for_user
from yilian.common import policy
from yilian.community import selectors
from yilian.community.models import Department, Organisation


def test_subtree_is_the_prefix_of_the_path(community):
    codes = set(selectors.subtree(community.township).values_list("code", flat=True))
    assert codes == {"TS01", "VC0101"}
    assert selectors.subtree(community.county).count() == 5


def test_children_with_counts_in_one_query(community, staff_of, django_assert_num_queries):
    for i in range(5):
        f.make_org(f"村{i}", "village_clinic", community.township, code=f"VCN{i}")
    staff_of(policy.NURSE, community.village)
    staff_of(policy.NURSE, community.village)
    with django_assert_num_queries(1):
        rows = [
            (o.code, o.child_count, o.staff_count) for o in selectors.children_with_counts(community.county)
        ]
    assert rows == [("TS01", 6, 0), ("TS02", 1, 0)]
    village = selectors.children_with_counts(community.township).get(code="VC0101")
    assert village.staff_count == 2


def test_ancestors_run_from_the_root(community):
    assert [o.code for o in selectors.ancestors(community.village)] == ["COUNTY01", "TS01"]
    assert selectors.ancestors(community.county) == []


def test_staff_visible_to_nobody_without_a_role(community, staff_of):
    staff_of(policy.DOCTOR)
    account = f.make_patient_account()
    assert not selectors.staff_visible_to(actor_for_user(account.user)).exists()
    assert not selectors.staff_visible_to(policy.ANONYMOUS).exists()


def test_village_doctor_sees_only_the_village(community, staff_of):
    staff_of(policy.DOCTOR, community.township)
    me = staff_of(policy.VILLAGE_DOCTOR, community.village)
    visible = selectors.staff_visible_to(actor_for_user(me.user))
    assert list(visible) == [me]


def test_admin_lists_and_searches_reference_data_read_mostly(community, admin_client):
    Department.objects.create(organisation=community.county, code="CARD", name="心血管内科")
    response = admin_client.get(reverse("admin:community_organisation_changelist"), {"q": "留格庄"})
    assert response.status_code == 200
    assert "留格庄镇卫生院" in response.content.decode()
    assert "发城镇卫生院" not in response.content.decode()
    assert (
        admin_client.get(reverse("admin:community_department_changelist"), {"q": "心血管"}).status_code == 200
    )
    model_admin = site._registry[Organisation]
    assert not model_admin.has_add_permission(None)
    assert not model_admin.has_delete_permission(None)
    assert "path" in model_admin.readonly_fields and "code" in model_admin.readonly_fields
