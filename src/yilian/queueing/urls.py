"""Queueing pages: ``/queueing/`` (desk, doctor screen, display board, patient ticket)."""

from django.urls import path

from yilian.queueing import views

app_name = "queueing"
urlpatterns = [
    path("desk/", views.desk, name="desk"),
    path("desk/sessions/<int:session_id>/open/", views.desk_open, name="desk-open"),
    path("desk/<int:queue_id>/", views.desk_queue, name="desk-queue"),
    path("desk/<int:queue_id>/room/", views.desk_room, name="desk-room"),
    path("desk/<int:queue_id>/settings/", views.desk_settings, name="desk-settings"),
    path("desk/displays/", views.display_create, name="display-create"),
    path("desk/rooms/", views.room_create, name="room-create"),
    path("tickets/<int:entry_id>/<str:action>/", views.ticket_action, name="ticket-action"),
    path("doctor/", views.doctor, name="doctor"),
    path("doctor/<int:queue_id>/", views.doctor_queue, name="doctor-queue"),
    path("doctor/<int:queue_id>/<str:action>/", views.doctor_action, name="doctor-action"),
    path("display/<str:token>/", views.display, name="display"),
    path("display/<str:token>/board.json", views.display_board, name="display-board"),
    path("ticket/", views.my_tickets, name="my-tickets"),
    path("ticket/<int:entry_id>/", views.ticket, name="ticket"),
    path("ticket/sign-in/<int:appointment_id>/", views.phone_sign_in, name="phone-sign-in"),
]
