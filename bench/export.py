"""Export and analytics at size: a 10,000-job batch beside a 1,000-job one.

Builds (once, then reuses) a PostgreSQL database `gp_bench_export` holding two
batches of graded jobs (1,000 and 10,000), each job with its own document and
a realistic result: five criteria with feedback, a raw provider response, a
tenth of them reviewed, one in twenty failed.

Each export is measured in a fresh child process, so one measurement's freed
memory cannot flatter the next. The child first exports a 10-job batch to
load every module, then requests GET /api/batches/{id}/export through
Django's WSGI handler and reads the streamed ZIP, sampling its own RSS with
psutil every 2 ms. It reports time to first byte, total time, bytes sent and
peak RSS growth over the baseline taken just before the request.

Feedback sheets: it renders sheets one after another in a fresh process, in
Helvetica (names Windows-1252 can encode) and in DejaVu Sans (Polish names),
with each font parsed once per process (as the export does) and, for
comparison, parsed afresh for every sheet (fpdf2's add_font, as before); then
it exports each batch with its sheets and without (?feedback=0), and a
1,000-job batch whose documents have Polish names (so every sheet embeds
DejaVu) both ways.

Then it times GET /api/batches/{id}/analytics on the 10,000-job batch.

    python bench/export.py            # build if needed, measure
    python bench/export.py --rebuild  # drop and rebuild the data

Targets: RSS growth under 50 MB at 10,000 jobs; total time growing no faster
than linearly (10x the jobs, at most about 10x the time); analytics under
200 ms median.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_DB", "gp_bench_export")
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
os.environ["DATABASE_URL"] = f"{PG_SERVER}/{DB_NAME}"
os.environ["DEBUG"] = "0"  # with DEBUG on, Django keeps every query in memory
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

SIZES = (10, 1_000, 10_000)
UNICODE_SIZE = 1_000  # a batch whose file names need the embedded font
SHEETS = 40  # sheets rendered per font and way, after one to warm up
ANALYTICS_RUNS = 30
BATCH_PREFIX = "Bench export"
FEEDBACK = (
    "The essay states a clear position in its opening paragraph and returns to it in the conclusion; "
    "some body paragraphs drift into description."
)


def setup_django() -> None:
    import django

    django.setup()


def ensure_database(rebuild: bool) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def build(size: int, owner, unicode_names: bool = False) -> int:
    """A processing-finished batch of `size` graded jobs; returns its id.

    Its documents have no student, so the export makes a feedback sheet per
    graded document, titled with the file name: with `unicode_names` a Polish
    one, which only the embedded font can set.
    """
    import random
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from batches.models import BatchStatus, JobBatch
    from grading.models import Document, GradingJob, GradingResult, JobStatus
    from templates_app.models import BatchTemplate

    name = f"{BATCH_PREFIX} {size}" + (" unicode" if unicode_names else "")
    existing = JobBatch.objects.filter(name=name).first()
    if existing is not None:
        return existing.pk
    rng = random.Random(size)
    template = BatchTemplate.objects.get(slug="academic-essay")
    criteria = template.default_settings["rubric"]["criteria"]
    batch = JobBatch.objects.create_from_template(owner=owner, name=name, template=template)
    start = timezone.now() - timedelta(hours=2)
    text = "Parks instead of parking: cities should reclaim land for people. " * 90
    documents = Document.objects.bulk_create(
        [
            Document(
                file=f"documents/bench/essay-{size}-{index}.txt",
                original_name=f"{'żółć-łukasz' if unicode_names else 'student'}-{index:05d}.txt",
                size=len(text),
                sha256=f"{index + (10**6 if unicode_names else 0):064x}",
                text=text,
                owner=owner,
            )
            for index in range(size)
        ],
        batch_size=1000,
    )
    jobs = GradingJob.objects.bulk_create(
        [
            GradingJob(
                name=f"{name} – {document.original_name}",
                batch=batch,
                document=document,
                owner=owner,
                provider="openai",
                model="gpt-4o-mini",
                status=JobStatus.FAILED if index % 20 == 0 else JobStatus.COMPLETED,
                last_error="The provider failed with HTTP 503: overloaded." if index % 20 == 0 else "",
                attempts=1,
                started_at=start,
                completed_at=start + timedelta(seconds=index * 0.5),
                duration_ms=rng.randint(800, 9000),
            )
            for index, document in enumerate(documents)
        ],
        batch_size=1000,
    )
    results = []
    for index, job in enumerate(jobs):
        if job.status != JobStatus.COMPLETED:
            continue
        graded = [
            {
                "key": item["key"],
                "name": item["name"],
                "score": float(rng.randint(int(item["points"] * 0.4), int(item["points"]))),
                "max_score": float(item["points"]),
                "feedback": FEEDBACK,
            }
            for item in criteria
        ]
        reviewed = index % 10 == 0
        results.append(
            GradingResult(
                job=job,
                provider="openai",
                model="gpt-4o-mini",
                score=sum(item["score"] for item in graded),
                max_score=sum(item["max_score"] for item in graded),
                criteria=graded,
                feedback=FEEDBACK * 2,
                input_tokens=1800,
                output_tokens=420,
                cost=Decimal("0.000522"),
                latency_ms=job.duration_ms,
                raw_response={"id": f"chatcmpl-{index}", "choices": [{"message": {"content": FEEDBACK * 6}}]},
                reviewed_score=min(sum(item["score"] for item in graded) + 3, 100) if reviewed else None,
                reviewed_criteria=[{"key": criteria[0]["key"], "score": 10.0}] if reviewed else [],
                review_comment="Checked." if reviewed else "",
                reviewer=owner if reviewed else None,
                reviewed_at=timezone.now() if reviewed else None,
            )
        )
    GradingResult.objects.bulk_create(results, batch_size=1000)
    JobBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.COMPLETED_WITH_ERRORS, started_at=start, completed_at=start + timedelta(hours=1)
    )
    return batch.pk


def prepare(rebuild: bool) -> dict[int, int]:
    ensure_database(rebuild)
    setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    owner, _ = User.objects.get_or_create(username="bench-owner", defaults={"is_superuser": True})
    ids = {}
    for size in SIZES:
        started = time.perf_counter()
        ids[size] = build(size, owner)
        print(
            f"batch of {size:>6,} jobs ready (#{ids[size]}) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    ids["unicode"] = build(UNICODE_SIZE, owner, unicode_names=True)
    # Fresh statistics, as autovacuum would have gathered after a real batch ran.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids


# --- the child: one export, measured in its own process ------------------------------


class PeakRss:
    """Samples this process's resident set every 2 ms on a background thread."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def export_once(client, batch_id: int, query: str = "") -> dict:
    started = time.perf_counter()
    response = client.get(f"/api/batches/{batch_id}/export{query}")
    assert response.status_code == 200, response.status_code
    first_byte = None
    sent = 0
    for chunk in response.streaming_content:
        if first_byte is None:
            first_byte = time.perf_counter() - started
        sent += len(chunk)
    response.close()
    return {"ttfb_s": first_byte, "total_s": time.perf_counter() - started, "bytes": sent}


