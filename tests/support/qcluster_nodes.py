"""Real `manage.py qcluster` nodes on the test database and a Redis queue of their own.

Each test gets a cluster name of its own: django-q2 names its Redis queue and
its statistics keys after it, so parallel runs on one Redis never see each
other's tasks. Nodes are stopped by process group in a finally, and the
test's keys are deleted afterwards.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import IN_CI

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    """Skip without a Redis server, except in CI, where its absence is a failure."""
    import redis

    try:
        redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"CI needs Redis at {REDIS_URL}: {exc}")
        pytest.skip(f"needs a Redis server at {REDIS_URL}")


def test_database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test_<name>)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def node_env(cluster_name: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": cluster_name,
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "60",
    }
    env.update(extra)
    return env


def unique_cluster_name() -> str:
    return f"gp-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def run_manage(env: dict[str, str], code: str, timeout: float = 120) -> str:
    """Run Python in a separate process configured by env (e.g. to enqueue on the Redis broker)."""
    script = f"import django\ndjango.setup()\n{code}"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "gradeproject.settings"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


@contextmanager
def qcluster_nodes(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[subprocess.Popen]]:
    """Start `count` qcluster processes, each its own node (process group); stop exactly those."""
    nodes: list[subprocess.Popen] = []
    try:
        for index in range(count):
            log = open(log_dir / f"node-{index}.log", "wb")  # noqa: SIM115 - closed with the process below
            nodes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "qcluster"],
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        yield nodes
    finally:
        stop_nodes(nodes)
        _forget_cluster(env["Q_CLUSTER_NAME"])


def stop_nodes(nodes: list[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM each node's sentinel, which stops its own workers in a few seconds.

    Signalling the whole group at once instead makes the workers die under a
    sentinel still trying to stop them in order, and it hangs. Whatever of a
    node's group is left after the wait is killed.
    """
    for node in nodes:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for node in nodes:
        with suppress(subprocess.TimeoutExpired):
            node.wait(timeout=max(deadline - time.monotonic(), 0.1))
        with suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()


def _forget_cluster(cluster_name: str) -> None:
    import redis

    client = redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"django_q:{cluster_name}:*"))
    if keys:
        client.delete(*keys)


def node_logs(log_dir: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(log_dir.glob("node-*.log"))
    )


def wait_for(condition, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def hostname() -> str:
    return socket.gethostname()
