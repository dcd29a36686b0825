from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from yilian.api import api

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="patients:staff-home", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/", include("yilian.accounts.urls")),
    path("community/", include("yilian.community.urls")),
    path("patients/", include("yilian.patients.urls")),
    path("h5/", include("yilian.patients.h5_urls")),
    path("notifications/", include("yilian.notifications.urls")),
    path("audit/", include("yilian.common.urls")),
    path("scheduling/", include("yilian.scheduling.urls")),
    path("exams/", include("yilian.exams.urls")),
    path("chronic/", include("yilian.chronic.urls")),
    path("queueing/", include("yilian.queueing.urls")),
]
