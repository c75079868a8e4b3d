from django.apps import AppConfig
from django.core import checks


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self) -> None:
        from batches import signals, worker  # noqa: F401

        checks.register(check_batch_actions)


def check_batch_actions(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Each batch action of batches/actions.py names a JobBatch method that exists (batches.E001)."""
    from batches.actions import ACTIONS
    from batches.models import JobBatch

    return [
        checks.Error(
            f"The batch action “{action.name}” calls JobBatch.{action.method}, which does not exist.",
            hint="Add the method to JobBatch, or correct the action's entry in batches/actions.py.",
            obj=action.name,
            id="batches.E001",
        )
        for action in ACTIONS
        if not callable(getattr(JobBatch, action.method, None))
    ]
