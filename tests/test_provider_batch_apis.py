"""The providers' batch APIs through the official SDKs, against the stand-ins' batch endpoints."""

import time
from decimal import Decimal

import pytest

from grading.providers import GradeRequest
from grading.providers.anthropic import AnthropicProvider
from grading.providers.openai import OpenAIProvider
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY

CRITERIA = ACADEMIC_ESSAY_RUBRIC["criteria"]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


@pytest.fixture(params=["openai", "anthropic"])
def provider(request, settings, standin):
    settings.OPENAI_BATCH_API = settings.ANTHROPIC_BATCH_API = True
    if request.param == "openai":
        yield OpenAIProvider(), standin
        return
    with AnthropicStandin() as server:
        settings.ANTHROPIC_BASE_URL = server.url
        settings.ANTHROPIC_API_KEY = ""
        yield AnthropicProvider(), server


def requests_for(provider, count: int) -> dict[str, GradeRequest]:
    return {
        f"job-{number}-1": GradeRequest(
            text=f"{STRONG_ESSAY} ({number})",
            rubric=ACADEMIC_ESSAY_RUBRIC,
            settings=ESSAY_SETTINGS,
            model=MODELS[provider.name],
        )
        for number in range(count)
    }


def submit(provider, requests):
    lines = [provider.batch_request(custom_id, request) for custom_id, request in requests.items()]
    return provider.submit_batch(lines, f"marker-{time.monotonic_ns()}", lambda file_id: None)


def wait_until_ended(provider, external_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        remote = provider.poll_batch(external_id)
        if remote.ended:
            return remote
        time.sleep(0.05)
    raise AssertionError("the provider batch never ended")


def test_every_request_of_a_batch_comes_back_graded_at_half_price(provider):
    batch_api, server = provider
    requests = requests_for(batch_api, 4)

    remote = submit(batch_api, requests)
    assert not remote.ended and remote.total == 4
    assert list(batch_api.batch_results(remote.id, requests)) == []  # nothing before the batch ends
    wait_until_ended(batch_api, remote.id)
    items = list(batch_api.batch_results(remote.id, requests))

    assert sorted(item.custom_id for item in items) == sorted(requests)
    assert all(item.grade is not None and item.grade.max_score == 100 for item in items)
    for item in items:
        realtime = batch_api.read_reply(requests[item.custom_id], item.grade.raw, CRITERIA).cost
        assert item.grade.cost == (realtime / 2).quantize(Decimal("0.000001")) > 0


def test_partial_errors_and_expired_requests_are_told_apart(provider):
    batch_api, server = provider
    server.configure(batch_error_every=3, batch_expire_every=4)
    requests = requests_for(batch_api, 6)

    remote = submit(batch_api, requests)
    wait_until_ended(batch_api, remote.id)
    items = {item.custom_id: item for item in batch_api.batch_results(remote.id, requests)}

    assert items["job-2-1"].error is not None and items["job-2-1"].error.transient
    assert items["job-3-1"].expired
    assert all(items[key].grade is not None for key in ("job-0-1", "job-1-1", "job-4-1"))


def test_a_cancelled_batch_keeps_what_finished_before_the_cancel(provider):
    batch_api, server = provider
    server.configure(batch_hour_s=0.5, batch_hours=2)  # four requests a quarter of a second apart
    requests = requests_for(batch_api, 4)

    remote = submit(batch_api, requests)
    deadline = time.monotonic() + 10
    while batch_api.poll_batch(remote.id).finished < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    batch_api.cancel_batch(remote.id)
    wait_until_ended(batch_api, remote.id)
    items = list(batch_api.batch_results(remote.id, requests))

    graded = [item for item in items if item.grade is not None]
    cancelled = [item for item in items if item.cancelled]
    assert len(graded) >= 1 and len(cancelled) >= 1
    assert len(graded) + len(cancelled) == 4
    assert server.stats()["batch_cancels"] == 1


def test_a_batch_created_under_a_marker_is_found_again(settings, standin):
    settings.OPENAI_BATCH_API = True
    batch_api = OpenAIProvider()
    requests = requests_for(batch_api, 2)
    lines = [batch_api.batch_request(custom_id, request) for custom_id, request in requests.items()]

    made = batch_api.submit_batch(lines, "the-marker", lambda file_id: None)

    assert batch_api.find_batch("the-marker").id == made.id
    assert batch_api.find_batch("another-marker") is None
