"""Handing a started batch to the workers.

Kept apart from `batches.tasks` so that the model can enqueue work without
importing the tasks module, which imports the model: django-q2 is told the
task by its dotted path.
"""

import math

from django.conf import settings
from django_q.conf import Conf
from django_q.tasks import async_task

from core.cluster import live_worker_count
from grading import wakeups
from grading.models import GradingJob


def enqueue_processing(batch_id: int, *, carry_on: bool = False) -> None:
    """Hand a started or resumed batch to the workers: a task for each one it can keep busy.

    The tasks go out together, so that every worker starts at once; helpers asked
    for by the first task to arrive came a broker poll or two later, while the
    first runner held only its share of the provider's cap. A runner that
    carries on after its time budget (carry_on) hands over to one task.
    """
    runners = 1 if carry_on else _runners_wanted()
    # Every standing runner on every node hears this at once (PostgreSQL); the tasks
    # below wake those of the workers that take them, and serve SQLite's ORM broker.
    wakeups.announce_work(peers=runners - 1)
    for _ in range(runners):
        async_task(
            "batches.tasks.process_batch",
            batch_id,
            peers=runners - 1,
            task_name=f"process_batch:{batch_id}",
        )


def _runners_wanted() -> int:
    """One runner per worker process, as long as each has a thread pool's worth of jobs."""
    if Conf.SYNC:
        return 1
    claimable = GradingJob.objects.claimable().order_by().count()
    # Every node's workers, not just this one's: a task is for any node to take.
    return max(min(live_worker_count(), math.ceil(claimable / settings.RUNNER_THREADS)), 1)
