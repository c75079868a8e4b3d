"""Batch tasks run by django-q2.

django-q2 delivers at least once: a task waiting in a worker's prefetch queue can
run twice, and a task whose worker was killed runs again after Q_RETRY. Every task
here is therefore idempotent. Processing works through claims in the database
(grading/claims.py), so a second process_batch only helps; transitions re-check the
batch's state under a row lock, so a repeated pause or retry is refused, not redone.
"""

import logging

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from batches.dispatch import enqueue_processing
from batches.exceptions import InvalidTransition
from batches.models import JobBatch
from batches.signals import announce, batch_progressed
from grading import economy_engine
from grading.circuits import announce_long_outages
from grading.claims import reap_expired_leases
from grading.models import GradingJob, JobStatus
from grading.runner import Runner, RunReport

logger = logging.getLogger(__name__)

# Set in a cluster's worker process once its standing runner runs (batches/worker.py).
_wake_standing_runner = None


def process_batch(batch_id: int, peers: int = 0) -> dict:
    """Mark the batch processing, then have this worker grade claimable jobs until none is left.

    The runner claims in priority order across all active batches, not only this
    one: the task is a worker's signal to start claiming, not an assignment. In a
    cluster's worker the standing runner (below) does the work: the task wakes it
    and ends. Elsewhere (sync mode, a test) the task runs a runner itself.
    `peers` is how many other runners were sent out with this one
    (enqueue_processing): counted before they are seen live, so that the first
    to arrive takes only its share of each provider's cap.
    """
    batch = JobBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return {"batch": batch_id, "skipped": "the batch no longer exists"}
    batch.mark_processing()
    if _wake_standing_runner is not None:
        _wake_standing_runner(peers)
        return {"batch": batch_id, "woke": "this worker's standing runner"}
    report = run_jobs(peers_expected=peers)
    progress = update_batch_progress(batch_id)
    if report.work_left:
        # The runner stopped for its time budget: a fresh task carries on.
        enqueue_processing(batch_id, carry_on=True)
    return {**progress, "graded": report.completed, "failed": report.failed, "requeued": report.requeued}


# Where a task runs the runner itself (no standing runner in its process), the
# runner hands its worker back about once a minute, carrying on in a fresh task at
# the back of the queue, so that the other tasks (heartbeat, notifications, archival)
# are never starved by a long batch; the drain costs one call's latency a minute.
HANDOFF_S = 60


def run_jobs(**options) -> RunReport:
    """A runner wired to batch finalisation, within the django-q2 task timeout."""
    # Stop claiming early enough that calls in flight finish before the task times out.
    budget_s = min(HANDOFF_S, settings.Q_TIMEOUT - min(300, settings.Q_TIMEOUT / 3))
    options.setdefault("budget_s", budget_s)
    return Runner(on_batch_touched=update_batch_progress, on_progress=announce_progress, **options).run()


def announce_progress(batch_id: int) -> None:
    """Send batch_progressed with fresh counts (notifications watch it for milestones)."""
    batch = JobBatch.objects.filter(pk=batch_id).first()
    if batch is not None:
        announce(batch_progressed, batch, counts=batch.progress())


def update_batch_progress(batch_id: int) -> dict:
    """The batch's progress; sets its final status once its last job has ended (exactly once)."""
    batch = JobBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return {"batch": batch_id, "skipped": "the batch no longer exists"}
    finalized = batch.finalize()
    return {"batch": batch_id, "status": batch.status, "finalized": finalized, **batch.progress()}


def recover_stalled_jobs(after_restart: bool = False) -> dict:
    """The reaper, scheduled every minute and run when a worker starts.

    Re-queues jobs whose worker died (expired lease), finalises batches whose
    last job ended without the batch being finalised (a worker killed in
    between), and re-kicks active batches that have runnable jobs but no live
    worker on them — so nothing depends on django-q2 redelivering a task.

    After a restart, a lease that has not run out yet may belong to a worker
    that no longer exists, so every batch with runnable jobs is kicked.
    """
    reaped = reap_expired_leases()
    announce_long_outages()
    finished = [
        batch_id for batch_id in _ended_active_batches() if JobBatch.objects.get(pk=batch_id).finalize()
    ]
    kicked = _stalled_batches(ignore_leases=after_restart)
    for batch_id in kicked:
        enqueue_processing(batch_id)
    return {"requeued": reaped.requeued, "failed": reaped.failed, "finalized": finished, "kicked": kicked}


