"""The role × endpoint permission matrix (access.md: every endpoint declares its permission).

Endpoints are discovered, not listed: every page in ``yilian.urls`` (except Django's admin, i18n
and static files) and every operation of ``yilian.api.api``. So an endpoint added tomorrow is
covered tomorrow, and one added without ``@requires`` fails ``test_endpoint_declares_a_permission``.

For each persona — a staff member holding each role of ``policy.STAFF_ROLES`` at the county
hospital, a patient account, and an anonymous visitor — every endpoint is called (GET for GET
operations and pages, the operation's own method with an empty JSON body otherwise; path
parameters filled with ids and codes of fixture objects) and the outcome must match
``common.access.check``: allowed → neither 401/403 nor a redirect to a sign-in page; denied →
401/403 (API) or 403 / a redirect to a sign-in page (pages).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import date

import pytest
from django.conf import settings
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver

from tests import factories as f
from yilian.accounts.models import User
from yilian.accounts.selectors import actor_for_user
from yilian.api import api
from yilian.common import access, policy
from yilian.common.errors import DomainError
from yilian.community.models import Department, RoleAssignment, Staff

SKIPPED_PREFIXES = ("admin/", "i18n/", "static", "api/v1/")  # api/v1/: enumerated through ninja below
API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "page" | "api"
    method: str  # for pages: "GET" (POST is tried when the page answers 405)
    route: str  # with placeholders, e.g. "/community/orgs/<str:code>/" or "/api/v1/x/{int:id}"
    view: object

    @property
    def permission(self) -> str | None:
        return getattr(self.view, "yilian_permission", None)

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


def _is_framework_view(callback) -> bool:
    """Views that serve no data of ours: redirects, and ninja's own schema/docs pages."""
    from django.views.generic import RedirectView

    view_class = getattr(callback, "view_class", None)
    if view_class is not None and issubclass(view_class, RedirectView):
        return True
    func = getattr(callback, "func", None)  # functools.partial(openapi_view, api=...)
    return func is not None and getattr(func, "__module__", "").startswith("ninja.")


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def page_endpoints() -> list[Endpoint]:
    found = []
    for route, callback in _walk(get_resolver("yilian.urls").url_patterns):
        if route.startswith(SKIPPED_PREFIXES) or _is_framework_view(callback):
            continue
        found.append(Endpoint("page", "GET", "/" + route.lstrip("^").rstrip("$"), callback))
    return found


def api_endpoints() -> list[Endpoint]:
    api.urls  # noqa: B018 - binds the routers (ninja builds its operation list lazily)
    found = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    # Nested routers come back as ("chronic/", "/registries"): join as ninja does.
                    route = API_PREFIX + "/" + re.sub("/+", "/", (prefix + path).lstrip("/"))
                    found.append(Endpoint("api", method.upper(), route, operation.view_func))
    return found


ENDPOINTS = page_endpoints() + api_endpoints()
PERSONAS = [*policy.STAFF_ROLES, "patient", "anonymous"]


def test_endpoints_are_discovered():
    routes = {e.route for e in ENDPOINTS}
    assert "/community/" in routes
    assert "/api/v1/community/organisations" in routes
    assert not any(r.startswith(("/admin/", "/i18n/")) for r in routes)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_endpoint_declares_a_permission(endpoint):
    """Every page and API operation is wrapped in ``common.access.requires`` (or an equivalent
    guard that sets ``yilian_permission``)."""
    assert endpoint.permission is not None, f"{endpoint} has no @requires(...)"
    known = {access.PUBLIC, access.PATIENT, access.STAFF, access.AUTHENTICATED} | {
        p for perms in policy.ROLE_PERMISSIONS.values() for p in perms
    }
    assert endpoint.permission in known, f"{endpoint} declares unknown permission {endpoint.permission!r}"


# --- the world every persona acts in -------------------------------------------------------------


@dataclass
class World:
    county: object
    township: object
    village: object
    department: object
    staff: object
    assignment: object
    patient: object
    account: object
    users: dict
    sessions: dict


def _cheap_user(username: str, kind: str = User.Kind.STAFF) -> User:
    """A user without a password hash (Argon2 is deliberately slow; sessions come from force_login)."""
    user = User(username=username, kind=kind)
    user.set_unusable_password()
    user.save()
    return user


def _cheap_staff(username: str, role: str, org, name: str = "张医生") -> Staff:
    staff = Staff.objects.create(
        user=_cheap_user(username), name=name, organisation=org, practice_start_date=date(2012, 7, 1)
    )
    RoleAssignment.objects.create(staff=staff, role=role, organisation=org)
    return staff


