"""Patient H5 pages (phone width), under /h5/."""

from django.urls import path

from yilian.patients import h5_views

app_name = "h5"
urlpatterns = [
    path("", h5_views.home, name="home"),
    path("family/", h5_views.family_page, name="family"),
    path("family/<int:patient_id>/remove/", h5_views.family_remove, name="family-remove"),
    path("card/", h5_views.card_page, name="card"),
    path("card/<int:patient_id>/", h5_views.card_page, name="card"),
    path("card/<int:patient_id>/qr/", h5_views.card_qr, name="card-qr"),
]
