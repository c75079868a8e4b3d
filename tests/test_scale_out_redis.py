"""Scale-out: two qcluster nodes on one PostgreSQL and one Redis grade a batch exactly once."""

import time
from collections import Counter

import psutil
import pytest

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, GradingResult, JobStatus
from notifications.models import Channel, Event, Notification
from tests.conftest import make_batch
from tests.support.qcluster_nodes import (
    node_env,
    node_logs,
    qcluster_nodes,
    require_redis,
    run_manage,
    unique_cluster_name,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.cluster]

JOBS = 500


def node_pids(nodes) -> list[set[int]]:
    """Each node's processes: its sentinel and every worker it spawned."""
    return [
        {node.pid} | {child.pid for child in psutil.Process(node.pid).children(recursive=True)}
        for node in nodes
    ]


def spawned(nodes, workers: int) -> list[set[int]] | None:
    """The nodes' processes once each has its main process, sentinel, monitor, pusher and workers."""
    pids = node_pids(nodes)
    return pids if all(len(owned) >= 4 + workers for owned in pids) else None


def test_two_nodes_on_redis_grade_a_500_job_batch_with_exactly_500_results(transactional_db, owner, tmp_path):
    require_redis()
    batch = make_batch(owner, jobs=JOBS, name="Scale-out")
    env = node_env(unique_cluster_name(), Q_WORKERS="2")
    with qcluster_nodes(2, env, tmp_path) as nodes:
        # Wait for both nodes' workers before queueing, so the work is there to share.
        pids = wait_for(lambda: spawned(nodes, workers=2), 60, what="both nodes to spawn their workers")
        started = time.monotonic()
        # Started from a separate process configured like a web node, so the task goes
        # through the Redis broker the nodes listen on (this test process uses the ORM one).
        run_manage(
            env, f"from batches.models import JobBatch\nJobBatch.objects.get(pk={batch.pk}).start_batch()"
        )
        try:
            wait_for(
                lambda: JobBatch.objects.get(pk=batch.pk).status in BatchStatus.finished(),
                240,
                what="the batch to finish",
            )
        except AssertionError:
            raise AssertionError(
                f"{JobBatch.objects.get(pk=batch.pk).progress()}\n{node_logs(tmp_path)}"
            ) from None
        elapsed = time.monotonic() - started
        pids = [found | now for found, now in zip(pids, node_pids(nodes), strict=True)]
        # Deliveries of the batch's end (e-mail to the owner) run on the nodes too.
        wait_for(
            lambda: not Notification.objects.filter(channel=Channel.EMAIL).exclude(status="sent").exists(),
            60,
            what="the notification e-mails to be sent",
        )

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.completed_at is not None
    jobs = GradingJob.objects.in_batch(batch)
    assert jobs.filter(status=JobStatus.COMPLETED).count() == JOBS
    results = GradingResult.objects.filter(job__batch=batch)
    assert results.count() == JOBS
    assert results.values("job_id").distinct().count() == JOBS
    # Every job was claimed and graded once: no attempt was repeated or discarded.
    assert set(jobs.values_list("attempts", flat=True)) == {1}

    per_node = Counter()
    for token in jobs.values_list("claimed_by", flat=True):
        pid = int(token.split(":")[1])
        per_node[next((index for index, owned in enumerate(pids) if pid in owned), "elsewhere")] += 1
    assert per_node["elsewhere"] == 0
    print(f"\n{JOBS} jobs graded in {elapsed:.1f} s by two nodes: {per_node[0]} and {per_node[1]}")
    # However Redis spreads the processing tasks, every worker of every live node
    # runs a standing runner that looks for active work: both nodes take part.
    assert per_node[0] > 0 and per_node[1] > 0, f"one node graded everything: {dict(per_node)}"

    # The batch's end was announced once, though two nodes finished its jobs.
    finished = Notification.objects.filter(batch=batch, event=Event.BATCH_FINISHED)
    assert sorted(finished.values_list("channel", flat=True)) == ["email", "in_app"]
    milestones = Notification.objects.filter(
        batch=batch, event=Event.PROGRESS_MILESTONE, channel=Channel.IN_APP
    )
    assert milestones.values("key").distinct().count() == milestones.count()
