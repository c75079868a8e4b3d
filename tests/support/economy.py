"""Helpers for tests of economy delivery: batches due in days, and the engine's rounds."""

import time
from datetime import timedelta

from django.utils import timezone

from batches.models import JobBatch
from batches.tasks import run_economy
from grading.models import ProviderBatch
from tests.conftest import make_batch
from tests.support.engine import OPENAI


def economy_batch(owner, jobs: int = 3, days: float = 2, **fields) -> JobBatch:
    """A started batch due in `days`, so that auto delivery chooses economy."""
    batch = make_batch(
        owner,
        jobs=jobs,
        settings=fields.pop("settings", OPENAI),
        deadline=timezone.now() + timedelta(days=days),
        **fields,
    )
    batch.start_batch()
    return batch


def wait_for_provider(standin, condition, timeout: float = 10.0) -> None:
    """Wait until condition(provider batch as the stand-in reports it) holds for every open provider batch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        submissions = list(ProviderBatch.objects.exclude(external_id=""))
        reported = [
            standin.batch_api.describe(standin.batch_api.book.get(item.external_id)) for item in submissions
        ]
        if reported and all(condition(item) for item in reported):
            return
        time.sleep(0.02)
    raise AssertionError("the stand-in's provider batches never got there")


def ended(report: dict) -> bool:
    return report["status"] in ("completed", "expired", "cancelled", "failed")


def run_until_settled(rounds: int = 50) -> list[dict]:
    """Run the engine's round until no provider batch is open (the stand-in ends them in a fraction of a second)."""
    reports = []
    for _ in range(rounds):
        reports.append(run_economy())
        if not ProviderBatch.objects.open().exists():
            return reports
        time.sleep(0.05)
    raise AssertionError(f"provider batches still open after {rounds} rounds: {reports[-1]}")