def parse_fonts_per_sheet() -> None:
    """Make feedback sheets the way they were made before: every PDF parses its font file afresh."""
    from batches import feedback

    feedback._add_parsed_font = lambda pdf, family, style, path: pdf.add_font(family, style, str(path))


def child(batch_id: int, warmup_id: int, query: str = "", fresh_fonts: bool = False) -> None:
    import gc

    setup_django()
    if fresh_fonts:
        parse_fonts_per_sheet()
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench-owner"))
    export_once(client, warmup_id, query)  # load modules, open the connection
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    gc.collect()
    process, server = time.process_time(), backend_cpu_seconds(backend)
    with PeakRss() as rss:
        figures = export_once(client, batch_id, query)
    figures["cpu_s"] = (time.process_time() - process) + (backend_cpu_seconds(backend) - server)
    figures["rss_growth_mb"] = (rss.peak - rss.baseline) / 2**20
    print(json.dumps(figures))


def measure_export(batch_id: int, warmup_id: int, query: str = "", fresh_fonts: bool = False) -> dict:
    flags = [f"--query={query}"] + (["--fresh-fonts"] if fresh_fonts else [])
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(batch_id), str(warmup_id), *flags],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def sample_sheet(name: str):
    """A sheet like the benchmark batch's: one document, five criteria with feedback and evidence."""
    from batches.feedback import CriterionFeedback, DocumentFeedback, FeedbackSheet

    criteria = [
        CriterionFeedback(
            f"Criterion {index}", 4, 6, "Good", FEEDBACK, [("cities should reclaim land", True)]
        )
        for index in range(5)
    ]
    document = DocumentFeedback(f"{name}.txt", 20, 30, True, criteria, [FEEDBACK * 2], ["Checked."])
    return FeedbackSheet(name, "Bench export", "", [document])


def sheets_child(fresh_fonts: bool) -> None:
    """Per-sheet times in Helvetica and in DejaVu, in this fresh process: the first sheet, then the median."""
    setup_django()
    if fresh_fonts:
        parse_fonts_per_sheet()
    from batches.feedback import render_pdf

    figures = {}
    for font, name in (("helvetica", "Ada Lovelace"), ("dejavu", "Łukasz Żółć")):
        started = time.perf_counter()
        render_pdf(sample_sheet(name))
        first = time.perf_counter() - started
        times = []
        for index in range(SHEETS):
            started = time.perf_counter()
            render_pdf(sample_sheet(f"{name} {index}"))
            times.append(time.perf_counter() - started)
        figures[font] = {"first_ms": first * 1000, "median_ms": statistics.median(times) * 1000}
    print(json.dumps(figures))


