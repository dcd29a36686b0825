"""Request and response shapes of the accounts API (string lengths bounded on every input)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refusing it here keeps it a 422, not a 500."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class StaffLogin(Schema):
    username: Text = Field(..., min_length=1, max_length=150)
    password: Text = Field(..., min_length=1, max_length=128)


class CodeRequest(Schema):
    phone: Text = Field(..., min_length=1, max_length=20, description="中国大陆手机号，11 位")


class CodeSent(Schema):
    phone_masked: str
    expires_in: int = Field(..., description="验证码有效秒数")
    resend_after: int = Field(..., description="再次获取前需等待的秒数")


class CodeVerify(Schema):
    phone: Text = Field(..., min_length=1, max_length=20)
    code: Text = Field(..., min_length=1, max_length=10)


class RoleRead(Schema):
    role: str
    role_label: str
    organisation_code: str
    organisation_name: str


class MeRead(Schema):
    kind: str = Field(..., description="staff | patient | system")
    name: str
    username: str
    roles: list[RoleRead]
    patient_account_id: int | None = None
    managed_patient_ids: list[int] = []


class ApiKeyCreate(Schema):
    organisation_code: Text = Field(..., min_length=1, max_length=32)
    name: Text = Field(..., min_length=1, max_length=80)


class ApiKeyRead(Schema):
    id: int
    name: str
    prefix: str
    organisation_code: str
    organisation_name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(..., description="完整密钥，仅此一次返回，请立即妥善保存")


class LockedUserRead(Schema):
    id: int
    username: str
    name: str
    organisation_code: str
    locked_until: datetime
