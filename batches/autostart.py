"""Processing that starts by itself: a draft whose rules say `auto_start` starts once documents land in it.

An upload into a batch (batches/uploads.py), an inbox upload and an assignment
from the inbox (batches/inbox.py) each call `start_if_auto` after their jobs
are committed. The start is the state machine's own draft -> pending
transition, decided under the batch's row lock: two uploads racing both add
their jobs (adding also takes the lock, so each lands wholly before or after
the start), and exactly one of them starts the batch; the other finds it
pending and leaves it. A draft whose provider cannot work (no key, another
provider's model) stays a draft: its page says what to set.
"""

from django.db import transaction

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob
from grading.schema import SettingsError


def auto_start_wanted(batch: JobBatch) -> bool:
    """Whether the batch's effective settings say auto_start (False when they are invalid)."""
    try:
        return batch.validated_settings().processing.auto_start
    except SettingsError:
        return False


def start_if_auto(batch: JobBatch, wanted: bool | None = None) -> bool:
    """Start the draft if its rules (or `wanted`, when given) say so; True when this call started it.

    False when the batch is no draft any more (another upload started it), has
    no job, its settings are invalid or its provider cannot grade them.
    """
    with transaction.atomic():
        locked = JobBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != BatchStatus.DRAFT:
            return False
        try:
            settings = locked.validated_settings()
        except SettingsError:
            return False
        if not (settings.processing.auto_start if wanted is None else wanted):
            return False
        if settings.problems() or not GradingJob.objects.in_batch(locked).exists():
            return False
        # The same transaction and lock: start_batch re-reads the row it already holds.
        locked.start_batch()
    batch._refresh_from(locked)
    return True