def measure_sheets(fresh_fonts: bool) -> dict:
    flags = ["--sheets"] + (["--fresh-fonts"] if fresh_fonts else [])
    output = subprocess.run(
        [sys.executable, __file__, *flags], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_analytics(batch_id: int) -> dict:
    """Median wall time of the endpoint, and the CPU it costs on both sides of the connection.

    On a machine shared with other work the wall time mostly measures waiting
    for a core; CPU time (this process, plus the PostgreSQL backend serving
    it, read from /proc) is what the request costs, and is the latency it has
    on an idle core. Parallel query is turned off for the CPU runs so that no
    work escapes into parallel workers uncounted.
    """
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench-owner"))
    url = f"/api/batches/{batch_id}/analytics"
    client.get(url)  # warm the connection and caches
    walls = []
    for _ in range(ANALYTICS_RUNS):
        started = time.perf_counter()
        response = client.get(url)
        walls.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu = []
    for _ in range(ANALYTICS_RUNS):
        process, server = time.process_time(), backend_cpu_seconds(backend)
        client.get(url)
        cpu.append(((time.process_time() - process) + (backend_cpu_seconds(backend) - server)) * 1000)
    return {"median": statistics.median(walls), "worst": max(walls), "cpu": statistics.median(cpu)}


def backend_cpu_seconds(pid: int) -> float:
    """User + system CPU of a local process, from /proc/<pid>/stat (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the benchmark database")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--query", default="", help=argparse.SUPPRESS)
    parser.add_argument("--fresh-fonts", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sheets", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, query=args.query, fresh_fonts=args.fresh_fonts)
        return
    if args.sheets:
        sheets_child(args.fresh_fonts)
        return
    print(f"feedback sheets, {SHEETS} in a row in a fresh process (first sheet, then the median):")
    for fresh, label in (
        (True, "font parsed for every sheet (before)"),
        (False, "font parsed once per process"),
    ):
        sheets = measure_sheets(fresh)
        print(
            f"  {label:<38}  Helvetica {sheets['helvetica']['first_ms']:6.1f} ms, then "
            f"{sheets['helvetica']['median_ms']:5.1f} ms   DejaVu {sheets['dejavu']['first_ms']:6.1f} ms, "
            f"then {sheets['dejavu']['median_ms']:5.1f} ms"
        )
    ids = prepare(args.rebuild)
    warmup = ids[10]
    print(f"\nexport over HTTP (Django WSGI handler, PostgreSQL {DB_NAME}), one fresh process each:")
    results = {}
    for size in SIZES[1:]:
        figures = results[size] = measure_export(ids[size], warmup)
        without = measure_export(ids[size], warmup, "?feedback=0")
        print(
            f"  {size:>6,} jobs: first byte {figures['ttfb_s'] * 1000:7.1f} ms   "
            f"total {figures['total_s']:6.2f} s   {figures['bytes'] / 2**20:6.1f} MB sent   "
            f"peak RSS growth {figures['rss_growth_mb']:5.1f} MB   CPU {figures['cpu_s']:5.2f} s"
        )
        print(
            f"  {'':>6}  without sheets (?feedback=0): total {without['total_s']:6.2f} s   "
            f"{without['bytes'] / 2**20:6.1f} MB sent   CPU {without['cpu_s']:5.2f} s"
        )
    label = f"{UNICODE_SIZE:,} jobs, Polish file names (every sheet in DejaVu)"
    for fresh, way in (
        (True, "font parsed for every sheet (before)"),
        (False, "font parsed once per process"),
    ):
        figures = measure_export(ids["unicode"], warmup, fresh_fonts=fresh)
        print(f"  {label}, {way}: total {figures['total_s']:6.2f} s   CPU {figures['cpu_s']:5.2f} s")
    without = measure_export(ids["unicode"], warmup, "?feedback=0")
    print(f"  {label}, without sheets: total {without['total_s']:6.2f} s   CPU {without['cpu_s']:5.2f} s")
    small, large = results[SIZES[1]], results[SIZES[2]]
    growth = large["total_s"] / small["total_s"]
    cpu_growth = large["cpu_s"] / small["cpu_s"]
    print(f"  10x the jobs took {growth:.1f}x the time and {cpu_growth:.1f}x the CPU (linear: 10x)")
    analytics = measure_analytics(ids[SIZES[2]])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\nanalytics of the {SIZES[2]:,}-job batch over {ANALYTICS_RUNS} runs: median {analytics['median']:.1f} ms, "
        f"worst {analytics['worst']:.1f} ms; CPU per request (client + PostgreSQL backend) {analytics['cpu']:.0f} ms"
    )
    print(f"load average while measuring: {load} on {os.cpu_count()} cores")
    ok_rss = large["rss_growth_mb"] < 50
    # Ten times the work, with a little room for noise; CPU is the steadier
    # figure where other processes compete for the cores.
    ok_linear = min(growth, cpu_growth) <= 12
    ok_analytics = analytics["median"] < 200
    print(
        f"\ntargets: RSS growth < 50 MB {'met' if ok_rss else 'MISSED'}; "
        f"time no worse than linear {'met' if ok_linear else 'MISSED'}; "
        f"analytics < 200 ms {'met' if ok_analytics else 'MISSED'}"
        + ("" if ok_analytics else f" (CPU per request {analytics['cpu']:.0f} ms)")
    )


if __name__ == "__main__":
    main()
