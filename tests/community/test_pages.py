"""Community pages: the lazily loaded organisation tree, the detail page and its HTMX forms."""

from __future__ import annotations

from django.urls import reverse

from tests import factories as f
from yilian.accounts.models import User
from yilian.common import policy
from yilian.common.models import AuditEvent
from yilian.community.models import Department, Organisation, RoleAssignment, Staff

HX = {"HTTP_HX_REQUEST": "true"}


def test_tree_shows_townships_and_loads_villages_lazily(community, staff_of, login):
    client = login(staff_of(policy.DOCTOR))
    page = client.get(reverse("community:org-tree"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "海阳县人民医院" in html and "留格庄镇卫生院" in html and "发城镇卫生院" in html
    assert "留格庄村卫生室" not in html  # villages are not rendered up front
    assert reverse("community:org-children", args=["TS01"]) in html
    fragment = client.get(reverse("community:org-children", args=["TS01"]), **HX)
    assert "留格庄村卫生室" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_tree_query_count_does_not_grow_with_townships(
    community, staff_of, login, django_assert_max_num_queries
):
    client = login(staff_of(policy.DOCTOR))
    for i in range(30):
        township = f.make_org(f"第{i}镇卫生院", "township_centre", community.county, code=f"TSX{i}")
        f.make_org(f"第{i}村卫生室", "village_clinic", township, code=f"VCX{i}")
    with django_assert_max_num_queries(14):
        page = client.get(reverse("community:org-tree"))
    assert "第29镇卫生院" in page.content.decode()
    assert "第29村卫生室" not in page.content.decode()


def test_detail_lists_departments_and_staff_with_roles(community, staff_of, login):
    dept = Department.objects.create(organisation=community.county, code="CARD", name="心血管内科")
    staff_of(policy.DOCTOR, name="陈心", department=dept)
    client = login(staff_of(policy.NURSE))
    html = client.get(reverse("community:org-detail", args=["COUNTY01"])).content.decode()
    assert "心血管内科" in html and "陈心" in html and "主治医师" in html and "医生" in html
    assert "新增人员" not in html and "新增科室" not in html and 'class="role-assign"' not in html


def test_sysadmin_sees_the_add_forms_but_not_role_assignment(community, staff_of, login):
    staff_of(policy.DOCTOR)
    html = (
        login(staff_of(policy.SYSADMIN))
        .get(reverse("community:org-detail", args=["COUNTY01"]))
        .content.decode()
    )
    assert "新增下级机构" in html and "新增科室" in html and "新增人员" in html
    assert 'class="role-assign"' not in html


def test_secadmin_sees_role_assignment_but_no_add_forms(community, staff_of, login):
    staff_of(policy.DOCTOR)
    html = (
        login(staff_of(policy.SECADMIN))
        .get(reverse("community:org-detail", args=["COUNTY01"]))
        .content.decode()
    )
    assert 'class="role-assign"' in html
    assert "新增人员" not in html and "新增下级机构" not in html


def test_village_clinic_offers_no_subordinate_form(community, staff_of, login):
    html = (
        login(staff_of(policy.SYSADMIN))
        .get(reverse("community:org-detail", args=["VC0101"]))
        .content.decode()
    )
    assert "新增下级机构" not in html
    assert "新增科室" in html


def test_htmx_org_form_shows_errors_inline_and_redirects_on_success(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    url = reverse("community:org-create", args=["TS01"])
    data = {
        "kind": "village_clinic",
        "code": "VC0101",
        "name": "重复村",
        "province": "山东省",
        "city": "烟台市",
        "county": "海阳县",
    }
    response = client.post(url, data, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "field-error" in html and "VC0101" in html and "已被使用" in html
    assert "<html" not in html
    data["code"] = "VC0109"
    response = client.post(url, data, **HX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("community:org-detail", args=["TS01"])
    assert Organisation.objects.get(code="VC0109").parent == community.township


def test_staff_form_shows_password_validator_messages(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    url = reverse("community:staff-create", args=["COUNTY01"])
    response = client.post(
        url, {"name": "刘强", "username": "liuqiang", "password": "12345678", "title": "none"}, **HX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "密码" in html and "field-error" in html


def test_role_assignment_refusal_is_shown_in_the_row(community, staff_of, login):
    admin = staff_of(policy.SYSADMIN, name="孙管理")
    client = login(staff_of(policy.SECADMIN))
    url = reverse("community:role-assign", args=[admin.pk])
    response = client.post(url, {"role": "auditor", "organisation_code": "COUNTY01"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "三员分立" in html and f'id="staff-roles-{admin.pk}"' in html
    ok = client.post(
        url.replace(str(admin.pk), str(staff_of(policy.NURSE).pk)),
        {"role": "coordinator", "organisation_code": "COUNTY01"},
        **HX,
    )
    assert "医共体协调员" in ok.content.decode()


def test_revoke_from_the_row(community, staff_of, login):
    nurse = staff_of(policy.NURSE)
    assignment = RoleAssignment.objects.get(staff=nurse)
    client = login(staff_of(policy.SECADMIN))
    response = client.post(reverse("community:role-revoke", args=[nurse.pk, assignment.pk]), **HX)
    assert response.status_code == 200
    assert "未分配角色" in response.content.decode()
    assert not RoleAssignment.objects.filter(staff=nurse).exists()


def test_unknown_organisation_page_is_404(community, staff_of, login):
    response = login(staff_of(policy.DOCTOR)).get(reverse("community:org-detail", args=["NOPE-3"]))
    assert response.status_code == 404
    assert "NOPE-3" in response.content.decode()


def test_patient_accounts_and_anonymous_are_kept_out(community, client):
    response = client.get(reverse("community:org-tree"))
    assert response.status_code == 302
    account = f.make_patient_account()
    client.force_login(account.user)
    assert client.get(reverse("community:org-tree")).status_code == 403


def test_sysadmin_edits_contact_and_suspends_an_organisation(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    url = reverse("community:org-update", args=["VC0101"])
    org = community.village
    data = {
        "name": org.name,
        "province": org.province,
        "city": org.city,
        "county": org.county,
        "township": org.township,
        "phone": "0535-3388123",
        "status": "suspended",
        "reason": "村室翻修",
        "division_code": "12",
    }
    response = client.post(url, data, **HX)
    assert response.status_code == 200
    assert "行政区划代码" in response.content.decode() and "field-error" in response.content.decode()
    data["division_code"] = ""
    response = client.post(url, data, **HX)
    assert response.status_code == 204
    org.refresh_from_db()
    assert (org.phone, org.status) == ("0535-3388123", "suspended")
    assert AuditEvent.objects.filter(action="community.organisation.status", reason="村室翻修").exists()
    html = client.get(reverse("community:org-tree")).content.decode()
    assert "暂停" in client.get(reverse("community:org-children", args=["TS01"])).content.decode()
    assert "海阳县人民医院" in html


def test_doctor_cannot_post_the_edit_form(community, staff_of, login):
    response = login(staff_of(policy.DOCTOR)).post(
        reverse("community:org-update", args=["VC0101"]), {"name": "x"}
    )
    assert response.status_code == 403


def test_secadmin_is_not_offered_its_own_roles(community, staff_of, login):
    me = staff_of(policy.SECADMIN)
    other = staff_of(policy.DOCTOR)
    html = login(me).get(reverse("community:org-detail", args=["COUNTY01"])).content.decode()
    assert reverse("community:role-assign", args=[other.pk]) in html
    assert reverse("community:role-assign", args=[me.pk]) not in html


def test_sysadmin_marks_a_member_as_left_from_the_row(community, staff_of, login):
    nurse = staff_of(policy.NURSE, name="周护士")
    client = login(staff_of(policy.SYSADMIN))
    html = client.get(reverse("community:org-detail", args=["COUNTY01"])).content.decode()
    assert reverse("community:staff-status", args=[nurse.pk]) in html
    response = client.post(reverse("community:staff-status", args=[nurse.pk]), {"active": "0"}, **HX)
    assert response.status_code == 204
    nurse.refresh_from_db()
    assert not nurse.is_active
    assert "周护士 已标记为离职" in client.get(response["HX-Redirect"]).content.decode()


def _cheap_staff(username, role, org, name):
    """Staff without a password hash (Argon2 is slow on purpose; these sign in by force_login)."""
    user = User(username=username, kind=User.Kind.STAFF)
    user.set_unusable_password()
    user.save()
    staff = Staff.objects.create(user=user, name=name, organisation=org)
    RoleAssignment.objects.create(staff=staff, role=role, organisation=org)
    return staff


def test_staff_list_is_paged_and_searchable(community, client, django_assert_max_num_queries):
    reader = _cheap_staff("reader", policy.DOCTOR, community.county, name="读者")
    for i in range(60):
        _cheap_staff(f"s{i:02d}", policy.NURSE, community.county, name=f"护士{i:02d}")
    client.force_login(reader.user)
    url = reverse("community:org-detail", args=["COUNTY01"])
    with django_assert_max_num_queries(16):
        first = client.get(url).content.decode()
    assert "共 61 人" in first and "第 1 / 2 页" in first
    assert first.count('data-staff="') == 50
    second = client.get(url, {"page": 2}).content.decode()
    assert second.count('data-staff="') == 11
    found = client.get(url, {"q": "护士07"}).content.decode()
    assert found.count('data-staff="') == 1 and "护士07" in found
    assert "没有找到" in client.get(url, {"q": "无此人"}).content.decode()
