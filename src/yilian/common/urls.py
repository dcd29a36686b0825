from django.urls import path

from yilian.common import views

app_name = "common"
urlpatterns = [
    path("", views.audit_log, name="audit-log"),
    path("export.csv", views.audit_export, name="audit-export"),
]
