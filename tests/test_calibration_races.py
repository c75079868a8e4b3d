"""Two calibrations of one batch at once (a double click, the page and the API) apply in turn."""

import threading

import pytest
from django.db import connection

from batches.models import JobBatch
from grading.models import GradingResult
from tests.review_support import CALIBRATION_RAW, calibrated_comparison_batch

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _calibrate(batch_id: int, outcomes: list, barrier: threading.Barrier) -> None:
    try:
        batch = JobBatch.objects.get(pk=batch_id)
        barrier.wait(timeout=10)
        outcomes.append(batch.calibrate()["exemplars"])
    except Exception as error:  # reported, whatever it was
        outcomes.append(repr(error))
    finally:
        connection.close()


def test_calibrating_twice_at_once_leaves_the_scores_of_one_calibration(owner):
    batch, _ = calibrated_comparison_batch(owner)
    once = dict(GradingResult.objects.values_list("pk", "score"))
    outcomes: list = []
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_calibrate, args=(batch.pk, outcomes, barrier)) for _ in range(2)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes == [6, 6]
    assert dict(GradingResult.objects.values_list("pk", "score")) == once
    # The provider's own score is kept, never a calibrated score calibrated again.
    builtin = dict(
        GradingResult.objects.filter(provider="builtin").values_list(
            "job__document__original_name", "raw_score"
        )
    )
    assert builtin == {f"essay-{i}.txt": raw for i, raw in enumerate(CALIBRATION_RAW)}
