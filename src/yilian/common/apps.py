from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "yilian.common"
    label = "common"
    verbose_name = "共享内核"
