"""API schemas for patients, by direction. Every input string has a length limit; unknown keys are refused."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

IdType = Literal[
    "resident_id", "passport", "hk_macao_permit", "taiwan_permit", "foreign_permanent", "birth_cert", "other"
]
Sex = Literal["M", "F", "U"]


class _In(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientCreate(_In):
    name: str = Field(min_length=1, max_length=50, description="姓名")
    id_type: IdType = Field("resident_id", description="证件类型")
    id_number: str = Field(min_length=1, max_length=30, description="证件号码")
    sex: Sex | None = Field(None, description="性别；居民身份证可省略（由号码推出）")
    birth_date: date | None = Field(None, description="出生日期；居民身份证可省略（由号码推出）")
    phone: str = Field("", max_length=20, description="手机号")
    home_org_code: str | None = Field(
        None, min_length=1, max_length=32, description="管理机构编码；默认为本人所在机构"
    )
    nationality: str = Field("CHN", min_length=3, max_length=3)
    ethnicity: str = Field("", max_length=20)
    province: str = Field("", max_length=30)
    city: str = Field("", max_length=30)
    county: str = Field("", max_length=30)
    township: str = Field("", max_length=30)
    village: str = Field("", max_length=30)
    address_detail: str = Field("", max_length=120)
    realname_verified: bool = False


class PatientUpdate(_In):
    """Only the keys sent are changed."""

    name: str | None = Field(None, min_length=1, max_length=50)
    id_type: IdType | None = None
    id_number: str | None = Field(None, min_length=1, max_length=30)
    sex: Sex | None = None
    birth_date: date | None = None
    phone: str | None = Field(None, max_length=20)
    home_org_code: str | None = Field(None, min_length=1, max_length=32)
    nationality: str | None = Field(None, min_length=3, max_length=3)
    ethnicity: str | None = Field(None, max_length=20)
    province: str | None = Field(None, max_length=30)
    city: str | None = Field(None, max_length=30)
    county: str | None = Field(None, max_length=30)
    township: str | None = Field(None, max_length=30)
    village: str | None = Field(None, max_length=30)
    address_detail: str | None = Field(None, max_length=120)
    realname_verified: bool | None = None


class ContactCreate(_In):
    name: str = Field(min_length=1, max_length=50)
    relationship: str = Field(min_length=1, max_length=20, description="关系，如 配偶、子女")
    phone: str = Field(min_length=1, max_length=20)


class ContactRead(Schema):
    id: int
    name: str
    relationship: str
    phone: str


class MergeRequest(_In):
    survivor_id: int = Field(gt=0, description="保留的档案")
    duplicate_id: int = Field(gt=0, description="被合并（注销）的重复档案")
    reason: str = Field(min_length=1, max_length=500)


class OrgBrief(Schema):
    code: str
    name: str


class CardBrief(Schema):
    card_no: str
    status: str
    issued_at: datetime


class PatientListItem(Schema):
    """A list row: identifiers masked, nothing decrypted."""

    id: int
    name: str
    sex: str
    birth_date: date
    age: int
    id_type: str
    id_masked: str
    phone_masked: str
    home_org_name: str
    realname_verified: bool


class PatientSearchResult(Schema):
    kind: str = Field(description="mobile / id / initials / name / empty / unsupported")
    count: int
    items: list[PatientListItem]


class PatientRead(Schema):
    """The full record (decrypted identifiers); reading it is audited."""

    id: int
    name: str
    sex: str
    birth_date: date
    id_type: str
    id_number: str
    phone: str
    nationality: str
    ethnicity: str
    province: str
    city: str
    county: str
    township: str
    village: str
    address_detail: str
    home_org: OrgBrief
    realname_verified: bool
    status: str
    merged_into_id: int | None
    card: CardBrief | None
    contacts: list[ContactRead]
    created_at: datetime
    updated_at: datetime


class MergeResult(Schema):
    survivor_id: int
    duplicate_id: int
    moved: dict[str, int]
