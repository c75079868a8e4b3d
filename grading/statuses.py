"""The status vocabulary of jobs and batches, defined once.

Job statuses are grading's own. Batch statuses belong to the batch lifecycle,
which `batches` runs (JobBatch's transitions, under row locks), but grading needs
one of their sets: a batch's jobs are claimed only while the batch is active.
Since grading may not import batches, the whole vocabulary lives here, below
both: the states, their labels and their groupings. batches.models re-exports
BatchStatus; which action may start from which state is the table of batch
actions' (batches/actions.py), and the state machine that acts on them is
JobBatch's.

The values and labels are part of the migrations' state (the fields' choices
and the status check constraints): changing one needs a migration.
"""

from django.db import models


class Delivery(models.TextChoices):
    """How a job reaches its provider: one call at a time, or in a provider batch at half price.

    A batch's processing rule `delivery` may also say "auto" (grading.economy.decide); a
    job carries what was decided for it when its batch started.
    """

    REALTIME = "realtime", "Real-time"
    ECONOMY = "economy", "Economy (provider batch, half price)"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def unfinished(cls) -> list[str]:
        return [cls.PENDING, cls.QUEUED, cls.PROCESSING]

    @classmethod
    def in_flight(cls) -> list[str]:
        """Work a worker holds or is about to take: a batch with any cannot be deleted."""
        return [cls.QUEUED, cls.PROCESSING]

    @classmethod
    def finished(cls) -> list[str]:
        return [cls.COMPLETED, cls.FAILED, cls.CANCELLED]

    @property
    def is_finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


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

    @property
    def calibration_waits(self) -> bool:
        """Jobs are (or, paused, will be) graded: their results would arrive on the provider's scale."""
        return self in (BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.PAUSED)


# The batch states in which workers claim a batch's jobs, as plain strings for
# the claim's SQL parameters: BatchStatus.active(), by construction.
CLAIMING_BATCH_STATES: tuple[str, ...] = tuple(status.value for status in BatchStatus.active())
