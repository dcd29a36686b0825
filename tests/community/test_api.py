"""/api/v1/community/: contract, validation, 三员分立 and scoping through HTTP."""

from __future__ import annotations

import pytest

from tests.community.conftest import ORG_FIELDS
from yilian.common import policy
from yilian.community.models import Organisation, RoleAssignment, Staff

API = "/api/v1/community"


def _post(client, url, body):
    return client.post(url, body, content_type="application/json")


def _org_body(**overrides):
    body = {
        "code": "VC0102",
        "name": "东村卫生室",
        "kind": "village_clinic",
        "parent_code": "TS01",
        **ORG_FIELDS,
    }
    body.update(overrides)
    return body


def test_tree_nests_villages_under_townships(community, staff_of, login):
    client = login(staff_of(policy.DOCTOR))
    body = client.get(f"{API}/organisations").json()
    assert [n["code"] for n in body] == ["COUNTY01"]
    townships = body[0]["children"]
    assert {t["code"] for t in townships} == {"TS01", "TS02"}
    ts01 = next(t for t in townships if t["code"] == "TS01")
    assert [v["code"] for v in ts01["children"]] == ["VC0101"]
    assert ts01["child_count"] == 1
    assert body[0]["staff_count"] == 1  # the doctor asking


def test_flat_children_of_a_parent_with_counts(community, staff_of, login, django_assert_max_num_queries):
    client = login(staff_of(policy.DOCTOR))
    staff_of(policy.NURSE, community.village)
    with django_assert_max_num_queries(10):  # session, actor (3), lookup, list, session save
        body = client.get(f"{API}/organisations", {"parent": "ts01"}).json()
    assert [(o["code"], o["staff_count"], o["child_count"]) for o in body] == [("VC0101", 1, 0)]
    assert body[0]["parent_code"] == "TS01"


