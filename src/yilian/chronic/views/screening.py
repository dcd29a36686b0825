"""Chronic-disease pages: screening."""

urlpatterns: list = []
