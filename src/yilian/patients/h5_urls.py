"""Patient H5 pages (phone width), under /h5/."""

from django.urls import path

app_name = "h5"
urlpatterns: list = []
