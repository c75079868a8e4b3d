"""The economy engine: economy jobs submitted in provider batches, their results recorded as they end.

One scheduled task (batches.tasks.run_economy, every minute through ensure_schedules)
runs `tick`, which does four things in order, each safe to run twice or side by side:

1. reconcile: a submission recorded but never confirmed (its submitter died between the
   upload and the create, say) is looked up at the provider by its marker, or created from
   the file it uploaded, or sent again when nothing reached the provider;
2. poll: each open provider batch is asked how far it got; once it has ended its results
   are downloaded and recorded through claims.record_outcomes, fenced by the submission's
   claim token and each job's attempt, so a result is recorded once however often it is
   downloaded; a request that failed uses up an attempt under the normal retry rules, one
   that expired or was cancelled goes back to the queue without using one;
3. fall back: a batch whose deadline is near (economy.MARGIN) stops waiting: its open
   provider batches are cancelled (what finished is kept when they end) and its queued
   economy jobs become real-time jobs, which the runners claim; a cancelled batch's provider
   batches still open (their cancel never reached the provider) are cancelled again;
4. submit: queued economy jobs of active batches are claimed under a new submission's
   token and recorded (ProviderBatch) before anything is sent, split by the provider's
   limits on requests and bytes, then uploaded and created.

Pause needs nothing here: a paused batch's queued jobs are not submitted, and what was
submitted finishes like calls in flight. Cancel cancels the batch's open provider
batches (cancel_open); their finished results are kept.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from grading import economy
from grading.claims import Blame, Outcome, Recorded, Work, record_outcomes
from grading.exemplars import batch_exemplars
from grading.models import GradingJob, ProviderBatch
from grading.providers import Provider, ProviderError, RemoteBatch, UnknownProvider, get_provider
from grading.providers.base import BatchItem
from grading.providers.prompting import ReplyMismatch
from grading.runner import PermanentFailure, grade_request
from grading.statuses import CLAIMING_BATCH_STATES, BatchStatus, Delivery, JobStatus

logger = logging.getLogger(__name__)

# A submitter holds its submission this long to upload and create it; after that a
# reconcile takes it for abandoned (its process died) and finishes it.
PREPARE_LEASE = timedelta(minutes=10)
# Jobs held by a provider batch keep a lease well past its window, so that only a poller
# gone for good leaves them to the reaper.
HOLD_BEYOND_WINDOW = timedelta(hours=12)
TOKEN_PREFIX = "economy"
# Outcomes recorded per transaction: a provider batch may hold 50,000 results.
RECORD_CHUNK = 500


@dataclass
class TickReport:
    reconciled: int = 0
    submitted: int = 0
    submitted_jobs: int = 0
    # Batches that had jobs submitted in this round: they are being graded now.
    submitted_batches: set[int] = field(default_factory=set)
    polled: int = 0
    cancelled: int = 0
    recorded: Recorded = field(default_factory=Recorded)
    # Batches whose economy jobs became real-time jobs: the runners are to be woken for them.
    to_realtime: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def tick(now: datetime | None = None) -> TickReport:
    report = TickReport()
    reconcile(report, now)
    poll(report, now)
    fall_back(report, now)
    submit_due(report, now)
    return report


# --- submitting -------------------------------------------------------------------------


def submit_due(report: TickReport, now: datetime | None = None) -> None:
    """Submit the queued economy jobs of active batches, one provider batch per batch and model at a time."""
    now = now or timezone.now()
    groups = (
        _due(GradingJob.objects.filter(status=JobStatus.QUEUED, delivery=Delivery.ECONOMY), now)
        .filter(batch__status__in=CLAIMING_BATCH_STATES)
        .values_list("batch_id", "provider", "model")
        .order_by()
        .distinct()
    )
    # Connections whose submission failed in this round: their other jobs wait for the next one.
    # Per connection, so that one provider that cannot be reached (or an earlier step's error,
    # such as a failed poll) holds up no other connection's submissions.
    failing: set[str] = set()
    for batch_id, provider_name, model in list(groups):
        if provider_name in failing:
            continue
        provider = _known(provider_name, report)
        if provider is None:
            failing.add(provider_name)
            continue
        while (submission := _claim(batch_id, provider, model, now)) is not None:
            errors = len(report.errors)
            _send(submission, provider, report)
            if len(report.errors) > errors:
                failing.add(provider_name)
                break


def _known(name: str, report: TickReport) -> Provider | None:
    """The provider of this name; None, with the reason in the report, when the connection is no
    longer configured (renamed or removed from PROVIDERS while its jobs wait): its work waits for it
    to come back, and the round goes on with the other connections."""
    try:
        return get_provider(name)
    except UnknownProvider as error:
        report.errors.append(str(error))
        return None


def _active(batch_id: int) -> bool:
    batches = GradingJob._meta.get_field("batch").related_model.objects
    return batches.filter(pk=batch_id, status__in=CLAIMING_BATCH_STATES).exists()


def _cancelled(batch_id: int) -> bool:
    batches = GradingJob._meta.get_field("batch").related_model.objects
    return batches.filter(pk=batch_id, status=BatchStatus.CANCELLED).exists()


def _due(jobs, now: datetime):
    return jobs.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def _claim(batch_id: int, provider: Provider, model: str, now: datetime) -> ProviderBatch | None:
    """Take queued economy jobs under a new submission's token and record the submission, in one transaction.

    Nothing is sent yet: the row exists before the upload, so whatever happens to this
    process afterwards, a reconcile knows what was meant to be sent and under which marker.
    """
    marker = secrets.token_hex(16)
    token = f"{TOKEN_PREFIX}:{marker}/1"
    with transaction.atomic():
        if not _active(batch_id):
            return None  # paused or cancelled meanwhile: its jobs wait, or were cancelled
        # Job columns only (no join), so that FOR UPDATE locks the job rows alone: SKIP LOCKED
        # passes over those a cancel or another submitter is changing right now.
        candidates = _due(
            GradingJob.objects.filter(
                batch_id=batch_id,
                provider=provider.name,
                model=model,
                status=JobStatus.QUEUED,
                delivery=Delivery.ECONOMY,
            ),
            now,
        ).order_by("created_at", "id")
        ids = list(
            candidates.select_for_update(skip_locked=True).values_list("id", flat=True)[
                : provider.batch_max_requests
            ]
        )
        if not ids:
            return None
        # Conditional on still being queued: a job a cancel or another submitter took is left out.
        GradingJob.objects.filter(pk__in=ids, status=JobStatus.QUEUED).update(
            status=JobStatus.PROCESSING,
            attempts=F("attempts") + 1,
            claimed_by=token,
            lease_expires_at=now + provider.batch_window + HOLD_BEYOND_WINDOW,
            started_at=now,
            next_attempt_at=None,
        )
        held = list(GradingJob.objects.filter(pk__in=ids, claimed_by=token).values_list("id", "attempts"))
        if not held:
            return None
        return ProviderBatch.objects.create(
            batch_id=batch_id,
            provider=provider.name,
            model=model,
            marker=marker,
            token=token,
            jobs=[list(pair) for pair in held],
            preparing_until=now + PREPARE_LEASE,
        )


def _send(submission: ProviderBatch, provider: Provider, report: TickReport) -> None:
    """Build the requests, keep within the provider's bytes, upload and create; record each step."""
    works = works_of(submission, held_only=True)
    if submission.batch_id is not None and not _active(submission.batch_id):
        # Paused or cancelled since the claim: nothing is sent, the jobs go back (or end cancelled).
        given_back = [
            Outcome(work, error="Its batch stopped before it was sent.", blame=Blame.RUNNER) for work in works
        ]
        report.recorded.add(record_outcomes(given_back))
        ProviderBatch.objects.filter(pk=submission.pk).update(
            status=ProviderBatch.Status.ENDED, ended_at=timezone.now(), preparing_until=None
        )
        return
    requests, refused = [], []
    size = 0
    for work in works:
        try:
            line = provider.batch_request(custom_id(work), grade_request(work))
        except (PermanentFailure, ProviderError) as error:
            refused.append(Outcome(work, error=str(error)))
            continue
        length = len(json.dumps(line)) + 1
        if requests and size + length > provider.batch_max_bytes:
            refused.append(Outcome(work, error="Left for the next provider batch.", blame=Blame.RUNNER))
            continue
        size += length
        requests.append(line)
    if refused:
        report.recorded.add(record_outcomes(refused))
        kept = {int(line_id(line)) for line in requests}
        submission.jobs = [pair for pair in submission.jobs if pair[0] in kept]
        submission.save(update_fields=["jobs"])
    if not requests:
        ProviderBatch.objects.filter(pk=submission.pk).update(
            status=ProviderBatch.Status.ENDED, ended_at=timezone.now()
        )
        return
    try:
        remote = provider.submit_batch(
            requests, submission.marker, lambda file_id: _uploaded(submission, file_id)
        )
    except ProviderError as error:
        report.errors.append(f"Submitting {submission} failed: {error}")
        if error.transient:
            # Left preparing: the reconcile finds out what reached the provider, after the lease.
            ProviderBatch.objects.filter(pk=submission.pk).update(last_error=str(error))
        else:
            _refused(submission, works, error, report)
        return
    _submitted(submission, remote, provider)
    report.submitted += 1
    report.submitted_jobs += len(requests)
    if submission.batch_id is not None:
        report.submitted_batches.add(submission.batch_id)


