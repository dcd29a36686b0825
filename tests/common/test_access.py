"""``@requires`` declares and enforces, and keeps ninja able to read postponed annotations."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from ninja import Query, Router, Schema
from ninja.testing import TestClient

from yilian.common import access, policy
from yilian.common.errors import NotAuthenticated, PermissionDenied
from yilian.common.policy import Actor, Assignment


class Filters(Schema):
    q: str = ""


router = Router()


@router.get("/things")
@access.requires(access.PUBLIC)
def list_things(request, filters: Query[Filters]):
    return {"q": filters.q}


def test_postponed_annotations_survive_the_guard():
    response = TestClient(router).get("/things?q=abc")
    assert response.status_code == 200
    assert response.json() == {"q": "abc"}


def _request(actor):
    request = RequestFactory().get("/")
    request.actor = actor
    return request


def test_guard_refuses_anonymous_and_the_wrong_role():
    @access.requires(policy.AUDIT_VIEW)
    def view(request):
        return "ok"

    assert view.yilian_permission == policy.AUDIT_VIEW
    with pytest.raises(NotAuthenticated):
        view(_request(policy.ANONYMOUS))
    doctor = Actor(kind="staff", user_id=1, assignments=(Assignment(policy.DOCTOR, 1, "0001."),))
    with pytest.raises(PermissionDenied):
        view(_request(doctor))
    auditor = Actor(kind="staff", user_id=2, assignments=(Assignment(policy.AUDITOR, 1, "0001."),))
    assert view(_request(auditor)) == "ok"


def test_patient_only_views_refuse_staff():
    @access.requires(access.PATIENT)
    def view(request):
        return "ok"

    doctor = Actor(kind="staff", user_id=1, assignments=(Assignment(policy.DOCTOR, 1, "0001."),))
    with pytest.raises(PermissionDenied):
        view(_request(doctor))
    assert view(_request(Actor(kind="patient", user_id=3, patient_account_id=1))) == "ok"
