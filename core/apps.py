from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared kit at the bottom of the layers: it imports no app of the project."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from core import api_schema  # noqa: F401  (defining its extensions registers them)
        from core.sign_in_limit import count_failed_sign_in

        user_login_failed.connect(count_failed_sign_in, dispatch_uid="core.sign_in_limit")
