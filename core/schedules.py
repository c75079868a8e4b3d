"""The project's recurring django-q2 schedules, created idempotently by `manage.py ensure_schedules`.

Each entry is identified by its name: running the command again updates the
entry in place (and removes duplicates of it) rather than adding another, and
never moves a schedule's next run, so a restart does not postpone the work.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone


@dataclass(frozen=True)
class Recurring:
    name: str
    func: str
    schedule_type: str  # a django_q Schedule type: "I" (every N minutes), "D" (daily), ...
    minutes: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    # For daily schedules: the UTC time of day of the first run.
    at: time | None = None

    def first_run(self, now: datetime) -> datetime:
        if self.at is None:
            return now
        first = now.replace(hour=self.at.hour, minute=self.at.minute, second=0, microsecond=0)
        return first if first > now else first + timedelta(days=1)


SCHEDULES: list[Recurring] = [
    Recurring(
        name="Archive finished batches",
        func="batches.tasks.cleanup_completed_batches",
        schedule_type="D",
        at=time(3, 0),
    ),
    Recurring(
        name="Notify: scan active batches",
        func="notifications.tasks.scan_active_batches",
        schedule_type="I",
        minutes=1,
    ),
    Recurring(name="Cluster heartbeat", func="health.tasks.heartbeat", schedule_type="I", minutes=1),
    # Economy delivery: submits economy jobs in provider batches, polls them, records their results.
    Recurring(
        name="Economy delivery: submit and poll provider batches",
        func="batches.tasks.run_economy",
        schedule_type="I",
        minutes=1,
    ),
    # The reaper: re-queues jobs whose worker died, re-kicks stalled batches.
    Recurring(
        name="Recover stalled jobs",
        func="batches.tasks.recover_stalled_jobs",
        schedule_type="I",
        minutes=1,
    ),
]


def ensure_schedules(now: datetime | None = None) -> list[tuple[str, str]]:
    """Create or update every recurring schedule; returns (name, 'created'|'updated') pairs."""
    from django_q.models import Schedule

    now = now or timezone.now()
    done = []
    with transaction.atomic():
        for spec in SCHEDULES:
            same_name = Schedule.objects.select_for_update().filter(name=spec.name).order_by("pk")
            keep = same_name.first()
            if keep is not None:
                same_name.exclude(pk=keep.pk).delete()
            _, created = Schedule.objects.update_or_create(
                name=spec.name,
                defaults={
                    "func": spec.func,
                    "schedule_type": spec.schedule_type,
                    "minutes": spec.minutes,
                    "kwargs": repr(spec.kwargs) if spec.kwargs else None,
                    "repeats": -1,
                },
                create_defaults={
                    "func": spec.func,
                    "schedule_type": spec.schedule_type,
                    "minutes": spec.minutes,
                    "kwargs": repr(spec.kwargs) if spec.kwargs else None,
                    "repeats": -1,
                    "next_run": spec.first_run(now),
                },
            )
            done.append((spec.name, "created" if created else "updated"))
    return done
