"""Staff pages for patients, under /patients/. The card-scan page belongs to ``patients.card_views``."""

from django.urls import path

from yilian.patients import card_views, views

app_name = "patients"
urlpatterns = [
    path("", views.staff_home, name="staff-home"),
    path("new/", views.register, name="register"),
    path("new/check/", views.register_check, name="register-check"),
    path("merge/", views.merge, name="merge"),
    path("merge/preview/", views.merge_preview, name="merge-preview"),
    path("scan/", card_views.scan_page, name="scan"),
    path("<int:patient_id>/", views.detail, name="detail"),
    path("<int:patient_id>/edit/", views.edit, name="edit"),
    path("<int:patient_id>/reveal-id/", views.reveal_id, name="reveal-id"),
    path("<int:patient_id>/reveal-phone/", views.reveal_phone, name="reveal-phone"),
    path("<int:patient_id>/contacts/", views.contact_add, name="contact-add"),
]
