from django.urls import path

app_name = "scheduling"
urlpatterns: list = []
