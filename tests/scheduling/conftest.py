import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Staff personas are created in bulk here; Argon2 would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
