"""A batch's estimated finish and its deadline standing, worked out in one place.

Every page, the API, analytics, the queue and the deadline warnings ask `estimate_finish()`,
so they agree on when a batch should be done and whether that beats its deadline.

Real-time work finishes at the rate its jobs have ended so far
(`JobBatch.projected_completion`). Economy work (grading/economy.py) makes no calls
at a rate: it waits on provider batches that may take the provider's whole window
(24 h), so its finish is their expected completion, and for jobs not submitted yet,
now plus the provider's window (they go out at the engine's next round). A batch
with both kinds finishes at the later of the two.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from grading import economy
from grading.models import GradingJob, JobStatus, ProviderBatch
from grading.progress import Progress
from grading.schema import SettingsError
from grading.statuses import Delivery

RATE = "rate"
PROVIDER_BATCH = "provider_batch"


@dataclass(frozen=True)
class EconomyWork:
    """A batch's economy jobs: queued for the next submission, and held by open provider batches."""

    provider: str = ""
    to_submit: int = 0
    at_provider: int = 0
    # The latest expected completion among the batch's open provider batches.
    expected_by: datetime | None = None

    @property
    def pending(self) -> bool:
        return bool(self.to_submit or self.at_provider)


NO_ECONOMY = EconomyWork()


@dataclass(frozen=True)
class Estimate:
    """When a batch should finish, what that is worked out from, and how it stands against its deadline."""

    at: datetime | None
    source: str
    standing: str | None

    @property
    def by_provider_batch(self) -> bool:
        return self.source == PROVIDER_BATCH


def economy_work(batch: JobBatch) -> EconomyWork:
    """The batch's unfinished economy jobs, in two queries."""
    economy_jobs = GradingJob.objects.filter(batch=batch, delivery=Delivery.ECONOMY)
    counts = economy_jobs.aggregate(
        to_submit=Count("id", filter=Q(status=JobStatus.QUEUED)),
        at_provider=Count("id", filter=Q(status=JobStatus.PROCESSING)),
    )
    if not (counts["to_submit"] or counts["at_provider"]):
        return NO_ECONOMY
    expected_by = (
        ProviderBatch.objects.open()
        .filter(batch=batch, expected_by__isnull=False)
        .order_by("-expected_by")
        .values_list("expected_by", flat=True)
        .first()
    )
    provider = economy_jobs.exclude(provider="").values_list("provider", flat=True).first()
    return EconomyWork(
        provider or provider_of(batch), counts["to_submit"], counts["at_provider"], expected_by
    )


def provider_of(batch: JobBatch) -> str:
    """The provider the batch's settings name; empty when they do not validate."""
    try:
        return batch.validated_settings().provider
    except SettingsError:
        return ""


def _may_wait_on_a_provider(batch: JobBatch, counts: dict[str, int]) -> bool:
    """Whether the batch may have economy jobs unfinished: looked up only then, to spare a list its queries."""
    if batch.completed_at is not None or batch.started_at is None:
        return False
    # Pausing stops new submissions; jobs already at the provider still finish.
    running = batch.status in BatchStatus.active() or (
        batch.status == BatchStatus.PAUSED and counts[JobStatus.PROCESSING] > 0
    )
    return running and _may_deliver_economy(batch)


def _may_deliver_economy(batch: JobBatch) -> bool:
    """Whether its settings let any of its jobs go in a provider batch (no query: the settings alone)."""
    try:
        settings = batch.validated_settings()
    except SettingsError:
        return True  # settings no longer valid say nothing of the jobs they once made: look
    if settings.processing.delivery == Delivery.REALTIME:
        return False
    return any(economy.has_batch_api(provider) for provider, _ in settings.grading_targets())


def finish(
    batch: JobBatch, counts: dict[str, int], now: datetime, work: EconomyWork
) -> tuple[datetime | None, str]:
    """The estimated finish and its source: the rate of calls, or the provider batches for economy work."""
    if not work.pending:
        return batch.projected_completion(counts, now), RATE
    finishes = [work.expected_by] if work.expected_by else []
    if work.to_submit:
        # Submitted at the engine's next round, then given the provider's whole window.
        finishes.append(now + economy.window(work.provider))
    progress = Progress.from_counts(counts)
    realtime_left = progress.queued + progress.processing - work.to_submit - work.at_provider
    if realtime_left > 0:
        realtime = batch.projected_completion(counts, now)
        if realtime is None:
            return None, PROVIDER_BATCH
        finishes.append(realtime)
    return (max(finishes) if finishes else None), PROVIDER_BATCH


def estimate_finish(
    batch: JobBatch,
    counts: dict[str, int] | None = None,
    now: datetime | None = None,
    work: EconomyWork | None = None,
) -> Estimate:
    """The batch's estimated finish and deadline standing.

    counts are progress() figures and work its economy jobs, passed in by callers that
    already have them (the queue, a list's rows) to save queries.
    """
    now = now or timezone.now()
    counts = counts if counts is not None else batch.progress()
    if work is None:
        work = economy_work(batch) if _may_wait_on_a_provider(batch, counts) else NO_ECONOMY
    at, source = finish(batch, counts, now, work)
    standing = batch.deadline_standing(now, counts, projected=at)
    return Estimate(at=at, source=source, standing=standing)
