"""Typed readers for settings that come from the environment (ARCHITECTURE.md: settings from env only).

Each helper refuses a bad value with a message that names the variable, so a misconfigured
hospital server fails at start-up rather than at the first patient.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


class SettingError(RuntimeError):
    """An environment variable holds a value the product cannot use."""


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise SettingError(f"{name} must be a whole number, not {value!r}") from exc
    if minimum is not None and number < minimum:
        raise SettingError(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def local_secrets(var_dir: Path) -> dict[str, str]:
    """Secrets for a first run: generated once under ``var/`` and reused, never committed.

    Production sets ``SECRET_KEY``, ``YILIAN_FIELD_KEYS`` and ``YILIAN_INDEX_KEY`` instead.
    """
    path = var_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    var_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "YILIAN_FIELD_KEYS": Fernet.generate_key().decode(),
        "YILIAN_INDEX_KEY": secrets.token_urlsafe(32),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.chmod(0o600)
    tmp.replace(path)
    return data
