"""Exam centre pages: ``/exams/`` (the centre's calendar) and ``/exams/my/`` (the patient's phone)."""

from django.urls import path

from yilian.exams import views

app_name = "exams"
urlpatterns = [
    path("", views.centre, name="centre"),
    path("patients/<int:patient_id>/plan/", views.plan, name="plan"),
    path("my/", views.my_exams, name="my"),
    path("my/<int:patient_id>/book/", views.my_book, name="my-book"),
    path("my/appointments/<int:appointment_id>/cancel/", views.my_cancel, name="my-cancel"),
    path("my/packages/<int:package_id>/order/", views.my_package, name="my-package"),
    path("my/package-orders/<int:order_id>/cancel/", views.my_package_cancel, name="my-package-cancel"),
]
