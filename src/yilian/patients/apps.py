from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "yilian.patients"
    label = "patients"
    verbose_name = "患者"
