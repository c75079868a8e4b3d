"""A batch's `concurrency` bounds its calls in flight, not the jobs its runners keep ready."""

import pytest

from grading.claims import Share, claim_jobs
from grading.models import GradingResult
from grading.runner import Runner
from tests.support.engine import OPENAI, processing, started_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db


def test_a_batch_keeps_as_many_calls_in_flight_as_its_rule_says_and_never_more(owner, settings):
    settings.OPENAI_MAX_CONCURRENCY = 16
    with LLMStandin(latency_s=0.15, max_concurrency=16, over_cap="record") as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=40, settings={**OPENAI, **processing(concurrency=6)})

        Runner(threads=16, poll_s=0.05).run()

        stats = standin.stats()
    assert GradingResult.objects.count() == 40
    assert stats["peak_concurrency"] == 6
    assert stats["concurrency_violations"] == 0


def test_a_claimant_holding_the_batchs_slots_may_claim_jobs_ready_beyond_them(owner):
    batch = started_batch(owner, jobs=10, settings={**OPENAI, **processing(concurrency=4)})

    share = Share(room={"openai": 16}, batch_room={batch.pk: 6})
    claimed = claim_jobs(10, "runner-a/1", share=share)

    assert len(claimed) == 6
    assert share.short_batches == {batch.pk}
    assert share.batch_caps == {batch.pk: 4}


def test_a_claimant_without_the_batchs_slots_is_held_to_the_rule_by_jobs_in_processing(owner):
    batch = started_batch(owner, jobs=10, settings={**OPENAI, **processing(concurrency=4)})

    assert len(claim_jobs(10, "runner-a/1")) == 4
    share = Share()
    assert claim_jobs(10, "runner-b/1", share=share) == []
    assert share.short_batches == {batch.pk}
