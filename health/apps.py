from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Health"

    def ready(self) -> None:
        from core.cluster import register_heartbeat_source
        from health.checks import latest_heartbeat

        register_heartbeat_source(latest_heartbeat)
