from django.apps import AppConfig


class ChronicConfig(AppConfig):
    name = "yilian.chronic"
    label = "chronic"
    verbose_name = "慢病管理"
