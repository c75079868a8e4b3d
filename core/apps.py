from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared kit at the bottom of the layers: it imports no app of the project."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import api_schema  # noqa: F401  (defining its extensions registers them)
