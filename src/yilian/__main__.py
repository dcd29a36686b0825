"""The ``yilian`` command: Django's management commands plus ``yilian up`` and ``yilian demo``."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yilian.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["yilian", *sys.argv[1:]])


if __name__ == "__main__":
    main()
