"""A submitter that dies between the upload and the create does not submit a provider batch twice.

The submission is recorded before anything is sent; a reconcile finds what reached the
provider (by the marker sent as the batch's metadata, or the uploaded file it recorded)
and finishes it, or sends it when nothing arrived. The first tests interrupt the submit
step in this process; the last ones SIGKILL a real process running it, or running the poller
in the middle of a download.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchStatus
from grading import economy_engine
from grading.economy_engine import TickReport, reconcile, take_abandoned
from grading.models import GradingResult, ProviderBatch
from grading.providers import get_provider
from tests.support.cluster import BASE_DIR, wait_for
from tests.support.economy import economy_batch, run_until_settled


@pytest.fixture
def batch_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    return standin


class Died(BaseException):
    """The submitter's process ending where it stands (nothing catches it)."""


def abandon(submission: ProviderBatch) -> None:
    """Let the submission's lease run out, as when its submitter died."""
    ProviderBatch.objects.filter(pk=submission.pk).update(
        preparing_until=timezone.now() - timedelta(seconds=1)
    )


def interrupted_submission(monkeypatch, where: str) -> ProviderBatch:
    """Run the submit step until `where` ("after_upload" or "after_create"), then stop it dead."""
    provider = type(get_provider("openai"))
    if where == "after_upload":

        def create(self, input_file_id, marker):
            raise Died()

        monkeypatch.setattr(provider, "create_batch_from_file", create)
    else:
        monkeypatch.setattr(economy_engine, "_submitted", lambda *args: (_ for _ in ()).throw(Died()))
    with pytest.raises(Died):
        economy_engine.submit_due(TickReport())
    monkeypatch.undo()
    return ProviderBatch.objects.get()


@pytest.mark.django_db
def test_a_batch_uploaded_but_never_created_is_created_from_its_file(owner, batch_api, monkeypatch):
    batch = economy_batch(owner, jobs=3)
    submission = interrupted_submission(monkeypatch, "after_upload")
    assert submission.status == "preparing" and submission.input_file_id and not submission.external_id

    reconcile(TickReport())  # the lease has not run out: the submitter may still be at work
    assert ProviderBatch.objects.get().status == "preparing"
    abandon(submission)
    report = TickReport()
    reconcile(report)

    assert report.reconciled == 1
    assert ProviderBatch.objects.get().status == "submitted"
    run_until_settled()
    stats = batch_api.stats()
    assert (stats["files_uploaded"], stats["batches_created"]) == (1, 1)
    assert GradingResult.objects.filter(job__batch=batch).count() == 3
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


@pytest.mark.django_db
def test_a_batch_created_but_never_recorded_is_found_by_its_marker(owner, batch_api, monkeypatch):
    batch = economy_batch(owner, jobs=3)
    submission = interrupted_submission(monkeypatch, "after_create")
    assert submission.status == "preparing"
    assert batch_api.stats()["batches_created"] == 1

    abandon(submission)
    run_until_settled()

    stats = batch_api.stats()
    assert (stats["files_uploaded"], stats["batches_created"]) == (1, 1)
    assert ProviderBatch.objects.get().external_id
    assert GradingResult.objects.filter(job__batch=batch).count() == 3


@pytest.mark.django_db
def test_of_two_reconcilers_only_one_takes_an_abandoned_submission(owner, batch_api, monkeypatch):
    economy_batch(owner, jobs=2)
    abandon(interrupted_submission(monkeypatch, "after_upload"))
    seen_by_both = ProviderBatch.objects.get()

    assert take_abandoned(seen_by_both, timezone.now()) is True
    assert take_abandoned(seen_by_both, timezone.now()) is False
    reconcile(TickReport())  # its lease is the first reconciler's now

    assert ProviderBatch.objects.get().status == "preparing"
    assert batch_api.stats()["batches_created"] == 0


