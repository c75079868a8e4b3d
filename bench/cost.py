"""What economy delivery and prompt caching save: the same 1,000-essay batch graded three ways.

1. real time: every job one Chat Completions call, the prompt cache off;
2. economy: the jobs submitted through OpenAI's Batch API (files, batches, output file);
3. economy + caching: the same, with the stand-in caching the shared prompt prefix as
   OpenAI does (1,024 tokens or more, reported as prompt_tokens_details.cached_tokens).

Everything runs in this process against the Chat Completions stand-in (a real HTTP
server on loopback, with its batch endpoints on a time scale where a provider hour is
a few milliseconds) and a fresh SQLite database in a temporary directory: the
engine's runner grades the real-time batch, the economy engine's rounds
(batches.tasks.run_economy) the others. The costs are what the engine recorded for
each result, priced with the provider's table (gpt-4o-mini: $0.15 input, $0.075 cached
input, $0.60 output per million tokens; batch requests at half price).

    .venv/bin/python bench/cost.py             # 1,000 essays each way
    .venv/bin/python bench/cost.py --jobs 200

Checks: economy costs at most 0.50 of real time, economy + caching less again, and every
job is graded exactly once each way (one result per job; one request per job at the provider).
"""

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WORK_DIR = tempfile.mkdtemp(prefix="gp-bench-cost-")
atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)
os.environ["DATABASE_URL"] = f"sqlite:///{WORK_DIR}/cost.sqlite3"
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["OPENAI_API_KEY"] = ""
os.environ["MODEL_PRICES"] = "{}"

MODEL = "gpt-4o-mini"
# What a teacher writes for an assignment: with the brief and the rubric, the shared prefix
# is past the 1,024 tokens from which OpenAI caches it.
INSTRUCTIONS = (
    "This is the Year 11 persuasive essay on land use in cities. Students had two weeks and a planning "
    "lesson. Reward a clear, arguable position stated early and held to the end; evidence that is specific "
    "(figures, named studies, local examples) over general claims; and a counterargument that is stated "
    "fairly before it is answered. Do not reward length for its own sake: a tight 600-word essay can earn "
    "full marks. Spelling and grammar count only under the conventions criterion, and only where errors "
    "get in the way of the meaning. Students with a learning plan may have used a spell checker; that is "
    "allowed. Quote the student's own words in feedback so they can find the passage, and end with the one "
    "change that would lift the grade most. "
) * 4


