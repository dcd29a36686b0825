"""Patient H5 pages (phone width), under /h5/."""

app_name = "h5"
urlpatterns: list = []
