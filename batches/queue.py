"""The processing queue: active batches in the order the engine will serve them.

The order is the claim order itself (grading/serve_order.py): each active
batch is placed by its first job in line (its oldest queued job, or, when all
its jobs are in flight, its oldest job in flight) under the same keys claims
sort by: priority, deadline, age. Each batch carries its jobs waiting and in
flight, its share of its provider's capacity now (jobs in flight / the
provider's cap, from the provider's own `limits()`), and its estimated finish
and deadline standing (batches/eta.py, as every page and the API show them).

Economy jobs (grading/economy.py) are not claimed by the runners and make no
calls: they are counted apart, as waiting to be submitted (queued) and at the
provider (held by an open provider batch), not as waiting or in flight. They
take no share of the provider's capacity and are never "ahead" of anyone's
real-time work.

A user sees the batches they may view; everyone else's work appears only as
totals: how many other batches and jobs are ahead of each of theirs, and in
the whole queue.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import BooleanField, Count, ExpressionWrapper, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from batches.eta import EconomyWork, Estimate, estimate_finish, provider_of
from batches.models import JobBatch
from core.permissions import is_superuser
from grading.limits import provider_limits
from grading.models import GradingJob, JobStatus, ProviderBatch
from grading.progress import Progress
from grading.serve_order import batch_ordering
from grading.statuses import CLAIMING_BATCH_STATES, Delivery

# The annotations holding a batch's first job in line, by the job column of the serve order.
FIRST_JOB = {"created_at": "first_job_created_at", "id": "first_job_id"}


@dataclass
class QueueEntry:
    batch: JobBatch
    position: int
    counts: dict[str, int]
    provider: str
    cap: int | None
    # Economy jobs: queued for the next submission, and held by open provider batches.
    to_submit: int = 0
    at_provider: int = 0
    expected_by: datetime | None = None
    ahead_batches: int = 0
    ahead_jobs: int = 0
    hidden_ahead_batches: int = 0
    hidden_ahead_jobs: int = 0
    visible: bool = True
    estimate: Estimate | None = None

    @property
    def eta(self) -> datetime | None:
        return self.estimate.at if self.estimate else None

    @property
    def economy(self) -> EconomyWork:
        return EconomyWork(self.provider, self.to_submit, self.at_provider, self.expected_by)

    @property
    def waiting(self) -> int:
        """Real-time jobs waiting for a runner."""
        return self.counts[JobStatus.QUEUED] - self.to_submit

    @property
    def in_flight(self) -> int:
        """Real-time calls under way."""
        return self.counts[JobStatus.PROCESSING] - self.at_provider

    @property
    def share(self) -> float | None:
        """This batch's share of its provider's capacity now: in flight / the cap (None: no cap)."""
        return round(self.in_flight / self.cap, 4) if self.cap else None

    def as_dict(self) -> dict[str, Any]:
        batch, progress = self.batch, Progress.from_counts(self.counts)
        return {
            "id": batch.pk,
            "name": batch.name,
            "owner": batch.owner.get_username(),
            "status": batch.status,
            "priority": batch.priority,
            "deadline": _iso(batch.deadline),
            "position": self.position,
            "provider": self.provider or None,
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "total": progress.total,
            "done": progress.done,
            "percent": progress.percent,
            "capacity": {"provider": self.provider or None, "cap": self.cap, "share": self.share},
            "economy": {
                "to_submit": self.to_submit,
                "at_provider": self.at_provider,
                "expected_by": _iso(self.expected_by),
            },
            "estimated_finish": _iso(self.eta),
            "estimate_source": self.estimate.source if self.estimate else None,
            "deadline_standing": self.estimate.standing if self.estimate else None,
            "ahead": {"batches": self.ahead_batches, "jobs": self.ahead_jobs},
            "others_ahead": {"batches": self.hidden_ahead_batches, "jobs": self.hidden_ahead_jobs},
        }


def _first_in_line(status: str, column: str) -> Subquery:
    jobs = GradingJob.objects.filter(batch=OuterRef("pk"), status=status).order_by("created_at", "id")
    return Subquery(jobs.values(column)[:1])


def _in_line(column: str) -> Coalesce:
    """The column of the batch's oldest queued job, or of its oldest job in flight when none waits."""
    return Coalesce(_first_in_line(JobStatus.QUEUED, column), _first_in_line(JobStatus.PROCESSING, column))


def _economy_jobs(status: str) -> Coalesce:
    jobs = GradingJob.objects.filter(batch=OuterRef("pk"), status=status, delivery=Delivery.ECONOMY)
    counted = jobs.order_by().values("batch").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _expected_by() -> Subquery:
    """The latest expected completion among the batch's open provider batches."""
    open_batches = ProviderBatch.objects.open().filter(batch=OuterRef("pk"), expected_by__isnull=False)
    return Subquery(open_batches.order_by("-expected_by").values("expected_by")[:1])


