"""Fast inserts for the demo's 100,000-row tables, storing exactly what the ORM would store.

``bulk_create`` spends most of its time building model instances and preparing each value
through its field. The demo knows its values, so it writes rows directly: ``executemany`` on
SQLite, ``COPY`` on PostgreSQL. What keeps the rows identical in shape to the ORM's:

* the column list comes from the model (``_meta.concrete_fields``), so a field added later gets
  what the ORM would store for it when unset (its default, ``""`` or NULL; a required column
  without one fails loudly in the database);
* defaults, ``auto_now``/``auto_now_add`` and dates go through the field and the database
  backend's own adapters (``get_db_prep_save``, ``adapt_datefield_value``), once per table;
* encrypted columns are encrypted with ``common.crypto.encrypt``, exactly as
  ``EncryptedTextField.get_prep_value`` does (empty stays empty).

Primary keys the demo needs (to link rows) are taken from the table's own sequence.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import connection, models

from yilian.common import crypto
from yilian.common.crypto import EncryptedTextField


class RawTable:
    """Rows of one model as dicts ``{attname: python value}``, inserted in one statement."""

    def __init__(self, model: type[models.Model], *, now: datetime, with_pk: bool) -> None:
        self.model = model
        self.table = model._meta.db_table
        self.pk = model._meta.pk
        self.fields = [f for f in model._meta.concrete_fields if with_pk or f is not self.pk]
        self.encrypted = {f.attname for f in self.fields if isinstance(f, EncryptedTextField)}
        self.dates = {
            f.attname
            for f in self.fields
            if isinstance(f, models.DateField) and not isinstance(f, models.DateTimeField)
        }
        self.datetimes = {f.attname for f in self.fields if isinstance(f, models.DateTimeField)}
        self.defaults: dict[str, Any] = {}
        for f in self.fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                self.defaults[f.attname] = connection.ops.adapt_datetimefield_value(now)
            else:  # what the ORM stores for a field left unset: its default, "" or NULL
                self.defaults[f.attname] = f.get_db_prep_save(f.get_default(), connection)
        self.attnames = [f.attname for f in self.fields]
        quote = connection.ops.quote_name
        self.quoted_table = quote(self.table)
        self.columns = ", ".join(quote(f.column) for f in self.fields)

    def new_ids(self, count: int) -> list[int]:
        """``count`` primary keys from the table's own sequence (nobody else writes meanwhile)."""
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [self.table, self.pk.column, count],
                )
                return [row[0] for row in cursor.fetchall()]
            # SQLite: the transaction holds the write lock, so MAX(id) cannot move under us.
            cursor.execute(f"SELECT COALESCE(MAX({self.pk.column}), 0) FROM {self.table}")  # noqa: S608
            start = cursor.fetchone()[0] + 1
            return list(range(start, start + count))

    def _value(self, name: str, row: dict[str, Any]) -> Any:
        if name not in row:
            return self.defaults[name]
        value = row[name]
        if name in self.encrypted:
            return crypto.encrypt(value) if value else value
        if name in self.dates and isinstance(value, date):
            return connection.ops.adapt_datefield_value(value)
        if name in self.datetimes and isinstance(value, datetime):
            return connection.ops.adapt_datetimefield_value(value)
        return value

    def insert(self, rows: list[dict[str, Any]]) -> None:
        values = [tuple(self._value(name, row) for name in self.attnames) for row in rows]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {self.quoted_table} ({self.columns}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join(["%s"] * len(self.attnames))
                cursor.executemany(
                    f"INSERT INTO {self.quoted_table} ({self.columns}) VALUES ({marks})",  # noqa: S608
                    values,
                )
