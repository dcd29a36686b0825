from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "yilian.scheduling"
    label = "scheduling"
    verbose_name = "排班与预约"
