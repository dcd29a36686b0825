"""PostgreSQL only: prefix search on names and initials (``LIKE '张%'``) needs pattern-ops indexes
under a non-C collation. SQLite uses the ordinary indexes."""

from django.db import migrations

CREATE = [
    "CREATE INDEX IF NOT EXISTS patient_name_pattern_idx ON patients_patient (name varchar_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS patient_initials_pattern_idx ON patients_patient (name_initials varchar_pattern_ops)",
]
DROP = ["DROP INDEX IF EXISTS patient_name_pattern_idx", "DROP INDEX IF EXISTS patient_initials_pattern_idx"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in CREATE:
            schema_editor.execute(sql)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
