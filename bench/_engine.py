"""What the processing benchmarks share: a PostgreSQL database, documents, a cluster, the stand-in.

Each benchmark gets its own database (created and migrated on first use, emptied before
each run), real `manage.py qcluster` processes against it, and — for provider calls — the
loopback Chat Completions stand-in as a separate process.
"""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def configure(db_name: str) -> None:
    """Point Django at the benchmark's database (before django.setup())."""
    os.environ["DATABASE_URL"] = f"{PG_SERVER}/{os.environ.get('BENCH_DB', db_name)}"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
    os.environ["LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
    # The bench process starts batches, and a start checks the provider's endpoint: a loopback
    # one needs no key. The clusters that grade get the stand-ins' addresses in their own env.
    os.environ.setdefault("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    os.environ.setdefault("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    ensure_database(os.environ["DATABASE_URL"].rsplit("/", 1)[1])

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def ensure_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def empty_database() -> None:
    """Remove every batch, job, document and queued task left by an earlier run."""
    from django.db import connection

    tables = [
        "grading_gradingresult",
        "grading_gradingjob",
        "grading_document",
        "grading_paceclock",
        "grading_liverunner",
        "grading_callslot",
        "grading_providercircuit",
        "grading_providerlimitstate",
        "batches_jobbatch",
        "django_q_ormq",
        "django_q_task",
        "django_q_schedule",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def bench_owner():
    from django.contrib.auth.models import User

    owner, _ = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    return owner


def essay(index: int) -> str:
    """A few hundred words that differ per document, so no two grades are the same work."""
    paragraphs = [
        f"Essay {index} argues that cities should replace parking with parks, because green space "
        "improves health, cools streets and brings neighbours together.",
        "First, evidence from several studies suggests that residents near parks walk more; "
        "according to one survey, activity rose by a fifth within a year of a park opening.",
        "However, critics claim that shops depend on parking. Although that concern is real, "
        "data from pedestrianised streets implies that footfall and sales usually increase.",
        "Furthermore, trees lower summer temperatures, which consequently reduces energy use "
        "and protects older people during heat waves. The significance of this grows each year.",
        f"In conclusion, the position of essay {index} is that parks are a better use of land "
        "than parked cars, and the counterargument about shops does not survive the evidence.",
    ]
    return "\n\n".join(paragraphs * (1 + index % 3))


def make_documents(owner, count: int) -> list:
    from grading.models import Document

    documents = []
    for index in range(count):
        text = essay(index)
        documents.append(
            Document(
                file=f"documents/bench-{index}.txt",
                original_name=f"essay-{index:05}.txt",
                content_type="text/plain",
                size=len(text),
                sha256=Document.digest(text.encode()),
                text=text,
                owner=owner,
            )
        )
    return Document.objects.bulk_create(documents, batch_size=1000)


def make_batch(owner, documents: list, name: str, settings: dict | None = None):
    from batches.models import JobBatch
    from templates_app.models import BatchTemplate
    from templates_app.prebuilt import install

    install(BatchTemplate)
    batch = JobBatch.objects.create_from_template(
        owner=owner,
        name=name,
        template=BatchTemplate.objects.get(slug="academic-essay"),
        settings=settings or {},
    )
    batch.add_documents(documents)
    return batch


def wait_until_finished(batch, timeout: float) -> None:
    from batches.models import BatchStatus

    deadline = time.monotonic() + timeout
    while True:
        batch.refresh_from_db()
        if batch.status in BatchStatus.finished():
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"Batch {batch.pk} did not finish within {timeout:g} s: {batch.progress()}")
        time.sleep(0.05)


def wait_until_queue_empty(timeout: float) -> None:
    from django_q.models import OrmQ

    deadline = time.monotonic() + timeout
    while OrmQ.objects.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"django-q2's queue did not drain within {timeout:g} s.")
        time.sleep(0.02)


@contextmanager
def standin_process(*args: str, module: str = "tests.support.llm_standin"):
    """A loopback stand-in (Chat Completions, or `module`'s) as its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("The stand-in did not start.")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def standin_stats(url: str) -> dict:
    import json
    from urllib.request import urlopen

    with urlopen(url.removesuffix("/v1").rstrip("/") + "/stats") as response:
        return json.load(response)


def reset_standin(url: str) -> None:
    from urllib.request import Request, urlopen

    urlopen(Request(url.removesuffix("/v1").rstrip("/") + "/reset", data=b"{}", method="POST")).close()