def _refused(submission: ProviderBatch, works: list[Work], error: ProviderError, report: TickReport) -> None:
    """The provider refused the submission (a bad key, a request it will never take): its jobs
    fail as a refused call's would, and the submission ends failed."""
    report.recorded.add(record_outcomes([Outcome(work, error=str(error), answered=True) for work in works]))
    ProviderBatch.objects.filter(pk=submission.pk).update(
        status=ProviderBatch.Status.FAILED,
        last_error=str(error),
        ended_at=timezone.now(),
        preparing_until=None,
    )


def _uploaded(submission: ProviderBatch, file_id: str) -> None:
    ProviderBatch.objects.filter(pk=submission.pk).update(input_file_id=file_id)
    submission.input_file_id = file_id


def _submitted(submission: ProviderBatch, remote: RemoteBatch, provider: Provider) -> None:
    now = timezone.now()
    ProviderBatch.objects.filter(pk=submission.pk, status=ProviderBatch.Status.PREPARING).update(
        status=ProviderBatch.Status.SUBMITTED,
        external_id=remote.id,
        input_file_id=remote.input_file_id or submission.input_file_id,
        submitted_at=now,
        expected_by=now + provider.batch_window,
        preparing_until=None,
        remote_status=remote.status,
        last_error="",
    )
    # A cancel that committed while the provider batch was being created found it preparing and
    # left it alone (cancel_open takes submitted ones only): cancel it now, or the provider grades
    # and bills the whole of a cancelled batch. Read after the update above has committed, so a
    # cancel committing later finds the provider batch submitted and cancels it itself.
    if submission.batch_id is not None and _cancelled(submission.batch_id):
        submission.external_id = remote.id
        _cancel(submission, TickReport())


