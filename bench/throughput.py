"""How close does the engine come to the provider's limit on network-bound calls?

1,000 documents graded through the `openai` provider against the loopback stand-in
(200 ms per call, at most 32 calls at once), by a real cluster of two worker processes
on PostgreSQL. The ideal time is N × latency / cap: the provider busy at its cap from
the first call to the last. Efficiency is ideal / measured time.

In the same run, the naive design for comparison: one django-q2 task per job, each
worker making one call at a time.

    python bench/throughput.py                  # both designs, 1,000 jobs each
    python bench/throughput.py --naive-jobs 0   # the engine only
    BENCH_PG=postgres://user@host:5432 python bench/throughput.py

Target: efficiency ≥ 0.85 for the engine.
"""

import argparse
import time

from _engine import (
    bench_owner,
    configure,
    empty_database,
    make_batch,
    make_documents,
    reset_standin,
    standin_process,
    standin_stats,
    wait_until_finished,
)

WORKERS = 2


def main() -> None:
    options = parse_args()
    configure("gp_bench_throughput")
    from tests.support.cluster import running_cluster

    latency, cap = options.latency, options.cap
    owner = bench_owner()
    with standin_process(
        "--latency", str(latency), "--max-concurrency", str(cap), "--over-cap", "record"
    ) as url:
        env = {
            "OPENAI_BASE_URL": url,
            "OPENAI_MAX_CONCURRENCY": cap,
            "RUNNER_THREADS": cap,
            "Q_WORKERS": WORKERS,
        }
        empty_database()
        print(f"{options.jobs} jobs, {latency * 1000:g} ms per call, cap {cap}, {WORKERS} worker processes")
        with running_cluster(**env):
            engine = measure_engine(owner, options.jobs, url)
        report("engine (claims, threads)", engine, options.jobs, latency, cap)
        reset_standin(url)
        ceiling = measure_ceiling(url, options.jobs, cap)
        report(
            "ceiling: the same calls from plain threads, no database, no queue",
            ceiling,
            options.jobs,
            latency,
            cap,
        )
        if options.naive_jobs:
            with running_cluster(**env):
                naive = measure_naive(owner, options.naive_jobs, url)
            report("naive (one task per job, one call at a time)", naive, options.naive_jobs, latency, cap)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--naive-jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=32)
    return parser.parse_args()


OPENAI = {"provider": "openai", "model": "gpt-4o-mini"}


def measure_engine(owner, jobs: int, url: str) -> tuple[float, dict]:
    # A warm-up batch: workers import the SDK and open their connections first.
    warm = make_batch(
        owner, make_documents(owner, 64), "warm-up", {**OPENAI, "processing": {"concurrency": 512}}
    )
    warm.start_batch()
    wait_until_finished(warm, timeout=120)
    reset_standin(url)

    batch = make_batch(
        owner, make_documents(owner, jobs), "throughput", {**OPENAI, "processing": {"concurrency": 512}}
    )
    batch.start_batch()
    wait_until_finished(batch, timeout=600)
    batch.refresh_from_db()
    elapsed = (batch.completed_at - batch.started_at).total_seconds()
    return elapsed, standin_stats(url)


def measure_ceiling(url: str, jobs: int, cap: int) -> tuple[float, dict]:
    """What this machine allows: WORKERS processes of cap / WORKERS threads calling in a loop.

    The provider's own CPU cost per call is paid here too, so this is the best the
    engine could do. The clock starts once every process has imported, built its
    client and made one call, as the engine's workers are warm before its batch.
    """
    import multiprocessing

    share = -(-jobs // WORKERS)
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(WORKERS + 1)
    processes = [
        context.Process(target=_call_in_threads, args=(url, share, cap // WORKERS, ready))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=120)
    reset_standin(url)
    started = time.monotonic()
    ready.wait(timeout=120)
    for process in processes:
        process.join()
    return time.monotonic() - started, standin_stats(url)


def _call_in_threads(url: str, calls: int, threads: int, ready) -> None:
    import threading

    from _engine import essay
    from django.conf import settings

    from grading.providers import GradeRequest, get_provider
    from grading.schema import validate_settings
    from templates_app.prebuilt import ACADEMIC_ESSAY

    settings.OPENAI_BASE_URL = url
    snapshot = validate_settings({**ACADEMIC_ESSAY["default_settings"], **OPENAI}).model_dump(mode="json")
    provider = get_provider("openai")
    requests = [
        GradeRequest(essay(index), snapshot["rubric"], snapshot, OPENAI["model"]) for index in range(calls)
    ]
    provider.grade(requests[0])
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not requests:
                    return
                request = requests.pop()
            provider.grade(request)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    ready.wait(timeout=120)
    ready.wait(timeout=120)
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def measure_naive(owner, jobs: int, url: str) -> tuple[float, dict]:
    from django_q.tasks import async_task

    from grading.models import GradingJob

    # The batch stays a draft: the engine never claims its jobs; the naive tasks grade them.
    batch = make_batch(owner, make_documents(owner, jobs + 2 * WORKERS), "naive", OPENAI)
    job_ids = list(GradingJob.objects.in_batch(batch).values_list("pk", flat=True))
    warm, measured = job_ids[: 2 * WORKERS], job_ids[2 * WORKERS :]
    for job_id in warm:
        async_task("bench.naive_tasks.grade_one", job_id)
    wait_until_completed(warm, timeout=120)
    reset_standin(url)

    started = time.monotonic()
    for job_id in measured:
        async_task("bench.naive_tasks.grade_one", job_id)
    wait_until_completed(measured, timeout=3600)
    return time.monotonic() - started, standin_stats(url)


def wait_until_completed(job_ids: list[int], timeout: float) -> None:
    from grading.models import GradingJob, JobStatus

    deadline = time.monotonic() + timeout
    while GradingJob.objects.filter(pk__in=job_ids).exclude(status=JobStatus.COMPLETED).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"The naive tasks did not finish within {timeout:g} s.")
        time.sleep(0.05)


def report(title: str, measured: tuple[float, dict], jobs: int, latency: float, cap: int) -> None:
    elapsed, stats = measured
    ideal = jobs * latency / cap
    print(f"\n{title}")
    print(f"  ideal       {ideal:8.2f} s   (N × latency / cap)")
    print(f"  measured    {elapsed:8.2f} s")
    print(f"  efficiency  {ideal / elapsed:8.2f}     (target ≥ 0.85)")
    print(
        f"  stand-in    {stats['requests']} requests, peak {stats['peak_concurrency']} at once, "
        f"{stats['concurrency_violations']} over the cap"
    )


if __name__ == "__main__":
    main()
