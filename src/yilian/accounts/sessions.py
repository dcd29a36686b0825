"""The database session engine (``SESSION_ENGINE``), with a cheaper save of an existing session.

Django's ``db`` engine saves an existing session as ``BEGIN; UPDATE …; COMMIT`` through a model
instance. Most saves here are the idle-timeout stamp (``accounts.middleware``, at most every
``LAST_SEEN_RESOLUTION`` seconds per session), so this engine writes them as one ``UPDATE`` by
key: the same row, the same encoding and expiry, the same ``UpdateError`` when the session has gone
(signed out elsewhere), but one statement (and round trip) instead of three and no model
instance. Creating a session (sign-in, key rotation) is Django's own code, unchanged.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.db import DatabaseError, router


class SessionStore(DbSessionStore):
    def save(self, must_create: bool = False) -> None:
        if must_create or self.session_key is None:
            return super().save(must_create=must_create)
        data = self._get_session()
        model = self.model
        using = router.db_for_write(model)
        try:
            updated = (
                model._default_manager.using(using)
                .filter(session_key=self.session_key)
                .update(session_data=self.encode(data), expire_date=self.get_expiry_date())
            )
        except DatabaseError as exc:
            raise UpdateError from exc
        if not updated:
            raise UpdateError