def test_unknown_organisation_names_the_code(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    response = client.get(f"{API}/organisations/NOPE-7")
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_ORGANISATION"
    assert "NOPE-7" in response.json()["message"]
    response = _post(client, f"{API}/organisations", _org_body(parent_code="GHOST-1"))
    assert response.status_code == 422
    assert response.json()["code"] == "UNKNOWN_ORGANISATION"
    assert "GHOST-1" in response.json()["message"]
    assert response.json()["field"] == "parent_code"


def test_sysadmin_creates_an_organisation(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    response = _post(client, f"{API}/organisations", _org_body(code="vc0102", division_code="370687100202"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "VC0102"
    assert body["parent_code"] == "TS01"
    assert body["path"].startswith(community.township.path)
    assert _post(client, f"{API}/organisations", _org_body()).status_code == 409


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "院" * 101),
        ("code", "C" * 33),
        ("province", "省" * 31),
        ("address_detail", "路" * 121),
        ("division_code", "3" * 13),
        ("phone", "1" * 21),
        ("parent_code", "P" * 33),
        ("name", 123),
        ("kind", ["village_clinic"]),
    ],
)
def test_oversized_or_mistyped_fields_are_422(community, staff_of, login, field, value):
    client = login(staff_of(policy.SYSADMIN))
    response = _post(client, f"{API}/organisations", _org_body(**{field: value}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert not Organisation.objects.filter(code="VC0102").exists()


def test_wrong_hierarchy_is_422(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    response = _post(client, f"{API}/organisations", _org_body(kind="township_centre"))
    assert response.status_code == 422
    assert response.json()["code"] == "HIERARCHY_VIOLATION"


def test_patch_changes_contact_and_status(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    response = client.patch(
        f"{API}/organisations/VC0101",
        {"phone": "0535-3300123", "status": "suspended", "reason": "装修"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "0535-3300123"
    assert response.json()["status"] == "suspended"
    response = client.patch(f"{API}/organisations/VC0101", {"kind": "x"}, content_type="application/json")
    assert response.status_code == 200  # unknown fields are ignored by the schema, nothing changes
    assert Organisation.objects.get(code="VC0101").kind == "village_clinic"


def test_departments_are_listed_per_organisation(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    body = {"organisation_code": "COUNTY01", "code": "CARD", "name": "心血管内科", "location": "门诊楼3层"}
    assert _post(client, f"{API}/departments", body).status_code == 201
    assert _post(client, f"{API}/departments", body).status_code == 409
    listed = client.get(f"{API}/organisations/COUNTY01/departments").json()
    assert [(d["code"], d["staff_count"]) for d in listed] == [("CARD", 0)]


def _staff_body(**overrides):
    body = {
        "username": "wangfang",
        "password": "Haiyang-Ward-2026",
        "name": "王芳",
        "organisation_code": "TS01",
        "title": "nurse",
        "licence_number": "202337060001",
        "practice_start_date": "2015-08-01",
    }
    body.update(overrides)
    return body


def test_staff_creation_and_weak_password(community, staff_of, login):
    client = login(staff_of(policy.SYSADMIN))
    weak = _post(client, f"{API}/staff", _staff_body(password="1234567890"))
    assert weak.status_code == 422
    assert weak.json()["code"] == "WEAK_PASSWORD"
    assert weak.json()["reasons"]
    created = _post(client, f"{API}/staff", _staff_body())
    assert created.status_code == 201, created.content
    assert created.json()["roles"] == []
    assert "password" not in created.json()
    assert _post(client, f"{API}/staff", _staff_body()).status_code == 409


def test_sysadmin_cannot_assign_roles_but_secadmin_can(community, staff_of, login, client):
    nurse = staff_of(policy.NURSE, community.township)
    url = f"{API}/staff/{nurse.pk}/roles"
    body = {"role": policy.COORDINATOR, "organisation_code": "TS01"}
    assert _post(login(staff_of(policy.SYSADMIN)), url, body).status_code == 403
    client.logout()
    secadmin_client = login(staff_of(policy.SECADMIN))
    response = _post(secadmin_client, url, body)
    assert response.status_code == 201, response.content
    assert response.json()["role_label"] == "医共体协调员"
    deleted = secadmin_client.delete(f"{API}/staff/{nurse.pk}/roles/{response.json()['id']}")
    assert deleted.status_code == 204
    assert list(RoleAssignment.objects.filter(staff=nurse).values_list("role", flat=True)) == [policy.NURSE]


def test_separation_of_duties_over_http(community, staff_of, login):
    admin = staff_of(policy.SYSADMIN, name="赵管理")
    client = login(staff_of(policy.SECADMIN))
    response = _post(
        client, f"{API}/staff/{admin.pk}/roles", {"role": "auditor", "organisation_code": "COUNTY01"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "SEPARATION_OF_DUTIES"
    assert response.json()["conflicting_role"] == "sysadmin"
    assert "赵管理" in response.json()["message"]


def test_staff_list_is_scoped_to_the_readers_subtree(
    community, staff_of, login, django_assert_max_num_queries
):
    staff_of(policy.NURSE, community.county, name="县护士")
    staff_of(policy.DOCTOR, community.other_village, name="发城医生")
    reader = staff_of(policy.VILLAGE_DOCTOR, community.township, name="留格庄医生")
    staff_of(policy.VILLAGE_DOCTOR, community.village, name="村医生")
    client = login(reader)
    with django_assert_max_num_queries(10):
        names = [s["name"] for s in client.get(f"{API}/staff").json()]
    assert sorted(names) == sorted(["留格庄医生", "村医生"])
    county_view = [
        s["name"] for s in login(staff_of(policy.DOCTOR, name="县医生")).get(f"{API}/staff").json()
    ]
    assert {"县护士", "发城医生", "留格庄医生", "村医生", "县医生"} <= set(county_view)


def test_staff_list_query_count_does_not_grow_with_staff(
    community, staff_of, login, django_assert_num_queries
):
    client = login(staff_of(policy.DOCTOR))
    client.get(f"{API}/staff")
    for i in range(3):
        staff_of(policy.NURSE, community.village, name=f"护士{i}")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(f"{API}/staff", {"limit": 2})
    with CaptureQueriesContext(connection) as many:
        client.get(f"{API}/staff")
    assert len(many) == len(few)
    assert Staff.objects.count() == 4


def test_the_schemas_render_in_the_openapi_document(db, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/community/organisations" in paths
    schemas = response.json()["components"]["schemas"]
    assert schemas["OrganisationCreate"]["properties"]["name"]["maxLength"] == 100


def test_mark_staff_as_left_over_http(community, staff_of, login):
    nurse = staff_of(policy.NURSE)
    client = login(staff_of(policy.SYSADMIN))
    response = _post(client, f"{API}/staff/{nurse.pk}/status", {"is_active": False, "reason": "退休"})
    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    assert _post(client, f"{API}/staff/{nurse.pk}/status", {"is_active": "perhaps"}).status_code == 422
