"""Chronic-disease pages under ``/chronic/``: each area's view module lists its own paths."""

from yilian.chronic.views import imports, indicators, registries, screening, worklists

app_name = "chronic"
urlpatterns = [
    *registries.urlpatterns,
    *screening.urlpatterns,
    *worklists.urlpatterns,
    *indicators.urlpatterns,
    *imports.urlpatterns,
]
