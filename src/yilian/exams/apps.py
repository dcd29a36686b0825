from django.apps import AppConfig


class ExamsConfig(AppConfig):
    name = "yilian.exams"
    label = "exams"
    verbose_name = "检查集中预约"
