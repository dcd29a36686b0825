"""Chronic-disease pages: registries."""

urlpatterns: list = []
