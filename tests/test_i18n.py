"""English is switchable: the catalogue is complete and well-formed, and pages and API errors follow the language.

zh-Hans is the source language (every msgid is Chinese); ``locale/en/LC_MESSAGES/django.po`` is the English
catalogue. The ``.mo`` is build output (``scripts/compile_messages.py``), so these tests compile it themselves
when it is missing or older than the ``.po``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.test.signals import setting_changed
from django.urls import reverse

from yilian.common.policy import DOCTOR

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "src" / "yilian" / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")

# printf (%(name)s, %s, %d, %%), str.format ({name}) and the HTML tags of blocktranslate must survive translation.
PLACEHOLDER = re.compile(r"%%|%\([A-Za-z_]\w*\)[sdif]|%[sdif]|\{[A-Za-z_]\w*\}|</?[A-Za-z][^>]*>")
CJK = re.compile(r"[\u3400-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")


def _catalog():
    with PO.open("rb") as fh:
        return read_po(fh, locale="en")


def _messages():
    return [m for m in _catalog() if m.id]


def _forms(value) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


@pytest.fixture(scope="module")
def english_compiled():
    """Compile the catalogue if needed, then make Django reload its translations (they are cached per process)."""
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        spec = importlib.util.spec_from_file_location(
            "compile_messages", ROOT / "scripts" / "compile_messages.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.main() == 0
    # The same reset Django's test machinery runs when LOCALE_PATHS changes: drop the cached catalogues.
    setting_changed.send(sender=None, setting="LOCALE_PATHS", value=settings.LOCALE_PATHS, enter=True)
    assert MO.exists()


# --- the catalogue --------------------------------------------------------------------------------


def test_the_english_catalogue_lives_in_locale_paths():
    assert PO.parents[2] in [Path(p) for p in settings.LOCALE_PATHS]
    assert "en" in dict(settings.LANGUAGES)
    catalog = _catalog()
    assert catalog.num_plurals == 2 and "n != 1" in catalog.plural_expr
    assert len(_messages()) > 500


def test_every_entry_is_translated_and_none_is_fuzzy():
    untranslated = [m.id for m in _messages() if not all(_forms(m.string))]
    fuzzy = [m.id for m in _messages() if m.fuzzy]
    assert untranslated == []
    assert fuzzy == []


def test_every_translation_keeps_the_placeholders_of_its_msgid():
    broken = []
    for m in _messages():
        ids = _forms(m.id)
        accepted = {tuple(sorted(PLACEHOLDER.findall(i))) for i in ids}
        for form in _forms(m.string):
            if tuple(sorted(PLACEHOLDER.findall(form))) not in accepted:
                broken.append((ids[0], form))
    assert broken == []


def test_plural_entries_have_a_singular_and_a_plural_form():
    plurals = [m for m in _messages() if m.pluralizable]
    assert plurals, "the catalogue has plural entries (count blocktranslate / ngettext)"
    assert [m.id for m in plurals if len(_forms(m.string)) != 2] == []


def test_no_translation_is_left_in_chinese():
    """Chinese may appear in an English string only when quoted from the msgid (e.g. a name-search example)."""
    left = []
    for m in _messages():
        source = "".join(_forms(m.id))
        for form in _forms(m.string):
            if CJK.search(form) and (not LATIN.search(form) or not set(CJK.findall(form)) <= set(source)):
                left.append((m.id, form))
    assert left == []


# --- pages and API errors follow the language ----------------------------------------------------


def api_login(client, password, **extra):
    return client.post(
        "/api/v1/accounts/login",
        json.dumps({"username": "lidoc", "password": password}),
        content_type="application/json",
        **extra,
    )


def test_staff_sign_in_page_is_chinese_by_default_and_english_on_request(client, db, english_compiled):
    chinese = client.get(reverse("accounts:staff-login")).content.decode()
    english = client.get(reverse("accounts:staff-login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="zh-hans">' in chinese and "工作人员登录" in chinese
    assert '<html lang="en">' in english and "Staff sign-in" in english
    assert "工作人员登录" not in english and "Staff sign-in" not in chinese


def test_patient_sign_in_page_is_chinese_by_default_and_english_on_request(client, db, english_compiled):
    chinese = client.get(reverse("accounts:patient-login")).content.decode()
    english = client.get(reverse("accounts:patient-login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "患者登录" in chinese and "获取验证码" in chinese
    assert "Patient sign-in" in english and "Get code" in english
    assert "患者登录" not in english and "获取验证码" not in english


def test_the_language_switcher_switches_to_english_and_back(client, db, english_compiled):
    page = reverse("accounts:staff-login")
    response = client.post(reverse("set_language"), {"language": "en", "next": page})
    assert response.status_code == 302 and client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Staff sign-in" in client.get(page).content.decode()
    client.post(reverse("set_language"), {"language": "zh-hans", "next": page})
    assert "工作人员登录" in client.get(page).content.decode()


def test_wrong_password_error_follows_the_language(client, staff_of, english_compiled):
    staff_of(DOCTOR, username="lidoc")
    chinese = api_login(client, "wrong-password")
    english = api_login(client, "wrong-password", HTTP_ACCEPT_LANGUAGE="en")
    assert chinese.status_code == english.status_code == 401
    assert chinese.json()["code"] == english.json()["code"] == "INVALID_CREDENTIALS"
    assert chinese.json()["message"] == "用户名或密码不正确。"
    assert english.json()["message"] == "Incorrect username or password."


def test_validation_error_follows_the_language_cookie(client, db, english_compiled):
    too_long = {"username": "a" * 151, "password": "x"}
    chinese = client.post("/api/v1/accounts/login", json.dumps(too_long), content_type="application/json")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.post("/api/v1/accounts/login", json.dumps(too_long), content_type="application/json")
    assert chinese.status_code == english.status_code == 422
    assert chinese.json()["code"] == english.json()["code"] == "VALIDATION_ERROR"
    assert chinese.json()["message"].startswith("字段 username 有误：")
    assert english.json()["message"].startswith("Field username is invalid: ")


def test_a_signed_in_staff_page_is_english_including_the_header(client, staff_of, login, english_compiled):
    doctor = staff_of(DOCTOR, username="lidoc")
    login(doctor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("accounts:password-change")).content.decode()
    assert "Change password" in page and "Sign out" in page
    assert "修改密码" not in page and "退出" not in page
