"""Every message template a module sends is shipped by a migration (no silent generic fallback)."""

import re
from pathlib import Path

import pytest

from yilian.notifications.models import MessageTemplate

SRC = Path(__file__).resolve().parents[2] / "src" / "yilian"
USED = re.compile(r"""template_code\s*=\s*["']([a-z0-9_]+)["']""")


@pytest.mark.django_db
def test_every_template_code_in_the_code_is_shipped():
    used = {code for path in SRC.rglob("*.py") for code in USED.findall(path.read_text(encoding="utf-8"))}
    assert used, "the scan found no template codes"
    shipped = set(MessageTemplate.objects.values_list("code", flat=True))
    assert used - shipped == set()