def main() -> None:
    options = parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.support.llm_standin import LLMStandin

    call_command("migrate", verbosity=0)
    owner = bench_owner()
    print(f"{options.jobs} essays, model {MODEL}, a fresh SQLite database (removed at the end)")
    rows = []
    with LLMStandin(cache_min_tokens=10**9, batch_hour_s=0.002, batch_hours=2) as standin:
        settings.OPENAI_BASE_URL = standin.url
        settings.OPENAI_BATCH_API = True
        rows.append(run("real time", owner, options.jobs, standin, "realtime", grade_in_real_time))
        rows.append(run("economy", owner, options.jobs, standin, "economy", grade_in_economy))
        standin.configure(cache_min_tokens=1024)
        rows.append(run("economy + caching", owner, options.jobs, standin, "economy", grade_in_economy))
    report(rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    return parser.parse_args()


def bench_owner():
    from django.contrib.auth.models import User

    owner, _ = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    return owner


def run(label: str, owner, jobs: int, standin, delivery: str, grade) -> dict:
    from _engine import make_batch, make_documents

    from grading.models import GradingJob, GradingResult, JobStatus

    standin.reset()
    before = set(standin.batch_api.book.batches)
    settings = {"provider": "openai", "model": MODEL, "instructions": INSTRUCTIONS}
    settings["processing"] = {"delivery": delivery, "concurrency": 64}
    batch = make_batch(owner, make_documents(owner, jobs), f"Cost bench: {label}", settings)
    batch.start_batch()
    started = time.monotonic()
    grade(batch)
    elapsed = time.monotonic() - started
    results = GradingResult.objects.filter(job__batch=batch)
    per_job = results.values("job_id").distinct().count()
    stats = standin.stats()
    requests = stats["completions"] + batch_requests(standin, before)
    return {
        "label": label,
        "jobs": jobs,
        "completed": GradingJob.objects.in_batch(batch).filter(status=JobStatus.COMPLETED).count(),
        "results": results.count(),
        "jobs_with_a_result": per_job,
        "provider_requests": requests,
        "provider_batches": stats["batches_created"],
        "cached_tokens": stats["cached_tokens"],
        "recorded": sum(results.values_list("cost", flat=True)),
        "cost": priced(results, delivery),
        "seconds": elapsed,
    }


def priced(results, delivery: str):
    """The batch's tokens priced with the provider's table, unrounded (the recorded costs are
    rounded to a millionth of a dollar per result)."""
    from decimal import Decimal

    from grading.providers import get_provider
    from grading.providers.openai import cached_token_count

    provider = get_provider("openai")
    price_in, price_out = (Decimal(str(price)) for price in provider.price_for(MODEL))
    price_cached = Decimal(str(provider.cached_input_price(MODEL)))
    total = Decimal(0)
    for raw, input_tokens, output_tokens in results.values_list(
        "raw_response", "input_tokens", "output_tokens"
    ):
        cached = cached_token_count(raw.get("usage") or {})
        total += (input_tokens - cached) * price_in + cached * price_cached + output_tokens * price_out
    share = provider.batch_discount if delivery == "economy" else Decimal(1)
    return total * share / 1_000_000


def batch_requests(standin, before: set[str]) -> int:
    """Requests in the provider batches made since `before` (the stand-in keeps them all)."""
    book = standin.batch_api.book.batches
    return sum(len(batch.requests) for batch_id, batch in book.items() if batch_id not in before)


def grade_in_real_time(batch) -> None:
    from batches.tasks import run_jobs

    run_jobs(scope=[batch.pk], budget_s=None)


def grade_in_economy(batch) -> None:
    from batches.tasks import run_economy
    from grading.models import ProviderBatch

    for _ in range(2000):
        run_economy()
        batch.refresh_from_db()
        if (
            batch.status in ("completed", "completed_with_errors", "failed")
            and not ProviderBatch.objects.open().exists()
        ):
            return
        time.sleep(0.01)
    raise SystemExit(f"The economy batch “{batch.name}” did not finish.")


def report(rows: list[dict]) -> None:
    from decimal import Decimal

    realtime = rows[0]["cost"]
    problems = []
    print()
    print(
        f"{'':20} {'cost (USD)':>12} {'recorded':>10} {'of real time':>13} {'cached tokens':>14} "
        f"{'requests':>9} {'seconds':>8}"
    )
    for row in rows:
        share = row["cost"] / realtime if realtime else 0
        print(
            f"{row['label']:20} {row['cost']:>12.6f} {row['recorded']:>10.6f} {share:>13.3f} "
            f"{row['cached_tokens']:>14,} {row['provider_requests']:>9} {row['seconds']:>8.1f}"
        )
        if abs(row["recorded"] - row["cost"]) > row["jobs"] * Decimal("0.000001"):
            problems.append(f"{row['label']}: the recorded cost is not the priced one")
    for row in rows:
        once = row["completed"] == row["results"] == row["jobs_with_a_result"] == row["jobs"]
        if not once or row["provider_requests"] != row["jobs"]:
            problems.append(f"{row['label']}: not every job graded exactly once ({row})")
    economy, cached = rows[1]["cost"], rows[2]["cost"]
    if economy > realtime / 2:
        problems.append(f"economy cost {economy} is more than half of real time {realtime}")
    if not cached < economy:
        problems.append(f"economy + caching ({cached}) is not cheaper than economy ({economy})")
    print()
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        raise SystemExit(1)
    print(
        f"Every job graded exactly once each way. Economy costs {economy / realtime:.3f} of real time; "
        f"with caching, {cached / realtime:.3f}."
    )


if __name__ == "__main__":
    main()
