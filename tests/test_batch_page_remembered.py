"""The batch page's queue and analytics are computed once per state of the batch, never kept past a change.

batches.memo keeps what the batch page, its live refresh and the analytics
read from every job; these tests hold that what is served again equals what
would be computed afresh, and that each kind of change is seen at once.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.analytics import batch_analytics
from batches.memo import forget_all
from batches.models import BatchStatus, JobBatch
from batches.review_queue import entries_for
from grading.models import GradingJob, GradingResult, JobStatus
from tests.analytics_support import MODEL_A, MODEL_B, NOW, add_result, result_of, worked_batch
from tests.conftest import set_status

pytestmark = pytest.mark.django_db


def reloaded(batch) -> JobBatch:
    """The batch as the next request reads it."""
    return JobBatch.objects.get(pk=batch.pk)


def afresh(batch) -> dict:
    forget_all()
    return batch_analytics(reloaded(batch), now=NOW)


def test_analytics_served_again_equal_analytics_computed_afresh(owner):
    batch = worked_batch(owner)
    first = batch_analytics(reloaded(batch), now=NOW)
    again = batch_analytics(reloaded(batch), now=NOW)
    assert again == first == afresh(batch)


def test_analytics_of_an_unchanged_batch_run_only_the_query_that_finds_it_unchanged(owner):
    batch = worked_batch(owner)
    batch_analytics(reloaded(batch), now=NOW)
    again = reloaded(batch)
    with CaptureQueriesContext(connection) as queries:
        batch_analytics(again, now=NOW)
    # The rest is the batch's template, for the rubric's names and points.
    assert len([query for query in queries if "grading_" in query["sql"]]) == 1


def test_the_clock_dependent_figures_follow_the_clock_even_when_nothing_changed(owner):
    batch = worked_batch(owner)
    earlier = batch_analytics(reloaded(batch), now=NOW)
    later = batch_analytics(reloaded(batch), now=NOW.replace(hour=NOW.hour + 1))
    assert later["processing"]["wall_time_s"] == earlier["processing"]["wall_time_s"] + 3600
    assert later["generated_at"] != earlier["generated_at"]


def test_a_review_recorded_after_a_view_shows_in_the_next_one(owner):
    batch = worked_batch(owner)
    assert batch_analytics(reloaded(batch), now=NOW)["scores"]["reviewed"] == 0
    result_of(batch, "d1.txt", MODEL_A).record_review(owner, 6, [{"key": "content", "score": 3}])
    analytics = batch_analytics(reloaded(batch), now=NOW)
    assert analytics["scores"]["reviewed"] == 1
    assert analytics["ai_human_agreement"]["overall"]["pairs"] == 1
    assert analytics == afresh(batch)


def test_a_review_changed_to_the_same_total_shows_its_new_criteria(owner):
    batch = worked_batch(owner)
    result = result_of(batch, "d1.txt", MODEL_A)
    result.record_review(owner, 6, [{"key": "content", "score": 3}, {"key": "style", "score": 3}])
    before = batch_analytics(reloaded(batch), now=NOW)
    result.record_review(owner, 6, [{"key": "content", "score": 4}, {"key": "style", "score": 2}])
    after = batch_analytics(reloaded(batch), now=NOW)
    assert after["scores"] == before["scores"]
    assert after["criteria"] != before["criteria"]
    assert after == afresh(batch)


def test_a_withdrawn_review_leaves_the_figures_at_once(owner):
    batch = worked_batch(owner)
    result = result_of(batch, "d2.txt", MODEL_B)
    result.record_review(owner, 9, [{"key": "content", "score": 5}])
    assert batch_analytics(reloaded(batch), now=NOW)["scores"]["reviewed"] == 1
    result.clear_review()
    assert batch_analytics(reloaded(batch), now=NOW)["scores"]["reviewed"] == 0


def test_scores_swapped_between_two_jobs_reorder_the_queue(owner):
    # The sum of the scores stays the same: a plain sum in the state would not see it.
    batch = worked_batch(owner)
    high, low = result_of(batch, "d1.txt", MODEL_A), result_of(batch, "d2.txt", MODEL_A)
    assert {e.job_id: e.score for e in entries_for(reloaded(batch))}[high.job_id] == 8
    GradingResult.objects.filter(pk=high.pk).update(score=low.score)
    GradingResult.objects.filter(pk=low.pk).update(score=high.score)
    scores = {e.job_id: e.score for e in entries_for(reloaded(batch))}
    assert (scores[high.job_id], scores[low.job_id]) == (4, 8)


def test_a_job_finishing_between_two_polls_shows_in_the_next_poll(client, owner):
    batch = worked_batch(owner)
    set_status(batch, BatchStatus.PROCESSING)
    client.force_login(owner)
    url = f"/batches/{batch.pk}/live?show=not_reviewed"
    assert "d4.txt" not in client.get(url, HTTP_HX_REQUEST="true").content.decode()
    queued = GradingJob.objects.get(batch=batch, document__original_name="d4.txt", model=MODEL_B)
    queued.status = JobStatus.COMPLETED
    queued.save(update_fields=["status"])
    add_result(queued, 3, 3)
    assert "d4.txt" in client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_a_poll_of_an_unchanged_batch_does_not_read_its_queue_again(client, owner):
    batch = worked_batch(owner)
    client.force_login(owner)
    url = f"/batches/{batch.pk}/live"
    forget_all()
    with CaptureQueriesContext(connection) as first:
        client.get(url, HTTP_HX_REQUEST="true")
    with CaptureQueriesContext(connection) as again:
        client.get(url, HTTP_HX_REQUEST="true")
    assert len(again) == len(first) - 1


def test_a_calibration_recorded_on_the_batch_changes_the_reasons_shown(owner):
    batch = worked_batch(owner)
    job = result_of(batch, "d2.txt", MODEL_A).job_id
    GradingResult.objects.filter(job_id=job).update(raw_score=3)
    uncertain = "calibration uncertain: it agrees with your grades at 0.30 (QWK)"
    assert uncertain not in {e.job_id: e.reasons for e in entries_for(reloaded(batch))}[job]
    calibration = {"models": [{"provider": "openai", "model": MODEL_A, "method": "linear", "qwk_after": 0.3}]}
    JobBatch.objects.filter(pk=batch.pk).update(calibration=calibration)
    assert uncertain in {e.job_id: e.reasons for e in entries_for(reloaded(batch))}[job]


def test_jobs_given_another_model_when_an_edited_batch_resumes_show_it(owner):
    # Resuming re-snapshots the queued jobs: their statuses end where they were.
    batch = worked_batch(owner)
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PAUSED)
    queued = GradingJob.objects.get(batch=batch, status=JobStatus.QUEUED)
    assert {e.job_id: e.model for e in entries_for(reloaded(batch))}[queued.pk] == MODEL_B
    GradingJob.objects.filter(pk=queued.pk).update(model="gpt-z")
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)
    assert {e.job_id: e.model for e in entries_for(reloaded(batch))}[queued.pk] == "gpt-z"