def run_economy() -> dict:
    """The economy engine's round (grading.economy_engine.tick), scheduled every minute.

    Finalises the batches whose last job it recorded, announces progress, and wakes the
    runners for batches whose economy jobs became real-time jobs (the deadline drew near).
    """
    report = economy_engine.tick()
    for batch in JobBatch.objects.filter(pk__in=report.submitted_batches):
        batch.mark_processing()
    for batch_id in report.recorded.moved_batches:
        announce_progress(batch_id)
    finished = [
        batch_id
        for batch_id in report.recorded.touched_batches
        if update_batch_progress(batch_id).get("finalized")
    ]
    for batch_id in sorted(report.to_realtime):
        enqueue_processing(batch_id)
    for error in report.errors:
        logger.warning("Economy delivery: %s", error)
    return {
        "reconciled": report.reconciled,
        "submitted": report.submitted,
        "submitted_jobs": report.submitted_jobs,
        "completed": report.recorded.completed,
        "requeued": report.recorded.requeued,
        "failed": report.recorded.failed,
        "cancelled_provider_batches": report.cancelled,
        "finalized": finished,
        "to_realtime": sorted(report.to_realtime),
        "errors": report.errors,
    }


def _ended_active_batches() -> list[int]:
    unfinished = Count("jobs", filter=Q(jobs__status__in=JobStatus.unfinished()))
    return list(
        JobBatch.objects.active()
        .annotate(unfinished=unfinished)
        .filter(unfinished=0)
        .values_list("pk", flat=True)
    )


def _stalled_batches(ignore_leases: bool = False) -> list[int]:
    """Active batches with jobs due now and none being graded under a live lease."""
    due = set(GradingJob.objects.claimable().order_by().values_list("batch_id", flat=True).distinct())
    if not due or ignore_leases:
        return sorted(due)
    attended = set(
        GradingJob.objects.processing()
        .filter(batch_id__in=due, lease_expires_at__gte=timezone.now())
        .order_by()
        .values_list("batch_id", flat=True)
        .distinct()
    )
    return sorted(due - attended)


# --- transitions as tasks -----------------------------------------------------------
#
# The API and pages call the JobBatch methods directly; these wrappers let a
# transition be queued (bulk operations, schedules). Pause, resume and cancel need
# no further work from the engine: they change what claims may take.


def pause_batch_processing(batch_id: int) -> dict:
    return _transition(batch_id, JobBatch.pause_batch)


def resume_batch_processing(batch_id: int) -> dict:
    return _transition(batch_id, JobBatch.resume_batch)


def cancel_batch_processing(batch_id: int) -> dict:
    return _transition(batch_id, JobBatch.cancel_batch)


def retry_batch_failed_jobs(batch_id: int) -> dict:
    return _transition(batch_id, JobBatch.retry_failed_jobs)


def _transition(batch_id: int, method) -> dict:
    batch = JobBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return {"batch": batch_id, "skipped": "the batch no longer exists"}
    try:
        method(batch)
    except InvalidTransition as refused:
        # A repeated delivery finds the work already done; nothing to undo.
        logger.info("Batch %s: %s", batch_id, refused.detail)
        return {"batch": batch_id, "status": refused.status, "refused": refused.detail}
    return {"batch": batch_id, "status": batch.status}


def cleanup_completed_batches(older_than: str | None = None, statuses: str | list[str] | None = None) -> str:
    """The daily archival: finished batches older than ARCHIVE_AFTER (or older_than) are archived."""
    import logging

    from django.conf import settings

    from batches.archival import archive_finished_batches, parse_statuses
    from core.env import parse_duration

    age = parse_duration(older_than) if older_than else settings.ARCHIVE_AFTER
    report = archive_finished_batches(age, parse_statuses(statuses))
    logging.getLogger(__name__).info(report.summary())
    return report.summary()
