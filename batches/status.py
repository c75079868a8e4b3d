"""A batch's status: the vocabulary of its state machine.

Apart from the model so that the table of batch actions (batches/actions.py),
which says from which of these states each action may start, can name them
while the model reads that table: models -> actions -> status, no circle.
`batches.models.BatchStatus` is this same class.
"""

from django.db import models


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    ARCHIVED = "archived", "Archived"

    @classmethod
    def active(cls) -> list[str]:
        """States in which workers claim the batch's jobs."""
        return [cls.PENDING, cls.PROCESSING]

    @classmethod
    def finished(cls) -> list[str]:
        return [cls.COMPLETED, cls.COMPLETED_WITH_ERRORS, cls.FAILED, cls.CANCELLED]

    @property
    def settings_editable(self) -> bool:
        return self in (BatchStatus.DRAFT, BatchStatus.PAUSED)
