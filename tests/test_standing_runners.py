"""Every live node takes part: a node started in the middle of a batch takes its share without a task."""

from collections import Counter

import psutil
import pytest

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_document, prebuilt
from tests.support.cluster import running_cluster, wait_for
from tests.support.engine import OPENAI, processing
from tests.support.llm_standin import LLMStandin

pytestmark = [pytest.mark.postgres, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

JOBS = 400
CAP = 8


def pids_of(cluster) -> set[int]:
    return {cluster.pid} | {child.pid for child in psutil.Process(cluster.pid).children(recursive=True)}


def test_a_node_started_mid_batch_shares_the_work_within_seconds(owner):
    documents = [
        make_document(owner, f"essay-{i:03}.txt", f"Essay {i} argues for parks. " * 30) for i in range(JOBS)
    ]
    batch = JobBatch.objects.create_from_template(
        owner=owner,
        name="Late node",
        template=prebuilt("academic-essay"),
        settings={**OPENAI, **processing(concurrency=100)},
    )
    batch.add_documents(documents)
    done = lambda: GradingJob.objects.in_batch(batch).filter(status=JobStatus.COMPLETED).count()  # noqa: E731

    with LLMStandin(latency_s=0.2, max_concurrency=CAP, over_cap="record") as standin:
        env = {"OPENAI_BASE_URL": standin.url, "OPENAI_MAX_CONCURRENCY": str(CAP), "Q_WORKERS": "1"}
        with running_cluster(**env) as first:
            batch.start_batch()
            wait_for(lambda: done() >= 20, timeout=60, what="the first node to start grading")
            first_pids = pids_of(first)
            # The batch's task went to the first node; the second gets none.
            with running_cluster(**env) as second:
                wait_for(lambda: psutil.Process(second.pid).children(recursive=True), 30, what="a worker")
                wait_for(
                    lambda: JobBatch.objects.get(pk=batch.pk).status in BatchStatus.finished(),
                    timeout=180,
                    what="the batch to finish",
                )
                second_pids = pids_of(second)
        stats = standin.stats()

    per_node = Counter()
    for token in GradingJob.objects.in_batch(batch).values_list("claimed_by", flat=True):
        pid = int(token.split(":")[1])
        per_node["first" if pid in first_pids else "second" if pid in second_pids else "elsewhere"] += 1
    assert per_node["elsewhere"] == 0
    assert per_node["second"] > 0, dict(per_node)
    assert GradingResult.objects.filter(job__batch=batch).count() == JOBS
    assert stats["concurrency_violations"] == 0
