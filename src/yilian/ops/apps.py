from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations commands: ``yilian up`` (first run) and ``yilian demo`` (a demo county)."""

    name = "yilian.ops"
    label = "ops"
    verbose_name = "运维"
