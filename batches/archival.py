"""Archival of finished batches, shared by `manage.py archive_batches` and the daily task."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch


@dataclass
class ArchivalReport:
    cutoff: datetime
    statuses: list[str]
    dry_run: bool
    archived: list[JobBatch] = field(default_factory=list)
    # (batch, why): batches that changed between the selection and their archival.
    skipped: list[tuple[JobBatch, str]] = field(default_factory=list)

    def summary(self) -> str:
        verb = "Would archive" if self.dry_run else "Archived"
        line = (
            f"{verb} {len(self.archived)} batch{'es' if len(self.archived) != 1 else ''} "
            f"finished before {self.cutoff:%Y-%m-%d %H:%M} UTC ({', '.join(self.statuses)})."
        )
        if self.skipped:
            line += f" Skipped {len(self.skipped)} that changed meanwhile."
        return line


def parse_statuses(text: str | list[str] | None) -> list[str]:
    """'completed,cancelled' as a list of finished states; ValueError with a sentence otherwise."""
    if text is None:
        return list(BatchStatus.finished())
    names = text if isinstance(text, list) else text.split(",")
    statuses = [name.strip() for name in names if name.strip()]
    if not statuses:
        raise ValueError("--status names no status; give one or more of " + _finished_list() + ".")
    for status in statuses:
        if status not in BatchStatus.values:
            raise ValueError(f"{status!r} is not a batch status; choose from {_finished_list()}.")
        if status not in BatchStatus.finished():
            raise ValueError(
                f"Only finished batches can be archived, and {status!r} is not a finished state; "
                f"choose from {_finished_list()}."
            )
    return list(dict.fromkeys(statuses))


def _finished_list() -> str:
    return ", ".join(BatchStatus.finished())


def archive_finished_batches(
    older_than: timedelta,
    statuses: list[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ArchivalReport:
    """Archive, through the state machine, finished batches that ended more than older_than ago."""
    statuses = statuses or list(BatchStatus.finished())
    cutoff = (now or timezone.now()) - older_than
    report = ArchivalReport(cutoff=cutoff, statuses=statuses, dry_run=dry_run)
    candidates = JobBatch.objects.archivable(cutoff, statuses).order_by("completed_at", "pk")
    for batch in candidates.iterator(chunk_size=500):
        if dry_run:
            report.archived.append(batch)
            continue
        # One transaction per batch: each takes its own row lock, and a refusal
        # (retried by someone since the SELECT) skips that batch, not the run.
        try:
            batch.archive(finished_before=cutoff)
        except InvalidTransition as exc:
            report.skipped.append((batch, exc.detail))
        else:
            report.archived.append(batch)
    return report
