"""Chronic-disease pages: indicators."""

urlpatterns: list = []
