from django.urls import path

from yilian.community import views

app_name = "community"
urlpatterns = [
    path("", views.org_tree, name="org-tree"),
    path("orgs/<str:code>/", views.org_detail, name="org-detail"),
    path("orgs/<str:code>/children/", views.org_children, name="org-children"),
    path("orgs/<str:code>/edit/", views.org_update, name="org-update"),
    path("orgs/<str:code>/children/new/", views.org_create, name="org-create"),
    path("orgs/<str:code>/departments/new/", views.department_create, name="department-create"),
    path("orgs/<str:code>/staff/new/", views.staff_create, name="staff-create"),
    path("staff/<int:staff_id>/status/", views.staff_status, name="staff-status"),
    path("staff/<int:staff_id>/roles/", views.role_assign, name="role-assign"),
    path("staff/<int:staff_id>/roles/<int:role_id>/revoke/", views.role_revoke, name="role-revoke"),
]
