"""Stopping child processes that each lead their own process group."""

import contextlib
import os
import signal
import subprocess
import time


def stop_process_groups(processes: list[subprocess.Popen], timeout: float) -> None:
    """Stop each process and everything it started, within `timeout` seconds.

    SIGTERM goes to each leading process only: qcluster then stops its own workers
    promptly, while a SIGTERM to every process of its group at once left
    it hanging (README, Deployment). A leader still running at the
    deadline is killed, and whatever is left in its group (a runserver's reloaded
    server, a worker) is killed after it.
    """
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
