"""manage.py grade DIR: one job per document, graded here (--inline) or by a cluster (--wait)."""

import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batches.models import BatchStatus, JobBatch
from grading.models import Document, GradingResult
from tests.conftest import prebuilt
from tests.support.cluster import BASE_DIR, running_cluster

pytestmark = pytest.mark.django_db

DEMO = BASE_DIR / "batches" / "demo"


@pytest.fixture
def essays(tmp_path) -> Path:
    prebuilt("academic-essay")  # a transactional test before this one may have flushed them
    for name in ("strong_essay.txt", "weak_essay.txt", "off_topic.txt"):
        shutil.copy(DEMO / name, tmp_path / name)
    (tmp_path / "notes.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.txt").write_text("not a document")
    return tmp_path


def grade(*args: str) -> tuple[int, str]:
    """Run the command; (exit status, what it printed)."""
    out = StringIO()
    try:
        call_command("grade", *args, stdout=out)
    except CommandError as error:
        return error.returncode, f"{out.getvalue()}{error}"
    return 0, out.getvalue()


def test_inline_grading_prints_the_batch_its_counts_and_every_score_and_exits_0(superuser, essays):
    status, output = grade(str(essays), "--template", "academic-essay", "--inline", "--name", "Week 3")

    batch = JobBatch.objects.get()
    assert status == 0
    assert batch.name == "Week 3"
    assert batch.status == BatchStatus.COMPLETED
    assert batch.owner == superuser
    assert f"Batch #{batch.pk} ended completed." in output
    assert "3 jobs: 3 completed, 0 failed, 0 cancelled." in output
    for result in GradingResult.objects.select_related("job__document"):
        assert f"{result.job.document.original_name}  " in output
        assert f"{result.score:g} / {result.max_score:g}" in output
    assert "Skipped notes.png" in output
    assert ".hidden.txt" not in output


def test_a_batch_that_ends_with_failures_exits_1_and_says_why(superuser, essays):
    (essays / "blank.md").write_text("   \n")

    status, output = grade(str(essays), "--template", "academic-essay", "--inline")

    assert status == 1
    assert "ended completed with errors" in output
    assert "blank.md" in output
    assert "failed: “blank.md” contains no text to grade." in output


def test_options_set_the_batch_priority_and_settings(superuser, essays):
    status, _ = grade(
        str(essays),
        "--template",
        "business-report",
        "--priority",
        "9",
        "--concurrency",
        "3",
        "--model",
        "builtin-v1",
        "--inline",
    )

    batch = JobBatch.objects.get()
    assert status == 0
    assert batch.priority == 9
    assert batch.template.slug == "business-report"
    assert batch.validated_settings().processing.concurrency == 3


def test_without_wait_or_inline_the_batch_is_started_for_the_cluster(
    superuser, essays, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    with django_capture_on_commit_callbacks(execute=True):
        status, output = grade(str(essays), "--template", "academic-essay")

    batch = JobBatch.objects.get()
    assert status == 0
    assert batch.status == BatchStatus.PENDING
    assert f"Batch #{batch.pk}" in output
    assert OrmQ.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{dir}/missing", "--template", "academic-essay"], "is not a folder"),
        (["{dir}", "--template", "no-such"], "There is no template “no-such”; templates: academic-essay"),
        (["{dir}", "--template", "academic-essay", "--priority", "0"], "--priority must be between 1 and 10"),
        (["{dir}", "--template", "academic-essay", "--provider", "gpt"], "unknown provider 'gpt'"),
        (["{dir}", "--template", "academic-essay", "--concurrency", "0"], "processing.concurrency"),
        (["{dir}", "--template", "academic-essay", "--owner", "nobody"], "There is no user “nobody”"),
        (["{dir}", "--template", "academic-essay", "--wait"], "use --inline instead of --wait"),
    ],
)
def test_bad_input_exits_2_with_a_sentence_and_creates_nothing(superuser, essays, args, message):
    status, output = grade(*(arg.format(dir=essays) for arg in args))

    assert status == 2
    assert message in output
    assert not JobBatch.objects.exists()
    assert not Document.objects.exists()


def test_a_folder_without_documents_exits_2(superuser, tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")

    status, output = grade(str(tmp_path), "--template", "academic-essay")

    assert status == 2
    assert "has no .docx, .md, .pdf, .txt documents to grade" in output


def test_without_a_superuser_the_owner_must_be_named(owner, essays):
    status, output = grade(str(essays), "--template", "academic-essay", "--inline")
    assert status == 2
    assert "pass --owner" in output

    status, _ = grade(str(essays), "--template", "academic-essay", "--inline", "--owner", owner.username)
    assert status == 0
    assert JobBatch.objects.get().owner == owner


def test_the_command_line_exits_2_on_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "grade", str(tmp_path), "--template", "x", "--wait", "--inline"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


@pytest.mark.postgres
@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_wait_follows_a_running_cluster_to_the_end(superuser, essays):
    from health.models import Heartbeat
    from tests.support.cluster import wait_for

    with running_cluster(Q_WORKERS="1"):
        # The cluster announces itself with a heartbeat as its worker starts.
        wait_for(Heartbeat.objects.exists, timeout=60, what="the cluster's heartbeat")
        status, output = grade(str(essays), "--template", "academic-essay", "--wait")

    assert status == 0
    assert "ended completed" in output
    assert "3 jobs: 3 completed" in output
    assert GradingResult.objects.count() == 3
