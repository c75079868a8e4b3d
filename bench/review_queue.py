"""The review queue at size: filters, sorts and previous/next over a 10,000-job comparison batch.

Builds a throwaway SQLite database (migrated afresh in a temporary folder) with
one batch of 5,000 documents graded by two models (10,000 jobs and results,
a tenth reviewed, one in fifty failed), then times, each the median of 15 runs:
reading the batch's queue entries (the one query and the spread), each filter
and sort, a job's previous and next, and the pages a reviewer opens (the batch
page filtered, a job page in the filter, the comparison matrix) through
Django's test client.

    .venv/bin/python bench/review_queue.py [--documents 5000]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FOLDER = tempfile.mkdtemp(prefix="gp-bench-queue-")
os.environ["DATABASE_URL"] = f"sqlite:///{FOLDER}/bench.sqlite3"
os.environ["VAR_DIR"] = FOLDER
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
RUNS = 15
PAGE_RUNS = 5  # the batch page draws the analytics too, seconds each on SQLite at this size


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
    batch = JobBatch.objects.create_from_template(owner=owner, name="Bench queue", template=template)
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
    jobs = GradingJob.objects.bulk_create(
        GradingJob(
            name=f"{doc.original_name} · {model}",
            batch=batch,
            document=doc,
            owner=owner,
            provider=provider,
            model=model,
            status=JobStatus.FAILED if random.random() < 0.02 else JobStatus.COMPLETED,
            created_at=start + timedelta(milliseconds=index),
        )
        for index, (doc, (provider, model)) in enumerate((d, m) for d in docs for m in models)
    )
    GradingResult.objects.bulk_create(
        GradingResult(
            job=job,
            provider=job.provider,
            model=job.model,
            score=(score := random.randint(20, 100)),
            max_score=100,
            criteria=[{"key": "content", "name": "Content", "score": score, "max_score": 100}],
            reviewed_score=score if random.random() < 0.1 else None,
        )
        for job in jobs
        if job.status == JobStatus.COMPLETED
    )
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMPLETED, started_at=start)
    return owner, JobBatch.objects.get(pk=batch.pk)


def median_ms(action, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    args = parser.parse_args()
    import django

    django.setup()
    from django.test import Client

    from batches.memo import forget_all
    from batches.review_queue import QueueQuery, comparison, entries_for, neighbours, select

    random.seed(20)
    began = time.perf_counter()
    owner, batch = build(args.documents)
    print(f"built {args.documents * 2} jobs in {time.perf_counter() - began:.1f} s ({FOLDER})")
    entries = entries_for(batch)
    middle = entries[len(entries) // 2].job_id
    # Computed afresh each time (nothing kept from the last run): what a changed batch costs.
    afresh = median_ms(lambda: (forget_all(), entries_for(batch)))
    print(f"entries_for (one query, spread, reasons): {afresh:.0f} ms")
    print(f"entries_for, the batch unchanged since: {median_ms(lambda: entries_for(batch)):.0f} ms")
    for show, ordering in [
        ((), ""),
        (("not_reviewed",), ""),
        (("low_confidence",), "-spread"),
        ((), "score"),
    ]:
        query = QueueQuery(show, ordering)
        found = len(select(entries, query))
        took = median_ms(lambda q=query: select(entries, q))
        print(f"select {query.describe()!r} {ordering or 'upload order'}: {found} jobs, {took:.1f} ms")
    query = QueueQuery(("not_reviewed",), "-score")
    print(
        f"neighbours in 'not reviewed' by score: {median_ms(lambda: neighbours(entries, query, middle)):.1f} ms"
    )
    matrix = median_ms(lambda: (forget_all(), comparison(batch, "-spread")))
    print(f"comparison matrix, by spread: {matrix:.0f} ms")
    client = Client()
    client.force_login(owner)
    for label, url in [
        ("batch page, unfiltered", f"/batches/{batch.pk}"),
        ("batch page, low confidence by spread", f"/batches/{batch.pk}?show=low_confidence&ordering=-spread"),
        (
            "job page in 'not reviewed'",
            f"/batches/{batch.pk}/jobs/{middle}?show=not_reviewed&ordering=-score",
        ),
        ("comparison matrix page", f"/batches/{batch.pk}/compare?ordering=-spread"),
    ]:
        assert client.get(url).status_code == 200, url
        print(f"GET {label}: {median_ms(lambda u=url: client.get(u), PAGE_RUNS):.0f} ms")


if __name__ == "__main__":
    main()
