"""The OpenAPI document and the interactive docs work offline (hospital intranets have no internet)."""

import re

import pytest


@pytest.mark.django_db
def test_openapi_document_describes_every_app(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for prefix in ("/api/v1/patients/", "/api/v1/community/", "/api/v1/accounts/", "/api/v1/cards/"):
        assert any(p.startswith(prefix) for p in paths), prefix


@pytest.mark.django_db
def test_interactive_docs_load_no_third_party_assets(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == []
    assert "/static/ninja/" in html
