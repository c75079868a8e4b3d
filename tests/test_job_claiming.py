"""Free workers claim runnable jobs in priority order, within every limit."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from batches.models import BatchStatus
from grading.claims import PACING_HORIZON, claim_jobs
from grading.models import CLAIMING_BATCH_STATES, GradingJob, JobStatus
from tests.support.engine import OPENAI, claim_one, finish, later, processing, started_batch

pytestmark = pytest.mark.django_db


def batches_of(work) -> list[int]:
    return [item.batch_id for item in work]


def test_the_claiming_batch_states_are_the_active_batch_states():
    assert set(CLAIMING_BATCH_STATES) == set(BatchStatus.active())


def test_a_claim_takes_the_highest_priority_batch_first(owner):
    low = started_batch(owner, jobs=2, priority=2, name="low")
    high = started_batch(owner, jobs=2, priority=9, name="high")

    assert batches_of(claim_jobs(3, "w/1")) == [high.pk, high.pk, low.pk]


def test_a_higher_priority_batch_started_later_is_served_from_the_next_claim(owner):
    low = started_batch(owner, jobs=3, priority=2, name="low")
    assert batches_of(claim_jobs(1, "w/1")) == [low.pk]

    high = started_batch(owner, jobs=2, priority=9, name="high")

    assert batches_of(claim_jobs(2, "w/2")) == [high.pk, high.pk]
    assert batches_of(claim_jobs(5, "w/3")) == [low.pk, low.pk]


def test_between_equal_priorities_the_earliest_deadline_goes_first_and_none_goes_last(owner):
    now = timezone.now()
    undated = started_batch(owner, jobs=1, name="undated")
    late = started_batch(owner, jobs=1, deadline=now + timedelta(days=3), name="late")
    soon = started_batch(owner, jobs=1, deadline=now + timedelta(days=1), name="soon")

    assert batches_of(claim_jobs(3, "w/1")) == [soon.pk, late.pk, undated.pk]


def test_within_a_batch_the_oldest_job_goes_first(owner):
    batch = started_batch(owner, jobs=3)
    oldest_first = list(
        GradingJob.objects.in_batch(batch).order_by("created_at", "id").values_list("pk", flat=True)
    )

    assert [item.job_id for item in claim_jobs(3, "w/1")] == oldest_first


def test_a_claim_marks_the_job_processing_with_a_lease_an_attempt_and_its_token(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()

    work = claim_one("host:1:abcd/7", now=now, lease_s=60)

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.PROCESSING
    assert job.attempts == work.attempt == 1
    assert job.claimed_by == work.token == "host:1:abcd/7"
    assert job.lease_expires_at == now + timedelta(seconds=60)
    assert work.text == job.document.text


def test_a_claimed_job_is_not_claimed_again(owner):
    started_batch(owner, jobs=2)

    first = claim_jobs(5, "w/1")
    second = claim_jobs(5, "w/2")

    assert len(first) == 2
    assert second == []


def test_a_draft_batch_has_nothing_to_claim(owner):
    from tests.conftest import make_batch

    make_batch(owner, jobs=2)

    assert claim_jobs(5, "w/1") == []


def test_pausing_a_batch_stops_new_claims_and_resuming_serves_it_again(owner):
    paused = started_batch(owner, jobs=3, priority=9, name="paused")
    other = started_batch(owner, jobs=3, priority=2, name="other")
    in_flight = claim_one()

    paused.pause_batch()

    assert batches_of(claim_jobs(2, "w/2")) == [other.pk, other.pk]
    assert GradingJob.objects.get(pk=in_flight.job_id).status == JobStatus.PROCESSING

    paused.resume_batch()

    assert batches_of(claim_jobs(3, "w/3")) == [paused.pk, paused.pk, other.pk]


def test_a_job_finished_while_its_batch_is_paused_is_kept(owner):
    batch = started_batch(owner, jobs=2)
    work = claim_one()
    batch.pause_batch()

    finish(work)

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.COMPLETED
    assert job.result.score >= 0


def test_cancelling_a_batch_cancels_queued_jobs_and_keeps_the_one_in_flight(owner):
    batch = started_batch(owner, jobs=3)
    work = claim_one()

    batch.cancel_batch()

    assert claim_jobs(5, "w/2") == []
    finish(work)
    statuses = sorted(GradingJob.objects.in_batch(batch).values_list("status", flat=True))
    assert statuses == [JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.COMPLETED]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_retrying_a_batch_makes_its_failed_and_cancelled_jobs_claimable_with_attempts_reset(owner):
    batch = started_batch(owner, jobs=2)
    GradingJob.objects.in_batch(batch).update(status=JobStatus.FAILED, attempts=3, last_error="boom")
    batch.status = BatchStatus.FAILED
    batch.save(update_fields=["status"])

    batch.retry_failed_jobs()

    work = claim_jobs(5, "w/1")
    assert len(work) == 2
    assert {item.attempt for item in work} == {1}


def test_jobs_waiting_for_their_backoff_are_not_claimed_before_it_ends(owner):
    started_batch(owner, jobs=1)
    retry_at = later(30)
    GradingJob.objects.update(next_attempt_at=retry_at)

    assert claim_jobs(1, "w/1", now=retry_at - timedelta(seconds=1)) == []
    assert len(claim_jobs(1, "w/2", now=retry_at)) == 1


def test_a_batch_never_has_more_jobs_in_flight_than_its_concurrency(owner):
    started_batch(owner, jobs=5, settings=processing(concurrency=2))

    assert len(claim_jobs(10, "w/1")) == 2
    assert claim_jobs(10, "w/2") == []


def test_a_capped_high_priority_batch_leaves_free_workers_to_the_next_batch(owner):
    high = started_batch(owner, jobs=5, priority=9, settings=processing(concurrency=1), name="high")
    low = started_batch(owner, jobs=5, priority=2, name="low")

    assert batches_of(claim_jobs(4, "w/1")) == [high.pk, low.pk, low.pk, low.pk]


@override_settings(OPENAI_MAX_CONCURRENCY=3)
def test_the_provider_limit_holds_across_all_claimants(owner):
    started_batch(owner, jobs=4, settings=OPENAI, name="a")
    started_batch(owner, jobs=4, settings=OPENAI, name="b")
    builtin = started_batch(owner, jobs=1, name="builtin")

    first = claim_jobs(2, "one/1")
    second = claim_jobs(10, "two/1")

    assert [item.provider for item in first + second].count("openai") == 3
    assert [item.batch_id for item in second if item.provider == "builtin"] == [builtin.pk]
    assert claim_jobs(10, "three/1") == []


@override_settings(OPENAI_MAX_CONCURRENCY=1)
def test_a_provider_slot_frees_when_its_job_ends(owner):
    from tests.support.engine import failure

    started_batch(owner, jobs=2, settings=OPENAI)
    work = claim_one()
    assert claim_jobs(1, "w/2") == []

    from grading.claims import record_outcomes

    record_outcomes([failure(work, transient=False)])

    assert len(claim_jobs(1, "w/3")) == 1


def test_job_starts_within_a_batch_are_spaced_by_stagger_ms(owner):
    started_batch(owner, jobs=6, settings=processing(stagger_ms=400))
    now = timezone.now()

    work = claim_jobs(10, "w/1", now=now)

    assert [item.start_at - now for item in work] == [timedelta(milliseconds=ms) for ms in (0, 400, 800)]
    assert claim_jobs(10, "w/2", now=now) == []
    [next_one] = claim_jobs(10, "w/3", now=now + timedelta(milliseconds=500))
    assert next_one.start_at == now + timedelta(milliseconds=1200)


@override_settings(OPENAI_RPM=120)
def test_the_provider_request_rate_spaces_starts_across_all_claimants(owner):
    started_batch(owner, jobs=2, settings=OPENAI, name="a")
    started_batch(owner, jobs=2, settings=OPENAI, name="b")
    now = timezone.now()

    first = claim_jobs(1, "one/1", now=now)
    second = claim_jobs(10, "two/1", now=now)

    starts = [item.start_at - now for item in first + second]
    assert starts == [timedelta(seconds=0), timedelta(seconds=0.5), timedelta(seconds=1)]
    assert max(starts) <= PACING_HORIZON


def test_the_claim_statement_takes_exactly_what_the_claimable_queryset_lists_in_its_order(owner):
    now = timezone.now()
    started_batch(owner, jobs=3, priority=4, name="plain")
    started_batch(owner, jobs=2, priority=7, deadline=now + timedelta(days=2), name="urgent later")
    started_batch(owner, jobs=2, priority=7, deadline=now + timedelta(days=1), name="urgent sooner")
    paused = started_batch(owner, jobs=2, priority=9, name="paused")
    paused.pause_batch()
    backing_off = started_batch(owner, jobs=2, priority=8, name="backing off")
    GradingJob.objects.in_batch(backing_off).update(next_attempt_at=later(60, now))
    expected = list(GradingJob.objects.claimable(now).values_list("pk", flat=True))

    claimed = claim_jobs(50, "w/1", now=now)

    assert len(expected) == 7
    assert [item.job_id for item in claimed] == expected


@override_settings(OPENAI_MAX_CONCURRENCY=2)
def test_a_claimant_with_room_for_a_capped_provider_takes_up_to_its_room(owner):
    from grading.claims import Share

    started_batch(owner, jobs=8, settings=OPENAI)

    held_to_cap = claim_jobs(10, "plain/1")
    share = Share(room={"openai": 3})
    with_room = claim_jobs(10, "runner/1", share=share)

    # Without room the jobs in processing count against the cap; a runner's room
    # comes from the call slots it holds, which keep the cap on calls instead.
    assert (len(held_to_cap), len(with_room)) == (2, 3)
    assert share.short == {"openai"}


def test_a_claim_whose_room_covers_the_work_is_not_short(owner):
    from grading.claims import Share

    started_batch(owner, jobs=2, settings=OPENAI)
    share = Share(room={"openai": 5})

    assert len(claim_jobs(10, "runner/1", share=share)) == 2
    assert share.short == set()


def test_a_runner_counts_itself_live_while_it_runs(owner):
    from grading.claims import live_runners
    from grading.runner import Runner

    seen = []
    started_batch(owner, jobs=1)

    Runner(threads=1, on_batch_touched=lambda batch_id: seen.append(live_runners())).run()

    assert seen == [1]
    assert live_runners() == 0
