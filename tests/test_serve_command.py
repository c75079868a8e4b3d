"""`manage.py serve`, the last step of `make run`: the web app and a django-q2 cluster together."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_RUNNING = re.compile(r"Q Cluster .+ running\.")
CLUSTER_STOPPED = re.compile(r"Q Cluster .+ has stopped\.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def wait_until(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.02)


@pytest.fixture
def served(tmp_path):
    """A running `serve`, once it answers and its cluster runs: its process, the processes
    it started, and the file its output (and theirs) goes to."""
    env = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path), "LOG_LEVEL": "INFO"}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*manage, "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    children: list[psutil.Process] = []
    try:
        assert wait_for(f"http://127.0.0.1:{port}/admin/login/") == 200
        wait_until(lambda: CLUSTER_RUNNING.search(log.read_text()), what="cluster running", seconds=60)
        children = psutil.Process(process.pid).children(recursive=True)
        yield process, children, log
    finally:
        print(log.read_text()[-3000:])
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # The children lead their own process groups: whatever a failed test left running goes too.
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_serve_runs_the_web_app_and_a_cluster_and_ctrl_c_stops_both(served):
    process, children, log = served

    commands = [" ".join(child.cmdline()) for child in children]
    assert any("qcluster" in command for command in commands)
    assert any("runserver" in command for command in commands)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    # The cluster stopped by itself, not killed at the 10 s after which serve kills what has not stopped.
    assert CLUSTER_STOPPED.search(log.read_text())


def signals(pid: int, *fields: str) -> int:
    """A process's signal masks from /proc (bit n-1 for signal n), e.g. "SigCgt" for the caught ones."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    masks = dict(line.split(":", 1) for line in lines if line.startswith(fields))
    mask = 0
    for field in fields:
        mask |= int(masks[field], 16)
    return mask


def test_a_second_ctrl_c_while_stopping_still_stops_both(served):
    process, children, log = served
    cluster = next(
        child for child in children if child.ppid() == process.pid and "qcluster" in " ".join(child.cmdline())
    )
    sigterm = 1 << (signal.SIGTERM - 1)
    # Once the cluster handles SIGTERM, a suspended cluster cannot act on the
    # SIGTERM serve sends it: serve's stop stays under way as long as the test needs.
    wait_until(lambda: signals(cluster.pid, "SigCgt") & sigterm, what="SIGTERM handler in the cluster")
    cluster.suspend()
    try:
        wait_until(lambda: cluster.status() == psutil.STATUS_STOPPED, what="suspended cluster")
        process.send_signal(signal.SIGINT)
        wait_until(
            lambda: signals(cluster.pid, "SigPnd", "ShdPnd") & sigterm,
            what="SIGTERM from serve to the cluster",
        )

        process.send_signal(signal.SIGINT)
        # Serve waits for the cluster: it neither dies of the second Ctrl-C nor gives up on the stop.
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)
    finally:
        cluster.resume()

    assert process.wait(timeout=40) == 0
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    assert CLUSTER_STOPPED.search(log.read_text())
