"""/healthz with the Redis broker lists the live qcluster nodes it finds there."""

import json

import pytest

from tests.support.qcluster_nodes import (
    node_env,
    node_logs,
    qcluster_nodes,
    require_redis,
    run_manage,
    unique_cluster_name,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.cluster]

# Polls in one process (a Django start-up per probe would dominate the test)
# until /healthz lists the expected number of live nodes with their workers,
# then prints the last answer.
PROBE_UNTIL = """
import time
from django.test import Client
deadline = time.monotonic() + {timeout}
while True:
    response = Client().get("/healthz")
    nodes = response.json()["checks"]["cluster"].get("nodes", [])
    # A node just started may not have spawned its workers yet.
    if (len(nodes) == {nodes} and all(node["workers"] for node in nodes)) or time.monotonic() > deadline:
        break
    time.sleep(0.3)
print(response.status_code)
print(response.content.decode())
"""


def probe_until(env, nodes: int, timeout: float = 60) -> tuple[int, dict]:
    status, body = run_manage(env, PROBE_UNTIL.format(nodes=nodes, timeout=timeout)).split("\n", 1)
    return int(status), json.loads(body)


def test_healthz_sees_each_node_through_redis_and_503_once_they_stop(transactional_db, tmp_path):
    require_redis()
    env = node_env(unique_cluster_name(), Q_WORKERS="1")
    status, report = probe_until(env, nodes=0, timeout=0)
    assert status == 503
    assert report["checks"]["broker"] == {**report["checks"]["broker"], "ok": True, "type": "redis"}
    assert report["checks"]["cluster"]["nodes"] == []
    with qcluster_nodes(2, env, tmp_path):
        status, report = probe_until(env, nodes=2)
        assert status == 200, node_logs(tmp_path)
        assert report["status"] == "ok"
        assert len({node["cluster"] for node in report["checks"]["cluster"]["nodes"]}) == 2
        assert all(node["workers"] == 1 for node in report["checks"]["cluster"]["nodes"])
    # A stopped node's statistics expire within seconds.
    status, report = probe_until(env, nodes=0, timeout=30)
    assert status == 503
    assert report["checks"]["cluster"]["nodes"] == []