def _build_world() -> World:
    county = f.make_org("矩阵县人民医院", "county_hospital", code="MX-COUNTY")
    township = f.make_org("矩阵镇卫生院", "township_centre", county, code="MX-TS")
    village = f.make_org("矩阵村卫生室", "village_clinic", township, code="MX-VC")
    department = Department.objects.create(organisation=county, code="MX-CARD", name="心血管内科")
    staff = _cheap_staff("mx-target", policy.DOCTOR, township, name="李医生")
    patient = f.make_patient(county, name="赵六")
    account = f.make_patient_account("13900139000")
    f.link(account, patient)
    users = {role: _cheap_staff(f"mx-{role}", role, county).user for role in policy.STAFF_ROLES}
    users["patient"] = account.user
    users["anonymous"] = None
    sessions = {}
    for persona, user in users.items():
        if user is not None:  # one session per persona, reused by every test (rolled back each time)
            signed_in = Client()
            signed_in.force_login(user)
            sessions[persona] = signed_in.cookies[settings.SESSION_COOKIE_NAME].value
    return World(
        county, township, village, department, staff, staff.roles.get(), patient, account, users, sessions
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One world for the whole module, inside a transaction rolled back at the module's end; each
    test runs in a savepoint within it (pytest-django's ``db``), so tests cannot see each other."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield _build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared_client():
    """One test client for the module: building a client's handler loads every middleware
    (WhiteNoise scans the static files), which would otherwise dominate the run time."""
    return Client()


# --- filling path parameters -----------------------------------------------------------------------

_DJANGO_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
_NINJA_PARAM = re.compile(r"\{(?:(?P<conv>\w+):)?(?P<name>\w+)\}")
_REGEX_PARAM = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


def _value(name: str, conv: str | None, world: World) -> str:
    n = name.lower()
    if conv == "uuid" or "uuid" in n:
        return str(uuid.UUID(int=1))
    if "code" in n:
        return world.department.code if ("dep" in n or "dept" in n) else world.county.code
    if conv == "int" or n in ("pk", "id") or n.endswith(("_id", "_pk")):
        for hint, value in (
            ("role", world.assignment.pk),
            ("assignment", world.assignment.pk),
            ("staff", world.staff.pk),
            ("user", world.staff.user_id),
            ("patient", world.patient.pk),
            ("member", world.patient.pk),
            ("org", world.county.pk),
            ("dep", world.department.pk),
            ("account", world.account.pk),
        ):
            if hint in n:
                return str(value)
        return str(world.patient.pk)
    return "MX-DUMMY"


def concrete_url(endpoint: Endpoint, world: World) -> str:
    def fill(match: re.Match) -> str:
        return _value(match["name"], match.groupdict().get("conv"), world)

    url = _NINJA_PARAM.sub(fill, endpoint.route) if endpoint.kind == "api" else endpoint.route
    url = _DJANGO_PARAM.sub(fill, url)
    return _REGEX_PARAM.sub(fill, url)


# --- outcomes ----------------------------------------------------------------------------------------


def expected_allowed(actor, permission: str) -> bool:
    """What ``common.access.check`` says."""
    try:
        access.check(actor, permission)
    except DomainError:
        return False
    return True


def _login_urls() -> tuple[str, ...]:
    urls = [resolve_url(settings.LOGIN_URL)]
    with contextlib.suppress(NoReverseMatch):  # the patient sign-in page may be renamed
        urls.append(resolve_url("accounts:patient-login"))
    return tuple(urls)


def _is_sign_in_redirect(response) -> bool:
    return response.status_code in (301, 302, 303, 307, 308) and response["Location"].split("?")[
        0
    ].startswith(_login_urls())


def _call(client, endpoint: Endpoint, url: str):
    if endpoint.kind == "page":
        response = client.get(url)
        if response.status_code == 405:
            response = client.post(url, {})
        return response
    if endpoint.method == "GET":
        return client.get(url)
    return client.generic(endpoint.method, url, b"{}", content_type="application/json")


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_role_endpoint_matrix(world, db, shared_client, persona, endpoint):
    if endpoint.permission is None:
        pytest.skip("undeclared: reported by test_endpoint_declares_a_permission")
    user = world.users[persona]
    client = shared_client
    client.cookies.clear()
    if user is not None:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[persona]
    actor = actor_for_user(user) if user is not None else policy.ANONYMOUS
    allowed = expected_allowed(actor, endpoint.permission)
    url = concrete_url(endpoint, world)

    response = _call(client, endpoint, url)
    status = response.status_code
    where = f"{persona} → {endpoint} ({url}) declared {endpoint.permission!r}"
    if allowed:
        assert status not in (401, 403), f"{where}: allowed, but refused with {status}"
        if endpoint.permission != access.PUBLIC:  # signing out, say, rightly ends on the sign-in page
            assert not _is_sign_in_redirect(response), f"{where}: allowed, but sent to sign in"
        return
    if endpoint.kind == "api":
        assert status in (401, 403), f"{where}: denied, but answered {status}"
    else:
        assert status in (401, 403) or _is_sign_in_redirect(response), (
            f"{where}: denied, but answered {status}"
        )
