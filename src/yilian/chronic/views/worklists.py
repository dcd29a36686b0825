"""Chronic-disease pages: worklists."""

urlpatterns: list = []
