"""Booking pages: the patient's phone (``/scheduling/h5/``) and schedule management (``/scheduling/sessions/``)."""

from django.urls import path

from yilian.scheduling import views

app_name = "scheduling"
urlpatterns = [
    path("h5/", views.h5_home, name="h5-home"),
    path("h5/departments/<int:department_id>/", views.h5_department, name="h5-department"),
    path("h5/sessions/<int:session_id>/", views.h5_session, name="h5-session"),
    path("h5/sessions/<int:session_id>/book/", views.h5_book, name="h5-book"),
    path("h5/sessions/<int:session_id>/waitlist/", views.h5_waitlist_join, name="h5-waitlist-join"),
    path("h5/appointments/", views.h5_appointments, name="h5-appointments"),
    path("h5/appointments/<int:appointment_id>/cancel/", views.h5_cancel, name="h5-cancel"),
    path("h5/waitlist/<int:entry_id>/leave/", views.h5_waitlist_leave, name="h5-waitlist-leave"),
    path("sessions/", views.sessions_week, name="sessions"),
    path("sessions/new/", views.session_new, name="session-new"),
    path("sessions/<int:session_id>/", views.session_detail, name="session"),
    path("sessions/<int:session_id>/stop/", views.session_stop, name="session-stop"),
]
