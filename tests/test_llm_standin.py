import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.llm_standin import LLMStandin

SCHEMA = {
    "type": "object",
    "properties": {
        "criteria": {
            "type": "object",
            "properties": {
                "clarity": {
                    "type": "object",
                    "properties": {"score": {"type": "integer", "maximum": 10}},
                },
                "depth": {
                    "type": "object",
                    "properties": {"score": {"type": "number", "maximum": 5}},
                },
            },
        },
        "feedback": {"type": "string"},
    },
}


def completion_body(text="An essay about remote work.", model="gpt-4o-mini"):
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "Grade."},
            {"role": "user", "content": text},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "g", "schema": SCHEMA},
        },
    }


def post(url, payload):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def complete(standin, **kwargs):
    return post(f"{standin.url}/chat/completions", completion_body(**kwargs))


@pytest.fixture
def standin():
    with LLMStandin() as server:
        yield server


def test_a_completion_answers_every_criterion_in_the_requested_schema(standin):
    status, _, body = complete(standin)

    assert status == 200
    assert body["object"] == "chat.completion"
    reply = json.loads(body["choices"][0]["message"]["content"])
    assert set(reply["criteria"]) == {"clarity", "depth"}
    assert isinstance(reply["criteria"]["clarity"]["score"], int)
    assert 0 <= reply["criteria"]["clarity"]["score"] <= 10
    assert 0 <= reply["criteria"]["depth"]["score"] <= 5
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_scores_depend_only_on_the_document_text(standin):
    first = complete(standin, text="Same text.")[2]["choices"][0]["message"]["content"]
    again = complete(standin, text="Same text.")[2]["choices"][0]["message"]["content"]

    assert first == again


def test_every_nth_request_is_rate_limited_with_retry_after(standin):
    standin.configure(rate_limit_every=3, retry_after_s=2)

    statuses = [complete(standin) for _ in range(6)]

    assert [status for status, _, _ in statuses] == [200, 200, 429, 200, 200, 429]
    assert statuses[2][1]["Retry-After"] == "2"
    assert statuses[2][2]["error"]["code"] == "rate_limit_exceeded"


def test_random_server_errors_repeat_for_the_same_seed(standin):
    standin.configure(error_rate=0.5, seed=7)
    first = [complete(standin)[0] for _ in range(20)]
    standin.reset()
    second = [complete(standin)[0] for _ in range(20)]

    assert first == second
    assert set(first) == {200, 500}


def side_by_side(standin, count):
    """Send `count` completions at once; the stand-in holds its replies until all have arrived."""
    standin.hold_replies()
    with ThreadPoolExecutor(max_workers=count) as pool:
        try:
            replies = [pool.submit(complete, standin) for _ in range(count)]
            standin.wait_until(lambda stats: stats["requests"] == count)
        finally:
            standin.release_replies()
        return [reply.result()[0] for reply in replies]


def test_requests_over_the_concurrency_cap_are_refused_and_the_peak_recorded(standin):
    standin.configure(max_concurrency=2)

    statuses = side_by_side(standin, 6)

    # The first two are held in flight; each of the other four finds the cap full.
    stats = standin.stats()
    assert statuses.count(200) == 2
    assert statuses.count(429) == 4
    assert 3 <= stats["peak_concurrency"] <= 6
    assert stats["concurrency_violations"] == stats["over_cap"] == 4


def test_over_the_cap_can_be_recorded_without_refusing(standin):
    standin.configure(max_concurrency=2, over_cap="record")

    statuses = side_by_side(standin, 5)

    assert statuses == [200] * 5
    stats = standin.stats()
    assert stats["peak_concurrency"] == 5
    assert stats["concurrency_violations"] == 3


def test_every_request_is_recorded_with_its_body_and_time(standin):
    complete(standin, model="gpt-4o")
    complete(standin, model="gpt-4.1-mini")

    stats = standin.stats(include_bodies=True)
    assert stats["requests"] == 2
    assert stats["models"] == {"gpt-4o": 1, "gpt-4.1-mini": 1}
    assert [body["model"] for body in stats["bodies"]] == ["gpt-4o", "gpt-4.1-mini"]
    assert stats["timestamps"] == sorted(stats["timestamps"])
    # The server thread records the status just after the reply is sent, so the
    # client can read its reply a moment before the record is complete.
    standin.wait_until(lambda stats: stats["in_flight"] == 0)
    assert all(record.status == 200 for record in standin.requests)


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="Unknown stand-in options: latency"):
        LLMStandin(latency=1)


def test_stats_and_config_are_served_over_http(standin):
    base = standin.url.removesuffix("/v1")
    status, _, config = post(f"{base}/config", {"fail_with_status": 401})

    assert status == 200
    assert config["fail_with_status"] == 401
    assert complete(standin)[0] == 401
    with urllib.request.urlopen(f"{base}/stats", timeout=5) as response:
        stats = json.loads(response.read())
    assert stats["requests"] == 1
    assert stats["forced_failures"] == 1
    assert post(f"{base}/config", {"nonsense": 1})[0] == 400


def test_it_runs_as_a_separate_process_that_prints_its_url_first():
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "tests.support.llm_standin", "--port", "0"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/v1")
        assert post(f"{url}/chat/completions", completion_body())[0] == 200
        with urllib.request.urlopen(f"{url.removesuffix('/v1')}/stats", timeout=5) as response:
            assert json.loads(response.read())["completions"] == 1
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
