"""Start a real `manage.py qcluster` against the database the caller is using, and stop it.

Each cluster leads its own process group (start_new_session), so stopping or killing
it reaches the sentinel and every worker it forked — and nothing else.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connections

from core.processes import stop_process_groups

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url(alias: str = "default") -> str:
    """DATABASE_URL for the database Django is connected to now (the test database in tests)."""
    db = settings.DATABASES[alias]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("A cluster beside the tests needs PostgreSQL.")
    credentials = quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Cluster:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self, last: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-last:]

    def kill(self) -> None:
        """SIGKILL the whole cluster at once: no worker gets to finish or clean up."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        # Workers outlive a killed main process; whatever is left of the group goes too.
        stop_process_groups([self.process], timeout=15)


@contextmanager
def running_cluster(**env: str) -> Iterator[Cluster]:
    """A qcluster on the current database; extra environment variables as keyword arguments."""
    # The cluster must see committed rows and take its own connections.
    connections.close_all()
    child_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "WARNING",
        "Q_POLL": "0.05",
        **{key: str(value) for key, value in env.items()},
    }
    with tempfile.NamedTemporaryFile("w+b", prefix="qcluster-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    cluster = Cluster(process, Path(log.name))
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.log_path.unlink(missing_ok=True)


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.05, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Gave up after {timeout:g} s waiting for {what or condition.__name__}.")
        time.sleep(every)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
