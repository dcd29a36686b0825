"""The audit log is append-only: the model, the admin and the database triggers all refuse edits.

The triggers come from migration common/0002 (SQLite and PostgreSQL); this file runs on SQLite in
the normal run and on PostgreSQL in CI (``yilian.ops.pgtmp``).
"""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from yilian.common.models import AuditEvent


@pytest.fixture
def entry(db) -> AuditEvent:
    return AuditEvent.objects.create(at=timezone.now(), actor_label="system", action="patient.view")


def refused_by_database(statement) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        statement()


def test_orm_update_is_refused_by_the_database(entry):
    refused_by_database(lambda: AuditEvent.objects.filter(pk=entry.pk).update(action="patient.nothing"))
    entry.refresh_from_db()
    assert entry.action == "patient.view"


def test_orm_delete_is_refused_by_the_database(entry):
    refused_by_database(lambda: AuditEvent.objects.filter(pk=entry.pk).delete())
    assert AuditEvent.objects.filter(pk=entry.pk).exists()


def test_raw_sql_update_is_refused(entry):
    def update():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE common_auditevent SET action = %s WHERE id = %s", ["x", entry.pk])

    refused_by_database(update)
    entry.refresh_from_db()
    assert entry.action == "patient.view"


def test_raw_sql_delete_is_refused(entry):
    def delete():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM common_auditevent")

    refused_by_database(delete)
    assert AuditEvent.objects.filter(pk=entry.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE exists on PostgreSQL only")
def test_truncate_is_refused_on_postgresql(entry):
    def truncate():
        with connection.cursor() as cursor:
            # Fire the deferred foreign-key checks of the insert first, or PostgreSQL refuses the
            # TRUNCATE for that reason instead of reaching the trigger.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE common_auditevent")

    refused_by_database(truncate)
    assert AuditEvent.objects.filter(pk=entry.pk).exists()


def test_model_save_and_delete_of_an_existing_row_are_refused(entry):
    entry.action = "patient.nothing"
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()


def test_admin_is_read_only_even_for_a_superuser(db, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password="Yilian-test-2026")
    request = RequestFactory().get("/admin/common/auditevent/")
    request.user = superuser
    model_admin = site._registry[AuditEvent]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)


def test_admin_change_page_cannot_save(client, entry, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password="Yilian-test-2026")
    client.force_login(superuser)
    url = f"/admin/common/auditevent/{entry.pk}/change/"
    assert client.get(url).status_code == 200  # viewable
    client.post(url, {"action": "patient.nothing"})
    entry.refresh_from_db()
    assert entry.action == "patient.view"
    assert client.post(f"/admin/common/auditevent/{entry.pk}/delete/").status_code == 403
