"""HTMX helpers for pages that render either a whole page or a fragment (ARCHITECTURE.md: one view)."""

from __future__ import annotations


def is_htmx(request) -> bool:
    """Whether the request came from HTMX (``HX-Request: true``), i.e. wants a fragment."""
    return request.headers.get("HX-Request") == "true"
