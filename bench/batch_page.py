"""The batch page at size: its time and queries for a 10,000-job batch, on SQLite and PostgreSQL.

Builds a throwaway database with one batch of 5,000 documents graded by two
models against the academic-essay rubric (10,000 jobs; results with every
criterion scored, durations, tokens and costs; a tenth reviewed, with a
criterion rescored; one in fifty failed), then times through Django's test
client, each the median of a few runs with the number of queries:

- the batch page, unfiltered and filtered ("low confidence" by spread), with
  its analytics and charts;
- the live refresh (`/batches/<id>/live`, polled every 2 s while a batch runs);
- `GET /api/batches/<id>/analytics`.

Rows are as wide as in use: each job holds the settings snapshot a start
writes, each result the provider's whole reply (about 2 kB).

"first" is a request after the batch changed (nothing computed for its state
yet: batches.memo emptied before each run), "again" the next poll or reload
of an unchanged batch. SQLite runs always, in a temporary folder; with
DATABASE_URL=postgres://user@host:5432/<any>, PostgreSQL too, in a database
created for the run and dropped after it. `--source DIR` runs the same
measurements against another checkout of the project (say, the main branch
before this benchmark's changes) for a before and after.

    .venv/bin/python bench/batch_page.py [--documents 5000] [--source /path/to/checkout]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5


def build(documents: int):
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from batches.models import BatchStatus, JobBatch
    from grading.models import Document, GradingJob, GradingResult, JobStatus
    from templates_app.models import BatchTemplate

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user("bench", password="bench-password")
    template = BatchTemplate.objects.get(slug="academic-essay")
    batch = JobBatch.objects.create_from_template(owner=owner, name="Bench page", template=template)
    rubric = batch.effective_settings()["rubric"]["criteria"]
    # What starting the batch snapshots on every job: its rows are as wide as in use.
    snapshot = batch.validated_settings().model_dump(mode="json")
    docs = Document.objects.bulk_create(
        Document(
            file=f"documents/essay-{i}.txt",
            original_name=f"essay-{i}.txt",
            size=100,
            sha256=f"{i:064x}",
            text="An essay.",
            owner=owner,
        )
        for i in range(documents)
    )
    start = timezone.now() - timedelta(days=1)
    models = [("builtin", "builtin-v1"), ("openai", "gpt-4o-mini")]
    pairs = [(doc, provider, model) for doc in docs for provider, model in models]
    failed = [random.random() < 0.02 for _ in pairs]
    jobs = GradingJob.objects.bulk_create(
        (
            GradingJob(
                name=f"{doc.original_name} · {model}",
                batch=batch,
                document=doc,
                owner=owner,
                provider=provider,
                model=model,
                status=JobStatus.FAILED if failed[index] else JobStatus.COMPLETED,
                last_error=f"The provider failed with HTTP 503: busy {index}" if failed[index] else "",
                settings=snapshot,
                attempts=1,
                duration_ms=random.randint(800, 9000),
                created_at=start + timedelta(milliseconds=index),
            )
            for index, (doc, provider, model) in enumerate(pairs)
        ),
        batch_size=1000,
    )
    GradingResult.objects.bulk_create(
        (_result(job, rubric) for job in jobs if job.status == JobStatus.COMPLETED), batch_size=1000
    )
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMPLETED, started_at=start)
    return owner, JobBatch.objects.get(pk=batch.pk)


def _result(job, rubric: list[dict]):
    from grading.models import GradingResult

    criteria = [
        {
            "key": item["key"],
            "name": item["name"],
            "score": random.randint(item["points"] // 4, item["points"]),
            "max_score": item["points"],
            "feedback": "Clear, with room to grow.",
        }
        for item in rubric
    ]
    score = sum(item["score"] for item in criteria)
    reviewed = random.random() < 0.1
    # The provider's reply is kept whole: about 2 kB, as an OpenAI completion's is.
    reply = {
        "id": f"chatcmpl-{job.pk}",
        "model": job.model,
        "choices": [{"message": {"role": "assistant", "content": json.dumps(criteria * 3)}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300},
    }
    review = [{**criteria[0], "score": max(criteria[0]["score"] - 2, 0)}] if reviewed else []
    return GradingResult(
        job=job,
        provider=job.provider,
        model=job.model,
        score=score,
        max_score=sum(item["points"] for item in rubric),
        criteria=criteria,
        feedback="A fair essay.",
        input_tokens=1200,
        output_tokens=300,
        cost=Decimal("0.0004"),
        latency_ms=job.duration_ms,
        raw_response=reply,
        reviewed_score=score - (criteria[0]["score"] - review[0]["score"]) if reviewed else None,
        reviewed_criteria=review,
    )


def measure(get, runs: int, first: bool) -> tuple[float, int]:
    """Median milliseconds of the requests, and the queries of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(runs):
        if first:
            forget()
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = get()
            times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured)
    return statistics.median(times), queries


def forget() -> None:
    try:
        from batches.memo import forget_all
    except ImportError:  # a checkout without the memo computes everything each time
        return
    forget_all()


def run(documents: int, runs: int) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    random.seed(20)
    began = time.perf_counter()
    owner, batch = build(documents)
    print(f"{connection.vendor}: built {len(batch.jobs.all())} jobs in {time.perf_counter() - began:.1f} s")
    client = Client()
    client.force_login(owner)
    pages = [
        ("batch page, unfiltered", f"/batches/{batch.pk}", {}),
        (
            "batch page, low confidence by spread",
            f"/batches/{batch.pk}?show=low_confidence&ordering=-spread",
            {},
        ),
        ("live refresh", f"/batches/{batch.pk}/live", {"HTTP_HX_REQUEST": "true"}),
        ("GET /api/batches/<id>/analytics", f"/api/batches/{batch.pk}/analytics", {}),
    ]
    for label, url, headers in pages:
        client.get(url, **headers)  # warm: templates compiled, connection open
        for state in ("first", "again"):
            took, queries = measure(lambda u=url, h=headers: client.get(u, **h), runs, first=state == "first")
            print(f"  {label:<40} {state:<5} {took:7.0f} ms  {queries:3d} queries")


def child(database_url: str, folder: str, args) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VAR_DIR": folder,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "DJANGO_SETTINGS_MODULE": "gradeproject.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(args.source),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [
        sys.executable,
        __file__,
        "--documents",
        str(args.documents),
        "--runs",
        str(args.runs),
        "--child",
    ]
    subprocess.run(command, env=environment, check=True, cwd=args.source)


def postgres(database_url: str, folder: str, args) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = f"gp_bench_page_{os.getpid()}"
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        child(urlunsplit(parts._replace(path=f"/{name}")), folder, args)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000, help="documents, each graded by two models")
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout of the project to measure")
    parser.add_argument("--runs", type=int, default=RUNS, help="requests per figure (the median is shown)")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL alone (DATABASE_URL)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        run(args.documents, args.runs)
        return
    args.source = args.source.resolve()
    print(f"measuring {args.source}, {args.runs} runs each (median)")
    folder = tempfile.mkdtemp(prefix="gp-bench-page-")
    if not args.skip_sqlite:
        child(f"sqlite:///{folder}/bench.sqlite3", folder, args)
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        postgres(database_url, folder, args)


if __name__ == "__main__":
    main()