def custom_id(work: Work) -> str:
    return f"job-{work.job_id}-{work.attempt}"


def line_id(line: dict) -> str:
    return str(line["custom_id"]).split("-")[1]


# --- reconciling ------------------------------------------------------------------------


def reconcile(report: TickReport, now: datetime | None = None) -> None:
    """Finish submissions whose submitter stopped before it recorded the provider batch."""
    now = now or timezone.now()
    abandoned = ProviderBatch.objects.filter(status=ProviderBatch.Status.PREPARING, preparing_until__lt=now)
    for submission in list(abandoned):
        if take_abandoned(submission, now):
            _reconcile_one(submission, report)


def take_abandoned(submission: ProviderBatch, now: datetime) -> bool:
    """Whether this reconciler takes the submission: one only, by moving its lease on from what it read."""
    return bool(
        ProviderBatch.objects.filter(
            pk=submission.pk,
            status=ProviderBatch.Status.PREPARING,
            preparing_until=submission.preparing_until,
        ).update(preparing_until=now + PREPARE_LEASE)
    )


def _reconcile_one(submission: ProviderBatch, report: TickReport) -> None:
    provider = _known(submission.provider, report)
    if provider is None:
        return
    known = set(ProviderBatch.objects.exclude(external_id="").values_list("external_id", flat=True))
    try:
        found = provider.find_batch(
            submission.marker,
            input_file_id=submission.input_file_id,
            since=submission.created_at - timedelta(minutes=1),
            size=len(submission.jobs),
            known=known,
        )
        # Created from its uploaded file only while its batch still wants it: a batch paused or
        # cancelled meanwhile has its jobs given back by _send below, as if never sent.
        wanted = submission.batch_id is None or _active(submission.batch_id)
        if found is None and submission.input_file_id and wanted:
            found = provider.create_batch_from_file(submission.input_file_id, submission.marker)
    except ProviderError as error:
        report.errors.append(f"Reconciling {submission} failed: {error}")
        return
    report.reconciled += 1
    if found is not None:
        _submitted(submission, found, provider)
        return
    # Nothing reached the provider: send it now, under the same marker and token.
    _send(submission, provider, report)


