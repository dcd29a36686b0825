"""Chronic-disease pages: imports."""

urlpatterns: list = []
