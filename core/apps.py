from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared kit at the bottom of the layers: it imports no app of the project."""

    name = "core"
    verbose_name = "Core"