# --- polling and recording ----------------------------------------------------------------


def poll(report: TickReport, now: datetime | None = None) -> None:
    open_batches = ProviderBatch.objects.filter(
        status__in=[ProviderBatch.Status.SUBMITTED, ProviderBatch.Status.CANCELLING]
    )
    for submission in list(open_batches):
        provider = _known(submission.provider, report)
        if provider is None:
            continue
        try:
            remote = provider.poll_batch(submission.external_id)
            report.polled += 1
            ProviderBatch.objects.filter(pk=submission.pk).update(
                remote_status=remote.status, finished=remote.finished
            )
            if remote.ended:
                report.recorded.add(record_results(submission, provider))
        except ProviderError as error:
            report.errors.append(f"Polling {submission} failed: {error}")


def record_results(submission: ProviderBatch, provider: Provider) -> Recorded:
    """Record every outcome of an ended provider batch, then close it. Safe to run twice.

    Each outcome goes through claims.record_outcomes, fenced by the submission's token and
    the job's attempt: a job already recorded (by an earlier run) is no longer processing
    under this token, so its outcome is discarded. A job with no outcome in the results
    goes back to the queue without using an attempt (counted as the provider's failure).
    """
    works = {custom_id(work): work for work in works_of(submission, held_only=True)}
    requests = {key: grade_request(work) for key, work in works.items() if not work.unreadable}
    # One outcome per job: a result given twice (a custom_id repeated in the file) is recorded
    # once, its grade if either has one; a result for no job of ours is left aside.
    chosen: dict[str, BatchItem] = {}
    for item in provider.batch_results(submission.external_id, requests):
        if item.custom_id not in works:
            logger.warning("%s returned a result for no job of it: %r", submission, item.custom_id[:100])
            continue
        if item.custom_id not in chosen or (chosen[item.custom_id].grade is None and item.grade is not None):
            chosen[item.custom_id] = item
    outcomes = [_outcome(works[key], item) for key, item in chosen.items()]
    for key, work in works.items():
        if key not in chosen:
            # The provider's failure (its results file lost the line): no attempt used, but
            # counted against the document like a provider's error, so it cannot go round for ever.
            outcomes.append(
                Outcome(
                    work,
                    error="The provider batch ended without a result for it.",
                    transient=True,
                    answered=True,
                    blame=Blame.PROVIDER,
                )
            )
    recorded = Recorded()
    for start in range(0, len(outcomes), RECORD_CHUNK):
        recorded.add(record_outcomes(outcomes[start : start + RECORD_CHUNK]))
    ProviderBatch.objects.filter(pk=submission.pk, status__in=ProviderBatch.Status.open()).update(
        status=ProviderBatch.Status.ENDED,
        ended_at=timezone.now(),
        recorded=F("recorded") + recorded.completed,
    )
    return recorded


def _outcome(work: Work, item) -> Outcome:
    if item.grade is not None:
        return Outcome.graded(work, item.grade, latency_ms=0)
    if item.expired or item.cancelled:
        why = (
            "expired before the provider ran it"
            if item.expired
            else "was cancelled before the provider ran it"
        )
        return Outcome(work, error=f"The provider batch request {why}.", transient=True, blame=Blame.RUNNER)
    error = item.error
    if isinstance(error, ReplyMismatch):
        # The model's reply does not fit, and a provider batch cannot repair it: the job is
        # tried again under the retry rules, the attempt used.
        return Outcome(
            work,
            error=f"{error} (no repair inside a provider batch)",
            transient=True,
            answered=True,
            billed=error.billed,
        )
    if error is not None and error.transient:
        # The provider's failure (a 5xx or overloaded entry, an HTML page or an unreadable line
        # for a result): no attempt used. It answered the batch, so its circuit stays closed.
        return Outcome(
            work,
            error=str(error),
            transient=True,
            answered=True,
            retry_after=error.retry_after,
            blame=Blame.PROVIDER,
        )
    # The provider refused this request (a 4xx) or the model declined it: the job fails.
    return Outcome(
        work,
        error=str(error or "The provider batch gave no result for it."),
        answered=True,
        billed=error.billed if error is not None else None,
    )


