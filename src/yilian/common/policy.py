"""The one policy module: who may do what, and over which part of the medical community.

Pure (no database): ``Actor`` is built once per request by ``accounts.selectors.actor_for`` and
every view, API endpoint and service asks ``allows`` / ``scope_paths`` here.

* Permissions are granted by role (``ROLE_PERMISSIONS``), never to individuals.
* A role is held *at an organisation*; it reaches that organisation's subtree (``Organisation.path``
  is a materialised path, so a subtree is a prefix). A village doctor sees the village; a township
  doctor the township and its villages; county staff, by role, the whole community.
* Separation of duties (三员分立, MLPS 2.0 / GB/T 22239-2019 §8.1.4.2 practice): the system
  administrator, security administrator and auditor roles are mutually exclusive
  (``EXCLUSIVE_ROLES``), and none of them grants access to clinical data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Roles (角色).
DOCTOR = "doctor"
NURSE = "nurse"
PHARMACIST = "pharmacist"
VILLAGE_DOCTOR = "village_doctor"
SERVICE_OPERATOR = "service_operator"
COORDINATOR = "coordinator"
SYSADMIN = "sysadmin"
SECADMIN = "secadmin"
AUDITOR = "auditor"
INTEGRATION = "integration"  # held by API keys of integrating systems, never by people

ROLE_LABELS = {
    DOCTOR: "医生",
    NURSE: "护士",
    PHARMACIST: "药师",
    VILLAGE_DOCTOR: "乡村医生",
    SERVICE_OPERATOR: "服务中心客服",
    COORDINATOR: "医共体协调员",
    SYSADMIN: "系统管理员",
    SECADMIN: "安全管理员",
    AUDITOR: "安全审计员",
    INTEGRATION: "系统对接",
}
STAFF_ROLES = [r for r in ROLE_LABELS if r != INTEGRATION]
EXCLUSIVE_ROLES = frozenset({SYSADMIN, SECADMIN, AUDITOR})

# Permissions.
PATIENT_SEARCH = "patient.search"
PATIENT_VIEW = "patient.view"
PATIENT_CREATE = "patient.create"
PATIENT_UPDATE = "patient.update"
PATIENT_MERGE = "patient.merge"
CARD_SCAN = "card.scan"
ORG_VIEW = "org.view"
ORG_MANAGE = "org.manage"
STAFF_MANAGE = "staff.manage"
SECURITY_MANAGE = "security.manage"
AUDIT_VIEW = "audit.view"
INBOX = "inbox.read"
SCHEDULE_MANAGE = "schedule.manage"  # create and stop clinic sessions (出诊排班, 停诊)
APPOINTMENT_BOOK = "appointment.book"  # book for a patient at a desk or over the phone
QUEUE_TRIAGE = "queue.triage"  # triage-desk actions: priority, recall, return sign-in (access.md)
QUEUE_CALL = "queue.call"  # call patients into a consulting room (access.md Q-12)
EXAM_ORDER = "exam.order"  # order exams (检查申请, access.md E-1)
EXAM_BOOK = "exam.book"  # book exams for a patient at the exam centre's desk
EXAM_MANAGE = "exam.manage"  # open and manage exam resources' calendars
CHRONIC_MANAGE = "chronic.manage"  # enrol, screen, record follow-ups, work the call list (chronic.md)
CHRONIC_REPORT = "chronic.report"  # see chronic-disease indicators and dashboards (chronic.md §6–§8)
CHRONIC_IMPORT = "chronic.import"  # bulk-import registries and follow-ups from the template

_CLINICAL = {PATIENT_SEARCH, PATIENT_VIEW, PATIENT_CREATE, PATIENT_UPDATE, CARD_SCAN, ORG_VIEW, INBOX}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    DOCTOR: frozenset(
        _CLINICAL | {QUEUE_CALL, EXAM_ORDER, EXAM_BOOK, APPOINTMENT_BOOK, CHRONIC_MANAGE, CHRONIC_REPORT}
    ),
    NURSE: frozenset(_CLINICAL | {QUEUE_TRIAGE, QUEUE_CALL, EXAM_BOOK, APPOINTMENT_BOOK, CHRONIC_MANAGE}),
    VILLAGE_DOCTOR: frozenset(_CLINICAL | {EXAM_ORDER, APPOINTMENT_BOOK, CHRONIC_MANAGE, CHRONIC_REPORT}),
    PHARMACIST: frozenset({PATIENT_SEARCH, PATIENT_VIEW, CARD_SCAN, ORG_VIEW, INBOX}),
    SERVICE_OPERATOR: frozenset(
        {
            PATIENT_SEARCH,
            PATIENT_VIEW,
            PATIENT_CREATE,
            CARD_SCAN,
            ORG_VIEW,
            INBOX,
            APPOINTMENT_BOOK,
            EXAM_BOOK,
        }
    ),
    COORDINATOR: frozenset(
        {
            PATIENT_SEARCH,
            PATIENT_VIEW,
            PATIENT_MERGE,
            ORG_VIEW,
            INBOX,
            SCHEDULE_MANAGE,
            EXAM_MANAGE,
            CHRONIC_REPORT,
            CHRONIC_IMPORT,
        }
    ),
    SYSADMIN: frozenset({ORG_VIEW, ORG_MANAGE, STAFF_MANAGE, INBOX}),
    SECADMIN: frozenset({ORG_VIEW, SECURITY_MANAGE, INBOX}),
    AUDITOR: frozenset({ORG_VIEW, AUDIT_VIEW, INBOX}),
    INTEGRATION: frozenset(
        {
            PATIENT_SEARCH,
            PATIENT_VIEW,
            PATIENT_CREATE,
            PATIENT_UPDATE,
            CARD_SCAN,
            ORG_VIEW,
            EXAM_ORDER,
            EXAM_BOOK,
            APPOINTMENT_BOOK,
            CHRONIC_MANAGE,
            CHRONIC_IMPORT,
        }
    ),
}


@dataclass(frozen=True)
class Assignment:
    role: str
    org_id: int
    org_path: str


@dataclass(frozen=True)
class Actor:
    """Whoever is asking: a staff member, a patient account, an integrating system, or nobody."""

    kind: str  # "staff" | "patient" | "system" | "anonymous"
    user_id: int | None = None
    label: str = ""
    assignments: tuple[Assignment, ...] = ()
    patient_account_id: int | None = None
    managed_patient_ids: frozenset[int] = field(default_factory=frozenset)
    api_key_id: int | None = None
    staff_id: int | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def is_staff_member(self) -> bool:
        return self.kind in {"staff", "system"}

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(a.role for a in self.assignments)

    @property
    def primary_org_id(self) -> int | None:
        return self.assignments[0].org_id if self.assignments else None


ANONYMOUS = Actor(kind="anonymous", label="anonymous")


def allows(actor: Actor, permission: str) -> bool:
    """Whether the actor holds ``permission`` anywhere in the community."""
    return any(permission in ROLE_PERMISSIONS.get(a.role, ()) for a in actor.assignments)


def scope_paths(actor: Actor, permission: str) -> list[str]:
    """Organisation-path prefixes under which the actor holds ``permission`` (minimal set)."""
    paths = sorted({a.org_path for a in actor.assignments if permission in ROLE_PERMISSIONS.get(a.role, ())})
    minimal: list[str] = []
    for path in paths:
        if not any(path.startswith(kept) for kept in minimal):
            minimal.append(path)
    return minimal


def covers(actor: Actor, permission: str, org_path: str) -> bool:
    return any(org_path.startswith(prefix) for prefix in scope_paths(actor, permission))


def exclusive_conflict(existing_roles: Iterable[str], new_role: str) -> str | None:
    """三员分立: the exclusive role already held that forbids ``new_role``, if any."""
    held = set(existing_roles)
    if new_role in EXCLUSIVE_ROLES:
        clash = (held & EXCLUSIVE_ROLES) - {new_role}
        if clash:
            return sorted(clash)[0]
        if held - EXCLUSIVE_ROLES:
            return sorted(held - EXCLUSIVE_ROLES)[0]
    elif held & EXCLUSIVE_ROLES:
        return sorted(held & EXCLUSIVE_ROLES)[0]
    return None
