from django.urls import path

from yilian.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.staff_login, name="staff-login"),
    path("logout/", views.sign_out, name="logout"),
    path("password/", views.password_change, name="password-change"),
    path("patient/login/", views.patient_login, name="patient-login"),
    path("patient/login/code/", views.patient_send_code, name="patient-send-code"),
    path("patient/login/verify/", views.patient_verify, name="patient-verify"),
    path("security/", views.security, name="security"),
    path("security/keys/", views.security_key_create, name="security-key-create"),
    path("security/keys/<int:key_id>/revoke/", views.security_key_revoke, name="security-key-revoke"),
    path("security/users/<int:user_id>/unlock/", views.security_unlock, name="security-unlock"),
]
