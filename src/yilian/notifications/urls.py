from django.urls import path

from yilian.notifications import views

app_name = "notifications"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:message_id>/read/", views.mark_read, name="mark-read"),
    path("read-all/", views.mark_all_read, name="mark-all-read"),
    path("unread/", views.unread_badge, name="unread-badge"),
    path("mine/", views.patient_inbox, name="patient-inbox"),
    path("mine/<int:message_id>/read/", views.patient_mark_read, name="patient-mark-read"),
    path("mine/read-all/", views.patient_mark_all_read, name="patient-mark-all-read"),
]
