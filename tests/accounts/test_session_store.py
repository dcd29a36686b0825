"""``accounts.sessions``: the db session engine saving an existing session in one UPDATE."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from yilian.accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_configured_engine_is_the_one_update_store(settings):
    assert settings.SESSION_ENGINE == "yilian.accounts.sessions"


def test_an_existing_session_is_saved_in_one_statement_with_its_data_and_expiry():
    store = SessionStore()
    store["last_seen"] = 1.0
    store.create()
    store = SessionStore(store.session_key)
    store["last_seen"] = 2.0
    with CaptureQueriesContext(connection) as queries:
        store.save()
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    row = Session.objects.get(session_key=store.session_key)
    assert SessionStore().decode(row.session_data)["last_seen"] == 2.0
    assert abs((row.expire_date - store.get_expiry_date()).total_seconds()) < 5


def test_saving_a_session_deleted_elsewhere_is_an_update_error_not_a_resurrection():
    store = SessionStore()
    store["k"] = "v"
    store.create()
    Session.objects.filter(session_key=store.session_key).delete()  # signed out on another device
    store["k"] = "w"
    with pytest.raises(UpdateError):
        store.save()
    assert not Session.objects.filter(session_key=store.session_key).exists()


def test_a_new_session_is_still_created_with_a_fresh_key():
    store = SessionStore()
    store["k"] = "v"
    store.save()
    assert store.session_key and SessionStore(store.session_key)["k"] == "v"