# --- a real process, killed ------------------------------------------------------------------
#
# The steps run in processes of their own (tests/support/economy_process.py) on a database
# file they share, so any backend runs these; the test process holds only the stand-in.


class Processes:
    """The economy engine's steps as processes on one SQLite file, against the stand-in."""

    def __init__(self, standin, database: str):
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{database}",
            "DJANGO_SETTINGS_MODULE": "gradeproject.settings",
            "OPENAI_BASE_URL": standin.url,
            "OPENAI_API_KEY": "",
            "OPENAI_BATCH_API": "1",
            "LOG_LEVEL": "WARNING",
        }

    def run(self, *step: str) -> str:
        finished = subprocess.run(
            [sys.executable, "-m", "tests.support.economy_process", *step],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert finished.returncode == 0, finished.stderr[-3000:]
        return finished.stdout

    def start(self, step: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.economy_process", step],
            cwd=BASE_DIR,
            env=self.env,
            start_new_session=True,
        )

    def start_cluster(self) -> subprocess.Popen:
        """A real qcluster (one worker) on the same database, its ORM broker in it."""
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env={**self.env, "Q_WORKERS": "1", "Q_POLL": "0.05"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def settle(self) -> dict:
        return json.loads(self.run("settle").strip().splitlines()[-1])


def kill_when(process: subprocess.Popen, arrived) -> None:
    """SIGKILL the process once the stand-in holds its request (the process waits for the reply)."""
    try:
        wait_for(arrived, timeout=60, what="the held request")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def processes(standin, tmp_path):
    steps = Processes(standin, str(tmp_path / "economy.sqlite3"))
    steps.run("setup", "4")
    return steps


@pytest.mark.parametrize("step", ["upload", "create"])
def test_a_submitter_killed_during_the_upload_or_the_create_submits_the_batch_once(standin, processes, step):
    api = standin.batch_api
    api.hold(step)
    kill_when(processes.start("submit"), lambda: api.arrived[step] == 1)
    # The provider goes on with what it received although the client is gone.
    api.release(step)
    done = {"upload": "files_uploaded", "create": "batches_created"}[step]
    wait_for(lambda: standin.stats()[done] == 1, timeout=30, what=f"the held {step} to finish")

    counts = processes.settle()

    assert standin.stats()["batches_created"] == 1
    assert counts["completed"] == counts["results"] == counts["jobs_with_a_result"] == counts["jobs"] == 4
    assert counts["provider_batches"] == ["ended"]


def test_a_poller_killed_mid_download_leaves_each_result_to_be_recorded_once(standin, processes):
    api = standin.batch_api
    processes.run("submit")
    wait_for(lambda: all(api.book.ended(batch) for batch in api.book.batches.values()), timeout=30)
    api.hold("content")
    kill_when(processes.start("poll"), lambda: api.arrived["content"] >= 1)
    api.release("content")

    counts = processes.settle()

    assert standin.stats()["batches_created"] == 1
    assert counts["completed"] == counts["results"] == counts["jobs_with_a_result"] == 4


@pytest.mark.cluster
@pytest.mark.parametrize("step", ["create", "content"])
def test_a_cluster_killed_between_upload_and_create_or_mid_download_grades_each_job_once(
    standin, processes, step
):
    api = standin.batch_api
    if step == "content":
        processes.run("submit")
        wait_for(lambda: all(api.book.ended(batch) for batch in api.book.batches.values()), timeout=30)
    api.hold(step)
    cluster = processes.start_cluster()
    processes.run("enqueue")
    kill_when(cluster, lambda: api.arrived[step] >= 1)
    api.release(step)
    if step == "create":
        wait_for(
            lambda: standin.stats()["batches_created"] == 1, timeout=30, what="the held create to finish"
        )

    counts = processes.settle()

    assert standin.stats()["batches_created"] == 1
    assert counts["completed"] == counts["results"] == counts["jobs_with_a_result"] == 4
