"""Pinyin initials for search: staff type "zs" to find 张三, the way Chinese clinics search.

pypinyin (a maintained library with the full CC-CEDICT-derived dictionary) does the conversion;
names are short, so a per-character cache makes bulk demo generation cheap.
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin


@lru_cache(maxsize=20000)
def _initial(char: str) -> str:
    if char.isascii():
        return char.lower() if char.isalnum() else ""
    letters = lazy_pinyin(char, style=Style.FIRST_LETTER, errors="ignore")
    return letters[0].lower() if letters and letters[0] else ""


def initials(text: str) -> str:
    """``张三丰`` → ``zsf``. Surnames with special readings (单 shan) follow pypinyin's phrase data."""
    if not text:
        return ""
    # Whole-name conversion first so that heteronyms use phrase context (e.g. 曾 in a surname).
    letters = lazy_pinyin(text, style=Style.FIRST_LETTER, errors=lambda chars: [_initial(c) for c in chars])
    return "".join(x.lower() for x in letters if x).replace(" ", "")[:32]


def looks_like_initials(query: str) -> bool:
    return query.isascii() and query.isalpha() and 1 <= len(query) <= 8
