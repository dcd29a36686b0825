app_name = "queueing"
urlpatterns: list = []
