"""Identifiers at rest: ciphertext in the column, keyed-hash look-up, key rotation."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from yilian.common import crypto
from yilian.notifications.models import SmsMessage


@pytest.mark.django_db
def test_encrypted_column_holds_no_plaintext_and_reads_back():
    from django.utils import timezone

    msg = SmsMessage.objects.create(phone="13912345678", body="x", created_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM notifications_smsmessage WHERE id = %s", [msg.pk])
        raw = cursor.fetchone()[0]
    assert "13912345678" not in raw and "5678" not in raw
    assert SmsMessage.objects.get(pk=msg.pk).phone == "13912345678"


def test_encryption_is_randomised_but_blind_index_is_stable():
    assert crypto.encrypt("370687198005170011") != crypto.encrypt("370687198005170011")
    assert crypto.blind_index("id", "370687198005170011") == crypto.blind_index("id", " 370687198005170011 ")
    assert crypto.blind_index("id", "13800138000") != crypto.blind_index("phone", "13800138000")


def test_old_keys_still_decrypt_after_rotation(settings):
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    token = crypto.encrypt("secret")
    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode(), old]):
        assert crypto.decrypt(token) == "secret"
    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]), pytest.raises(ValueError):
        crypto.decrypt(token)


@pytest.mark.django_db
def test_an_empty_encrypted_column_reads_back_empty():
    from django.utils import timezone

    msg = SmsMessage.objects.create(phone="", body="x", created_at=timezone.now())
    assert SmsMessage.objects.get(pk=msg.pk).phone == ""
