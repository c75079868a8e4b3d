"""A real cluster on PostgreSQL, killed halfway through a batch, still grades every job once.

No schedule is installed (the test database is only migrated) and leases are the default
two minutes: the restarted cluster takes the killed runners' jobs over because their
presence went stale (or their processes are gone), not because a reaper ran.
"""

import pytest
from django.db.models import Count
from django_q.models import Schedule

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_document, prebuilt
from tests.support.cluster import running_cluster, wait_for
from tests.support.engine import OPENAI, processing
from tests.support.llm_standin import LLMStandin

pytestmark = [pytest.mark.postgres, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

JOBS = 300
CAP = 8


def cluster_env(standin: LLMStandin) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": standin.url,
        "OPENAI_MAX_CONCURRENCY": str(CAP),
        "Q_WORKERS": "2",
        "RUNNER_THREADS": "16",
    }


def results(batch: JobBatch) -> int:
    return GradingResult.objects.filter(job__batch=batch).count()


def halfway_with_calls_in_flight(batch: JobBatch) -> bool:
    in_flight = GradingJob.objects.in_batch(batch).filter(status=JobStatus.PROCESSING).exists()
    return in_flight and results(batch) >= JOBS // 2


def test_a_batch_survives_a_killed_cluster_with_exactly_one_result_per_job(owner):
    documents = [
        make_document(owner, f"essay-{i:03}.txt", f"Essay {i} argues for parks. " * 40) for i in range(JOBS)
    ]
    batch = JobBatch.objects.create_from_template(
        owner=owner,
        name="Crash test",
        template=prebuilt("academic-essay"),
        settings={**OPENAI, **processing(concurrency=100, backoff_base_s=0.5, backoff_max_s=1)},
    )
    batch.add_documents(documents)
    assert not Schedule.objects.exists()

    with LLMStandin(latency_s=0.1, max_concurrency=CAP, over_cap="record") as standin:
        env = cluster_env(standin)
        with running_cluster(**env) as first:
            batch.start_batch()
            wait_for(lambda: halfway_with_calls_in_flight(batch), timeout=120, what="half the results")
            first.kill()
        at_kill = results(batch)
        interrupted = GradingJob.objects.in_batch(batch).filter(status=JobStatus.PROCESSING).count()

        with running_cluster(**env) as second:
            finished = lambda: JobBatch.objects.get(pk=batch.pk).status in BatchStatus.finished()  # noqa: E731
            try:
                # Well within the interrupted jobs' lease of 120 s.
                wait_for(finished, timeout=90, what="the batch to finish")
            except TimeoutError as error:
                raise AssertionError(f"{error}\n--- cluster log ---\n{second.log()}") from None
        stats = standin.stats()

    batch.refresh_from_db()
    assert at_kill < JOBS
    assert interrupted > 0
    assert batch.status == BatchStatus.COMPLETED
    assert results(batch) == JOBS
    per_job = GradingResult.objects.filter(job__batch=batch).values("job").annotate(n=Count("id"))
    assert {row["n"] for row in per_job} == {1}
    assert set(GradingJob.objects.in_batch(batch).values_list("status", flat=True)) == {JobStatus.COMPLETED}
    assert stats["peak_concurrency"] <= CAP
    assert stats["concurrency_violations"] == 0
    assert stats["completions"] >= JOBS
