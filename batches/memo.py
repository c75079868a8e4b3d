"""What the batch's pages compute from every one of its jobs, kept until the batch changes.

The batch page, its live refresh (every 2 s while a batch runs), the job page's
previous and next, the API's job list and the analytics all read every job of
the batch: the review queue (`review_queue.entries_for`) and the analytics'
aggregates. Between two polls usually nothing changed. One aggregate over the
batch's jobs and results, its *state*, says whether anything did: the counts
per status and sums that every write the pages reflect moves (a job added,
claimed, retried, finished, removed or restored; a result written, calibrated,
reviewed or withdrawn), with the batch's status, settings and calibration.
What was computed for the same state is served again, and the state costs one
indexed pass, a fraction of what the queue alone costs, let alone the analytics
(README, "Batch page at size", has the figures).

Never older than its state: the state is read before what is computed from it,
so a value may be newer (a job finished in between) but not older; the next
request then sees another state and computes afresh. A write that moves none
of the sums (a result's criteria edited alone, by hand in the database) shows
with the next change that does.

Kept in the process's memory rather than Django's cache: unpickling a 10,000-job
queue took longer than computing it (README, "Batch page at size"). The values
are shared between requests: callers read them and never change them.
"""

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Count, F, FloatField, Max, Q, Sum
from django.db.models.functions import Cast

from grading.models import GradingJob, JobStatus
from grading.progress import Progress

# Batches whose figures a process keeps; the one used longest ago goes first. A queue's
# memory grows with its jobs, so this bounds what a process keeps for the largest batches
# (README, "Batch page at size", has what a 10,000-job queue holds).
KEPT_BATCHES = 8

T = TypeVar("T")


@dataclass(frozen=True)
class BatchState:
    """A batch as its pages see it: where it is kept, and what it is now."""

    batch: tuple  # the database, the batch's id and creation time: ids are reused in tests
    signature: tuple
    counts: dict[str, int]  # per status and percent done, as GradingJobQuerySet.progress() gives them


def batch_state(batch) -> BatchState:
    """One aggregate over the batch's jobs and results: the counts per status and what moves on each write.

    Sums weighted by the job's id change when a score moves from one job to
    another, which plain sums would not see; the latest review time changes
    when a review is edited to the same total.
    """
    figures = GradingJob.objects.in_batch(batch).aggregate(
        total=Count("id"),
        **{status.value: Count("id", filter=Q(status=status.value)) for status in JobStatus},
        job_ids=Sum("id"),
        # In floating point: a product of two bigint ids could overflow an integer.
        documents=Sum(Cast("document_id", FloatField()) * F("id"), output_field=FloatField()),
        attempts=Sum("attempts"),
        results=Count("result__id"),
        result_ids=Sum("result__id"),
        scores=Sum(F("result__score") * F("id"), output_field=FloatField()),
        reviews=Count("result__reviewed_score"),
        reviewed=Sum(F("result__reviewed_score") * F("id"), output_field=FloatField()),
        last_review=Max("result__reviewed_at"),
        calibrated=Count("result__raw_score"),
    )
    # The batch's own fields that move its jobs without moving the sums: resuming an
    # edited batch gives its queued jobs another model (JobBatch._resnapshot_queued).
    own = json.dumps(
        [batch.status, batch.template_id, batch.settings, batch.calibration], sort_keys=True, default=str
    )
    return BatchState(
        batch=(connection.alias, connection.settings_dict["NAME"], batch.pk, batch.created_at),
        signature=(*sorted(figures.items()), own),
        counts=Progress.from_counts(figures).as_dict(),
    )


_lock = threading.Lock()
# batch -> (its state's signature, {part: value computed in that state})
_kept: OrderedDict[tuple, tuple[tuple, dict[str, Any]]] = OrderedDict()


def remembered(state: BatchState, part: str, compute: Callable[[], T]) -> T:
    """The part computed in this state of the batch, computing it when the batch has changed since."""
    with _lock:
        signature, parts = _kept.get(state.batch, (None, {}))
        if signature == state.signature and part in parts:
            _kept.move_to_end(state.batch)
            return parts[part]
    value = compute()
    with _lock:
        signature, parts = _kept.get(state.batch, (None, {}))
        if signature != state.signature:
            parts = {}
        parts[part] = value
        _kept[state.batch] = (state.signature, parts)
        _kept.move_to_end(state.batch)
        while len(_kept) > KEPT_BATCHES:
            _kept.popitem(last=False)
    return value


def forget_all() -> None:
    """Drop every kept value (for benchmarks that time the first computation)."""
    with _lock:
        _kept.clear()
