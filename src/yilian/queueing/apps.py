from django.apps import AppConfig


class QueueingConfig(AppConfig):
    name = "yilian.queueing"
    label = "queueing"
    verbose_name = "分诊叫号"
