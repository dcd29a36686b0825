from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "yilian.community"
    label = "community"
    verbose_name = "医共体"
