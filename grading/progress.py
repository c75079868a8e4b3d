"""Progress of a set of jobs (a batch's, usually), computed in one place.

The counts come from the database (GradingJobQuerySet.progress() in one
aggregate, or JobBatch's with_progress() annotations on a list's rows); what
is derived from them — jobs done, jobs remaining, percent done — is derived
here, so the API, the pages, notifications, the grade command and analytics
agree on it to the last rounding.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grading.statuses import JobStatus


@dataclass(frozen=True)
class Progress:
    """Job counts: the total and one per JobStatus (the fields are named by its values)."""

    total: int
    pending: int
    queued: int
    processing: int
    completed: int
    failed: int
    cancelled: int

    @classmethod
    def from_counts(cls, counts: Mapping[str, Any]) -> "Progress":
        """From "total" and a count per job status; other keys (a percent) are ignored."""
        return cls(total=counts["total"], **{status.value: counts[status.value] for status in JobStatus})

    def count(self, status: str) -> int:
        return getattr(self, JobStatus(status).value)

    @property
    def done(self) -> int:
        """Jobs that ended, whichever way: completed, failed or cancelled."""
        return sum(self.count(status) for status in JobStatus.finished())

    @property
    def remaining(self) -> int:
        """Jobs not ended yet: pending, queued or processing."""
        return self.total - self.done

    @property
    def ran(self) -> int:
        """Jobs that ended after running, completed or failed: cancelled ones never had their chance."""
        return self.completed + self.failed

    @property
    def percent(self) -> float:
        """Jobs done in percent of all, to 0.1; 0.0 without jobs."""
        return round(100 * self.done / self.total, 1) if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """{"total", one key per job status, "percent"}: the API's, the signals' and the pages' form."""
        return {
            "total": self.total,
            **{status.value: self.count(status) for status in JobStatus},
            "percent": self.percent,
        }
