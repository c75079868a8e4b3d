"""What does the engine cost per job, next to what django-q2 costs per task?

2,000 documents graded with the offline `builtin` provider by a real cluster of two
worker processes on PostgreSQL: jobs per second through the whole pipeline (start →
claim → grade → record → batch finished). In the same run and cluster, django-q2's own
rate for 2,000 no-op tasks (enqueued one by one, run, acknowledged). Rounds alternate
the two measurements; the medians are compared.

    python bench/overhead.py               # 3 rounds of 2,000 each
    python bench/overhead.py --rounds 5 --jobs 1000

Target: the pipeline at least 1.0 × the no-op task rate.
"""

import argparse
import statistics
import time

from _engine import (
    bench_owner,
    configure,
    empty_database,
    make_batch,
    make_documents,
    wait_until_finished,
    wait_until_queue_empty,
)

WORKERS = 2


def main() -> None:
    options = parse_args()
    configure("gp_bench_overhead")
    from tests.support.cluster import running_cluster

    empty_database()
    owner = bench_owner()
    documents = make_documents(owner, options.jobs)
    print(
        f"{options.jobs} jobs (builtin provider) and {options.jobs} no-op tasks, {WORKERS} worker processes"
    )
    pipeline, noop = [], []
    with running_cluster(Q_WORKERS=WORKERS):
        warm_up(owner)
        for round_number in range(1, options.rounds + 1):
            noop.append(noop_rate(options.jobs))
            pipeline.append(pipeline_rate(owner, documents, round_number))
            print(
                f"  round {round_number}: pipeline {pipeline[-1]:7.1f} jobs/s   no-op {noop[-1]:7.1f} tasks/s"
            )
    report(statistics.median(pipeline), statistics.median(noop))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def warm_up(owner) -> None:
    """Both worker processes import everything and connect before anything is timed."""
    from django_q.tasks import async_task

    batch = make_batch(owner, make_documents(owner, 100), "warm-up")
    batch.start_batch()
    wait_until_finished(batch, timeout=120)
    for _ in range(50):
        async_task("bench.naive_tasks.noop")
    wait_until_queue_empty(timeout=120)


def noop_rate(count: int) -> float:
    from django_q.tasks import async_task

    started = time.monotonic()
    for _ in range(count):
        async_task("bench.naive_tasks.noop")
    wait_until_queue_empty(timeout=600)
    return count / (time.monotonic() - started)


def pipeline_rate(owner, documents: list, round_number: int) -> float:
    batch = make_batch(owner, documents, f"overhead {round_number}")
    batch.start_batch()
    wait_until_finished(batch, timeout=600)
    batch.refresh_from_db()
    return len(documents) / (batch.completed_at - batch.started_at).total_seconds()


def report(pipeline: float, noop: float) -> None:
    print("\nmedian")
    print(f"  pipeline     {pipeline:7.1f} jobs/s")
    print(f"  django-q2    {noop:7.1f} no-op tasks/s")
    print(f"  ratio        {pipeline / noop:7.2f} ×   (target ≥ 1.0)")


if __name__ == "__main__":
    main()
