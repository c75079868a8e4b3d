"""`manage.py serve`, the last step of `make run`: the web app and a django-q2 cluster together."""

import contextlib
import os
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


@pytest.fixture
def served(tmp_path):
    """A running `serve`, once it answers: its process, port, and the processes it started."""
    env = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path), "DATABASE_URL": ""}
    env.pop("DATABASE_URL")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    process = subprocess.Popen(
        [*manage, "serve", "--port", str(port)], cwd=ROOT, env=env, start_new_session=True
    )
    children: list[psutil.Process] = []
    try:
        assert wait_for(f"http://127.0.0.1:{port}/admin/login/") == 200
        children = psutil.Process(process.pid).children(recursive=True)
        yield process, port, children
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # The children lead their own process groups: whatever a failed test left running goes too.
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_serve_runs_the_web_app_and_a_cluster_and_ctrl_c_stops_both(served):
    process, port, children = served

    commands = [" ".join(child.cmdline()) for child in children]
    assert any("qcluster" in command for command in commands)
    assert any("runserver" in command for command in commands)

    process.send_signal(signal.SIGINT)
    # Well before the 10 s after which serve kills what has not stopped.
    assert process.wait(timeout=8) == 0
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


def test_a_second_ctrl_c_while_stopping_still_stops_both(served):
    process, port, children = served

    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    assert process.poll() is None, "the cluster's stop takes longer than this; the test needs it"
    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=40) == 0
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