def active_batches(user=None):
    """The batches claims serve, in serve order, with their job counts; `is_visible` to the user, when given."""
    queryset = (
        JobBatch.objects.filter(status__in=CLAIMING_BATCH_STATES)
        .with_progress()
        .select_related("owner", "template")
        .annotate(
            first_job_created_at=_in_line("created_at"),
            first_job_id=_in_line("id"),
            first_job_provider=_in_line("provider"),
            economy_to_submit=_economy_jobs(JobStatus.QUEUED),
            economy_at_provider=_economy_jobs(JobStatus.PROCESSING),
            economy_expected_by=_expected_by(),
        )
        .order_by(*batch_ordering(FIRST_JOB), "pk")
    )
    if user is not None and not is_superuser(user):
        # In the same query: a list page pays one query for the queue, however many batches it shows.
        visible = Q(pk__in=JobBatch.objects.visible_to(user).values("pk"))
        queryset = queryset.annotate(is_visible=ExpressionWrapper(visible, output_field=BooleanField()))
    return queryset


def serve_queue(user=None, now: datetime | None = None) -> list[QueueEntry]:
    """Every active batch in serve order; with a user, those they may not view marked hidden."""
    now = now or timezone.now()
    entries: list[QueueEntry] = []
    hidden_ahead = ahead_jobs = hidden_jobs = 0
    for position, batch in enumerate(active_batches(user), start=1):
        counts = batch.known_progress()
        provider = batch.first_job_provider or provider_of(batch)
        entry = QueueEntry(
            batch=batch,
            position=position,
            counts=counts,
            provider=provider,
            cap=provider_limits(provider).max_concurrency if provider else None,
            to_submit=batch.economy_to_submit,
            at_provider=batch.economy_at_provider,
            expected_by=batch.economy_expected_by,
            ahead_batches=position - 1,
            ahead_jobs=ahead_jobs,
            hidden_ahead_batches=hidden_ahead,
            hidden_ahead_jobs=hidden_jobs,
            visible=bool(getattr(batch, "is_visible", True)),
        )
        entry.estimate = estimate_finish(batch, counts, now, entry.economy)
        entries.append(entry)
        ahead_jobs += entry.waiting
        if not entry.visible:
            hidden_ahead += 1
            hidden_jobs += entry.waiting
    return entries


def queue_for(user, now: datetime | None = None) -> dict[str, Any]:
    """The queue as `user` may see it: their batches in full, everyone else's as totals."""
    now = now or timezone.now()
    entries = serve_queue(user, now)
    shown = [entry for entry in entries if entry.visible]
    hidden = [entry for entry in entries if not entry.visible]
    return {
        "generated_at": now.isoformat(),
        "batches": [entry.as_dict() for entry in shown],
        "others": _totals(hidden),
        "total": _totals(entries),
        "providers": provider_capacity(),
    }


def _totals(entries: list[QueueEntry]) -> dict[str, int]:
    return {
        "batches": len(entries),
        "waiting": sum(entry.waiting for entry in entries),
        "in_flight": sum(entry.in_flight for entry in entries),
        "to_submit": sum(entry.to_submit for entry in entries),
        "at_provider": sum(entry.at_provider for entry in entries),
    }


def provider_capacity() -> list[dict[str, Any]]:
    """Per provider with work in flight or waiting: calls in flight now against its cap (totals only).

    Economy jobs are counted apart (to_submit, at_provider): they make no calls against the cap.
    """
    rows = (
        GradingJob.objects.filter(
            status__in=[JobStatus.QUEUED, JobStatus.PROCESSING], batch__status__in=CLAIMING_BATCH_STATES
        )
        .exclude(provider="")
        .values("provider")
        .annotate(
            waiting=Count("id", filter=Q(status=JobStatus.QUEUED, delivery=Delivery.REALTIME)),
            in_flight=Count("id", filter=Q(status=JobStatus.PROCESSING, delivery=Delivery.REALTIME)),
            to_submit=Count("id", filter=Q(status=JobStatus.QUEUED, delivery=Delivery.ECONOMY)),
            at_provider=Count("id", filter=Q(status=JobStatus.PROCESSING, delivery=Delivery.ECONOMY)),
        )
        .order_by("provider")
    )
    capacity = []
    for row in rows:
        limits = provider_limits(row["provider"])
        cap = limits.max_concurrency
        capacity.append(
            {
                "provider": row["provider"],
                "cap": cap,
                "in_flight": row["in_flight"],
                "waiting": row["waiting"],
                "to_submit": row["to_submit"],
                "at_provider": row["at_provider"],
                "share": round(row["in_flight"] / cap, 4) if cap else None,
                "source": limits.source,
            }
        )
    return capacity


def places(user, batches: list[JobBatch], now: datetime | None = None) -> dict[int, QueueEntry]:
    """The queue entries of those of the batches that are active: for the list and the batch page.

    One query whatever the batches, also when none is active, so a page's query count
    does not depend on what it shows.
    """
    wanted = {batch.pk for batch in batches}
    return {entry.batch.pk: entry for entry in serve_queue(user, now) if entry.batch.pk in wanted}


def attach_places(user, rows: list) -> list:
    """Set `queue` on the rows (presenters.BatchRow) of active batches: their place in the queue."""
    entries = places(user, [row.batch for row in rows])
    for row in rows:
        row.queue = entries.get(row.batch.pk)
    return rows


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
