"""What a cluster's worker process does besides running tasks: its standing runner.

Connected when the app is ready (batches/apps.py), and acting in the worker process
that django-q2 has just spawned (its post_spawn signal is sent there).
"""

import logging
import threading
import time

from django.db import close_old_connections, connections
from django.dispatch import receiver
from django_q.conf import Conf
from django_q.signals import post_spawn
from django_q.tasks import async_task

from batches import tasks
from batches.tasks import announce_progress, update_batch_progress
from grading import wakeups
from grading.claims import forget_dead_neighbours, work_waiting
from grading.runner import Runner, record_leftovers

logger = logging.getLogger(__name__)


@receiver(post_spawn, dispatch_uid="batches.worker_started")
def recover_when_a_worker_starts(sender, proc_name: str, **kwargs) -> None:
    """A worker starts its standing runner; a restarted cluster picks up interrupted work at once.

    django-q2 runs its scheduler only every 30 seconds and redelivers a killed
    worker's task only after Q_RETRY; the standing runner and this reaper run make
    recovery independent of both (and of ensure_schedules). In sync mode every
    task "spawns" a worker inline, so there is nothing to do.
    """
    if Conf.SYNC:
        return
    start_standing_runner()
    async_task("batches.tasks.recover_stalled_jobs", after_restart=True, task_name="recover_stalled_jobs")
    # A fresh cluster proves it is alive at once, not at the first scheduler tick
    # half a minute later: /healthz and `grade --wait` read this heartbeat.
    async_task("health.tasks.heartbeat", task_name="heartbeat")


# Every worker process of every live node runs one, from the moment it spawns: a
# thread that looks for active work every STANDING_POLL_S (and is woken at once
# by a started batch, through its task or PostgreSQL's notification) and then runs
# a job runner until no work is left. So a node started in the middle of a batch
# takes its share within a second, whichever node the batch's tasks went to, and a
# crashed node's jobs are taken over by the others without any schedule.

STANDING_POLL_S = 0.5
_standing: "StandingRunner | None" = None


class StandingRunner:
    def __init__(self) -> None:
        self._wake = threading.Event()
        self._peers = 0
        # Not a daemon: when the worker process ends (a recycle, a stop), the runner
        # finishes its calls in flight and records them rather than dying with them.
        self._thread = threading.Thread(target=self._serve, name="standing-runner", daemon=False)

    def start(self) -> None:
        self._thread.start()

    def wake(self, peers: int = 0) -> None:
        self._peers = max(self._peers, peers)
        self._wake.set()

    def _serve(self) -> None:
        main = threading.main_thread()
        stopping = lambda: not main.is_alive()  # noqa: E731
        # A runner that failed on the database leaves the outcomes it could not record.
        leftover: Runner | None = None
        try:
            # After a crash or a restart: this host's dead runners are known dead now.
            if forget_dead_neighbours():
                self._wake.set()
        except Exception:
            logger.exception("Could not look for this host's dead runners.")
        while not stopping():
            woken = self._wake.wait(STANDING_POLL_S)
            self._wake.clear()
            if stopping():
                break
            try:
                if leftover is not None:
                    recorded = record_leftovers(leftover.unrecorded, leftover.claimant)
                    leftover = None
                    for batch_id in sorted(recorded.touched_batches):
                        update_batch_progress(batch_id)
                if woken or work_waiting():
                    peers, self._peers = self._peers, 0
                    runner = Runner(
                        on_batch_touched=update_batch_progress,
                        on_progress=announce_progress,
                        peers_expected=peers,
                        should_stop=stopping,
                    )
                    try:
                        runner.run()
                    finally:
                        if runner.unrecorded:
                            leftover = runner
            except Exception:
                # The database went away, most likely: look again in a moment.
                logger.exception("The standing runner failed; it starts again in a second.")
                for connection in connections.all(initialized_only=True):
                    try:
                        connection.close_if_unusable_or_obsolete()
                    except Exception:
                        connection.close()
                time.sleep(1.0)
            finally:
                close_old_connections()
        connections.close_all()


def start_standing_runner() -> bool:
    """Start this worker process's standing runner (once); False when it already runs."""
    global _standing
    if _standing is not None:
        return False
    _standing = StandingRunner()
    _standing.start()
    # process_batch, run by this worker, wakes it rather than running a runner of its own.
    tasks._wake_standing_runner = _standing.wake
    wakeups.listen(_standing.wake)
    return True