def works_of(submission: ProviderBatch, held_only: bool = False) -> list[Work]:
    """The submission's jobs as claimed work (the same Work a runner's claim makes), with the batch's exemplars."""
    attempts = dict(submission.jobs)
    jobs = GradingJob.objects.filter(pk__in=list(attempts)).select_related("document")
    if held_only:
        jobs = jobs.filter(status=JobStatus.PROCESSING, claimed_by=submission.token)
    exemplars = batch_exemplars(submission.batch_id) if submission.batch_id else ()
    now = timezone.now()
    return [
        Work(
            job_id=job.pk,
            batch_id=job.batch_id,
            token=submission.token,
            attempt=attempts[job.pk],
            max_attempts=job.max_attempts,
            provider=job.provider,
            model=job.model,
            settings=job.settings,
            settings_key="",
            text=job.document.text,
            document_name=job.document.original_name,
            unreadable=job.document.extraction_error,
            claimed_at=job.started_at or now,
            start_at=job.started_at or now,
            document_id=job.document_id,
            exemplars=exemplars,
            provider_retries=job.provider_retries,
        )
        for job in jobs.order_by("id")
    ]


# --- the deadline and cancel -------------------------------------------------------------


def fall_back(report: TickReport, now: datetime | None = None) -> None:
    """Batches whose deadline is near stop waiting for provider batches: the rest is graded in real time."""
    now = now or timezone.now()
    near = Q(batch__deadline__isnull=False, batch__deadline__lte=now + economy.MARGIN)
    # A cancelled batch's provider batch still open is one whose cancel did not reach the
    # provider (it could not be reached as the cancel committed): it is sent again each round.
    waiting = ProviderBatch.objects.filter(
        near | Q(batch__status=BatchStatus.CANCELLED),
        status=ProviderBatch.Status.SUBMITTED,
        cancel_requested=False,
    )
    for submission in list(waiting):
        if _cancel(submission, report):
            report.cancelled += 1
    queued = GradingJob.objects.filter(near, status=JobStatus.QUEUED, delivery=Delivery.ECONOMY)
    batch_ids = set(queued.values_list("batch_id", flat=True).distinct())
    if batch_ids:
        queued.update(delivery=Delivery.REALTIME)
        report.to_realtime |= batch_ids


def cancel_open(batch_id: int) -> TickReport:
    """Cancel the batch's open provider batches (its cancel): what finished is recorded when they end."""
    report = TickReport()
    for submission in list(
        ProviderBatch.objects.of_batch(batch_id).filter(status=ProviderBatch.Status.SUBMITTED)
    ):
        _cancel(submission, report)
    return report


def _cancel(submission: ProviderBatch, report: TickReport) -> bool:
    provider = _known(submission.provider, report)
    if provider is None:
        return False
    try:
        remote = provider.cancel_batch(submission.external_id)
    except ProviderError as error:
        report.errors.append(f"Cancelling {submission} failed: {error}")
        return False
    ProviderBatch.objects.filter(pk=submission.pk, status=ProviderBatch.Status.SUBMITTED).update(
        status=ProviderBatch.Status.CANCELLING, cancel_requested=True, remote_status=remote.status
    )
    return True


# --- progress ------------------------------------------------------------------------------


def progress(batch_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Per batch, its provider batches: submitted and finished requests, status and expected completion."""
    rows: dict[int, list[dict]] = {}
    for submission in ProviderBatch.objects.filter(batch_id__in=list(batch_ids)).order_by("created_at", "id"):
        rows.setdefault(submission.batch_id, []).append(
            {
                "id": submission.pk,
                "provider": submission.provider,
                "model": submission.model,
                "external_id": submission.external_id,
                "status": submission.status,
                "provider_status": submission.remote_status,
                "submitted": submission.submitted,
                "finished": submission.submitted if submission.status == "ended" else submission.finished,
                "submitted_at": submission.submitted_at,
                "expected_by": submission.expected_by,
            }
        )
    return rows
