"""API schemas of the community app, by direction. Every input string has a length limit."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema


class OrganisationCreate(Schema):
    code: str = Field(..., min_length=2, max_length=32, description="机构编码：大写字母、数字、连字符")
    name: str = Field(..., min_length=1, max_length=100)
    kind: str = Field(
        ...,
        max_length=20,
        description="county_hospital | township_centre | community_centre | village_clinic",
    )
    parent_code: str | None = Field(None, max_length=32)
    province: str = Field(..., min_length=1, max_length=30)
    city: str = Field(..., min_length=1, max_length=30)
    county: str = Field(..., min_length=1, max_length=30)
    township: str = Field("", max_length=30)
    village: str = Field("", max_length=30)
    address_detail: str = Field("", max_length=120)
    division_code: str = Field("", max_length=12, description="12 位统计用区划代码")
    phone: str = Field("", max_length=20)


class OrganisationUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    province: str | None = Field(None, min_length=1, max_length=30)
    city: str | None = Field(None, min_length=1, max_length=30)
    county: str | None = Field(None, min_length=1, max_length=30)
    township: str | None = Field(None, max_length=30)
    village: str | None = Field(None, max_length=30)
    address_detail: str | None = Field(None, max_length=120)
    division_code: str | None = Field(None, max_length=12)
    phone: str | None = Field(None, max_length=20)
    status: str | None = Field(None, max_length=10, description="active | suspended | closed")
    reason: str = Field("", max_length=200, description="状态变更原因（审计）")


class OrganisationRead(Schema):
    code: str
    name: str
    kind: str
    kind_label: str
    parent_code: str | None
    path: str
    depth: int
    status: str
    province: str
    city: str
    county: str
    township: str
    village: str
    address_detail: str
    address: str
    division_code: str
    phone: str
    child_count: int | None = None
    staff_count: int | None = None


class OrganisationNode(Schema):
    code: str
    name: str
    kind: str
    kind_label: str
    status: str
    address: str
    child_count: int
    staff_count: int
    children: list[OrganisationNode] = []


class DepartmentCreate(Schema):
    organisation_code: str = Field(..., max_length=32)
    code: str = Field(..., min_length=2, max_length=32)
    name: str = Field(..., min_length=1, max_length=60)
    kind: str = Field("clinical", max_length=10, description="clinical | medtech | nursing | admin")
    location: str = Field("", max_length=60)


class DepartmentRead(Schema):
    id: int
    organisation_code: str
    code: str
    name: str
    kind: str
    location: str
    is_active: bool
    staff_count: int | None = None


class StaffCreate(Schema):
    username: str = Field(..., min_length=1, max_length=150)
    password: str = Field(..., min_length=1, max_length=128)
    name: str = Field(..., min_length=1, max_length=40)
    organisation_code: str = Field(..., max_length=32)
    department_code: str = Field("", max_length=32)
    title: str = Field("none", max_length=30)
    licence_number: str = Field("", max_length=40)
    practice_start_date: date | None = None


class RoleRead(Schema):
    id: int
    role: str
    role_label: str
    organisation_code: str
    organisation_name: str
    granted_at: datetime


class StaffRead(Schema):
    id: int
    username: str
    name: str
    organisation_code: str
    organisation_name: str
    department_code: str | None
    department_name: str | None
    title: str
    title_label: str
    licence_number: str
    practice_start_date: date | None
    is_active: bool
    roles: list[RoleRead]


class StaffStatus(Schema):
    is_active: bool
    reason: str = Field("", max_length=200, description="停用/启用原因（审计）")


class RoleAssign(Schema):
    role: str = Field(..., max_length=20)
    organisation_code: str = Field(..., max_length=32)
