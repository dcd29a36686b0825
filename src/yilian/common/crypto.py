"""Identifiers at rest: encrypted columns and keyed-hash look-ups (PIPL; MLPS 2.0 level 3 practice).

* ``EncryptedTextField`` stores Fernet tokens (AES-128-CBC + HMAC-SHA256, from ``cryptography``,
  a well-kept library: no home-made crypto). ``MultiFernet`` lets keys rotate: the first key in
  ``FIELD_ENCRYPTION_KEYS`` encrypts, all of them decrypt.
* ``blind_index`` is HMAC-SHA256 under a separate key over a normalised value, so an exact
  look-up by ID number or phone never needs the plaintext in the database.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt(value: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken as exc:  # a wrong key is an operations error, never silent
        raise ValueError("encrypted column cannot be decrypted with the configured keys") from exc


def blind_index(kind: str, value: str) -> str:
    """Keyed hash of a normalised identifier; ``kind`` separates ID numbers from phones."""
    normalised = value.strip().replace(" ", "").upper()
    mac = hmac.new(settings.BLIND_INDEX_KEY.encode(), f"{kind}:{normalised}".encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


class EncryptedTextField(models.TextField):
    """A text column whose database value is always ciphertext."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        # An empty value is stored as "" (nothing to protect); everything else is ciphertext.
        return value if value in (None, "") else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
