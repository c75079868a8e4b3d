from django.apps import AppConfig


class TemplatesAppConfig(AppConfig):
    name = "templates_app"
    verbose_name = "Batch templates"

    def ready(self) -> None:
        from templates_app import signals  # noqa: F401
