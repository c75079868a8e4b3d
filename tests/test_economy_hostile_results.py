"""An economy job ends right whatever a provider batch's results file holds for it.

The stand-ins serve each provider batch's results as the provider could write them (a test
scripts the lines: tests/support/batch_standin.py); the engine reads them through the
official SDKs. A reply that does not fit the rubric is the job's (no repair inside a provider
batch: tried again, an attempt used); whatever the provider broke uses up no attempt; nothing
is recorded twice and no job is lost.
"""

import json
import time
from decimal import Decimal

import pytest

from batches.models import BatchStatus
from batches.tasks import update_batch_progress
from grading.economy_engine import TickReport, poll, tick
from grading.estimate import estimate_batch
from grading.models import GradingJob, GradingResult, JobStatus, ProviderBatch
from grading.providers import get_provider
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.economy import economy_batch, run_until_settled

pytestmark = pytest.mark.django_db

ANTHROPIC = {"provider": "anthropic", "model": "claude-haiku-4-5"}
HTML = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.fixture
def openai_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    return standin


@pytest.fixture
def anthropic_api(settings):
    settings.ANTHROPIC_BATCH_API = True
    settings.MODEL_PRICES = {}
    with AnthropicStandin() as server:
        settings.ANTHROPIC_BASE_URL = server.url
        settings.ANTHROPIC_API_KEY = ""
        yield server


def first_line(kind: str, change):
    """A script that replaces the first line of the `kind` file with change(that line as JSON)."""

    def script(file_kind: str, lines: list[str]) -> list[str]:
        if file_kind != kind or not lines:
            return lines
        return change(json.loads(lines[0])) + lines[1:]

    return script


def graded_once(server, batch, script) -> list[GradingJob]:
    """Submit the batch's jobs, let the provider batch end with its files scripted, record them."""
    server.batch_api.book.script = script
    tick()
    book = server.batch_api.book
    wait_until(lambda: all(book.ended(book.get(item.external_id)) for item in ProviderBatch.objects.all()))
    report = TickReport()
    poll(report)  # the round's poll alone: what it gave back is not submitted again yet
    assert not report.errors, report.errors
    assert not ProviderBatch.objects.open().exists()
    return list(GradingJob.objects.in_batch(batch).order_by("created_at", "id"))


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the stand-in's provider batches never ended"
        time.sleep(0.02)


def content_of(change):
    """An OpenAI output line whose reply content is change(the content as the model wrote it)."""

    def rewrite(line: dict) -> list[str]:
        message = line["response"]["body"]["choices"][0]["message"]
        message["content"] = change(message["content"])
        return [json.dumps(line)]

    return rewrite


def thesis_score(literal: str):
    def change(content: str) -> str:
        grade = json.loads(content)
        grade["criteria"]["thesis"]["score"] = "@@score@@"
        return json.dumps(grade).replace('"@@score@@"', literal)

    return change


def assert_given_back(job: GradingJob, reason: str) -> None:
    """Back in the queue with its attempt given back, counted as the provider's failure."""
    assert job.status == JobStatus.QUEUED
    assert job.attempts == 0
    assert job.provider_retries == 1
    assert reason in job.last_error and "not counted as an attempt" in job.last_error


def assert_tried_again(job: GradingJob, reason: str) -> None:
    """The reply was the job's: queued for its next attempt, this one used."""
    assert job.status == JobStatus.QUEUED
    assert job.attempts == 1
    assert job.last_error.startswith("Attempt 1 of 3 failed: The reply does not match the rubric")
    assert reason in job.last_error


def assert_others_graded(jobs: list[GradingJob]) -> None:
    assert all(job.status == JobStatus.COMPLETED for job in jobs[1:])
    assert GradingResult.objects.filter(job__in=jobs).count() == len(jobs) - 1


# --- OpenAI: the output and error files --------------------------------------------------


def test_a_line_that_is_not_json_costs_its_own_job_no_attempt_and_the_rest_are_recorded(owner, openai_api):
    batch = economy_batch(owner, jobs=3)

    jobs = graded_once(openai_api, batch, first_line("output", lambda line: [json.dumps(line)[:90]]))

    assert_given_back(jobs[0], "not a JSON line")
    assert_others_graded(jobs)


def test_a_line_naming_no_request_leaves_its_job_back_in_the_queue(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    jobs = graded_once(openai_api, batch, first_line("output", lambda line: ["<html>oops</html>"]))

    assert_given_back(jobs[0], "ended without a result for it")
    assert_others_graded(jobs)


def test_a_result_for_an_unknown_custom_id_is_left_aside(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def stranger(line):
        other = dict(line, custom_id="job-999999-1")
        return [json.dumps(line), json.dumps(other)]

    jobs = graded_once(openai_api, batch, first_line("output", stranger))

    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 2
    assert GradingResult.objects.count() == 2


def test_a_custom_id_given_twice_is_recorded_once(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    jobs = graded_once(openai_api, batch, first_line("output", lambda line: [json.dumps(line)] * 2))

    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 2
    assert GradingResult.objects.filter(job=jobs[0]).count() == 1


def test_a_custom_id_given_twice_keeps_the_grade_over_an_error(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def error_then_grade(line):
        failed = dict(line, response={"status_code": 500, "body": {"error": {"message": "boom"}}})
        return [json.dumps(failed), json.dumps(line)]

    jobs = graded_once(openai_api, batch, first_line("output", error_then_grade))

    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 2


def test_a_missing_line_gives_its_job_back_without_an_attempt(owner, openai_api):
    batch = economy_batch(owner, jobs=3)

    jobs = graded_once(openai_api, batch, first_line("output", lambda line: []))

    assert_given_back(jobs[0], "ended without a result for it")
    assert_others_graded(jobs)


def test_an_empty_output_file_gives_every_job_back_without_an_attempt(owner, openai_api):
    batch = economy_batch(owner, jobs=3)

    jobs = graded_once(openai_api, batch, lambda kind, lines: [] if kind == "output" else lines)

    for job in jobs:
        assert_given_back(job, "ended without a result for it")


def test_a_server_error_in_the_error_file_uses_up_no_attempt(owner, openai_api):
    batch = economy_batch(owner, jobs=2)
    openai_api.configure(batch_error_every=2)

    jobs = graded_once(openai_api, batch, None)

    assert jobs[0].status == JobStatus.COMPLETED
    assert jobs[1].status == JobStatus.QUEUED and jobs[1].attempts == 0 and jobs[1].provider_retries == 1
    assert "HTTP 500" in jobs[1].last_error


def test_a_request_the_provider_refuses_with_a_400_fails_its_job_with_the_reason(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def refused(line):
        body = {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}
        return [json.dumps(dict(line, response={"status_code": 400, "body": body}))]

    jobs = graded_once(openai_api, batch, first_line("output", refused))

    assert jobs[0].status == JobStatus.FAILED and jobs[0].attempts == 1
    assert "max_tokens is too large" in jobs[0].last_error
    assert_others_graded(jobs)


def test_an_html_page_as_a_result_s_body_is_the_provider_s_failure(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def html(line):
        line["response"]["body"] = HTML
        return [json.dumps(line)]

    jobs = graded_once(openai_api, batch, first_line("output", html))

    assert_given_back(jobs[0], "502 Bad Gateway")
    assert_others_graded(jobs)


def test_an_error_object_with_status_200_is_the_provider_s_failure(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def error_object(line):
        line["response"]["body"] = {"error": {"message": "upstream timed out"}}
        return [json.dumps(line)]

    jobs = graded_once(openai_api, batch, first_line("output", error_object))

    assert_given_back(jobs[0], "upstream timed out")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400", '"three"'])
def test_a_score_off_the_scale_is_the_job_s_and_uses_an_attempt(owner, openai_api, literal):
    batch = economy_batch(owner, jobs=2)

    jobs = graded_once(openai_api, batch, first_line("output", content_of(thesis_score(literal))))

    assert_tried_again(jobs[0], "thesis")
    assert_others_graded(jobs)


def test_a_reply_that_does_not_fit_still_counts_its_tokens_at_the_batch_price(owner, openai_api):
    batch = economy_batch(owner, jobs=2)
    usages = []

    def noted(line):
        usages.append(line["response"]["body"]["usage"])
        return content_of(thesis_score("NaN"))(line)

    jobs = graded_once(openai_api, batch, first_line("output", noted))

    [usage] = usages
    job = jobs[0]
    assert job.billed_input_tokens == usage["prompt_tokens"] > 0
    assert job.billed_output_tokens == usage["completion_tokens"]
    realtime = get_provider("openai").cost_of(
        "gpt-4o-mini",
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["prompt_tokens_details"]["cached_tokens"],
    )
    assert job.billed_cost == (realtime / 2).quantize(Decimal("0.000001")) > 0
    spent = estimate_batch(batch)["spent_so_far"]
    graded = GradingResult.objects.get(job=jobs[1])
    assert spent["input_tokens"] == graded.input_tokens + job.billed_input_tokens


def test_a_criterion_given_twice_is_the_job_s_and_uses_an_attempt(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def twice(content: str) -> str:
        grade = json.loads(content)
        thesis = json.dumps(grade["criteria"]["thesis"])
        return content.replace('"thesis": ', f'"thesis": {thesis}, "thesis": ', 1)

    jobs = graded_once(openai_api, batch, first_line("output", content_of(twice)))

    assert_tried_again(jobs[0], "thesis")


def test_a_reply_cut_off_at_max_tokens_is_the_job_s_and_uses_an_attempt(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def cut_off(line):
        choice = line["response"]["body"]["choices"][0]
        choice["message"]["content"] = choice["message"]["content"][:60]
        choice["finish_reason"] = "length"
        return [json.dumps(line)]

    jobs = graded_once(openai_api, batch, first_line("output", cut_off))

    assert_tried_again(jobs[0], "cut off")


def test_json_in_a_code_fence_with_prose_around_it_is_read(owner, openai_api):
    batch = economy_batch(owner, jobs=2)
    fenced = content_of(lambda content: f"Here is the grade:\n```json\n{content}\n```\nHope this helps.")

    jobs = graded_once(openai_api, batch, first_line("output", fenced))

    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 2


def test_a_refusal_fails_its_job_at_once(owner, openai_api):
    batch = economy_batch(owner, jobs=2)

    def refusal(line):
        message = line["response"]["body"]["choices"][0]["message"]
        message.update(content=None, refusal="I can't help with that.")
        return [json.dumps(line)]

    jobs = graded_once(openai_api, batch, first_line("output", refusal))

    assert jobs[0].status == JobStatus.FAILED and jobs[0].attempts == 1
    assert "can't help" in jobs[0].last_error


def test_a_malformed_reply_on_the_last_attempt_fails_the_job_naming_what_was_wrong(owner, openai_api):
    batch = economy_batch(owner, jobs=2)
    GradingJob.objects.in_batch(batch).update(max_attempts=1)

    jobs = graded_once(openai_api, batch, first_line("output", content_of(thesis_score("NaN"))))

    assert jobs[0].status == JobStatus.FAILED and jobs[0].attempts == 1
    assert "The reply does not match the rubric" in jobs[0].last_error and "thesis" in jobs[0].last_error
    assert "(gave up after 1 attempts)" in jobs[0].last_error


def test_a_document_the_provider_keeps_failing_on_ends_failed_so_the_batch_finishes(owner, openai_api):
    batch = economy_batch(owner, jobs=2)
    first = GradingJob.objects.in_batch(batch).order_by("created_at", "id").first()
    GradingJob.objects.filter(pk=first.pk).update(provider_retries=19)

    jobs = graded_once(openai_api, batch, first_line("output", lambda line: []))

    assert jobs[0].status == JobStatus.FAILED and jobs[0].attempts == 1
    assert "the provider failed on this document 20 times" in jobs[0].last_error
    update_batch_progress(batch.pk)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_ERRORS


def test_after_every_kind_of_broken_line_the_batch_finishes_with_one_result_a_job(owner, openai_api):
    batch = economy_batch(owner, jobs=6)
    breakages = [
        lambda line: [json.dumps(line)[:90]],
        lambda line: [],
        lambda line: [json.dumps(line)] * 2,
        lambda line: [json.dumps(dict(line, response={"status_code": 200, "body": HTML}))],
        content_of(thesis_score("NaN")),
    ]

    def script(kind, lines):
        if kind != "output":
            return lines
        broken = [
            part for break_, line in zip(breakages, lines, strict=False) for part in break_(json.loads(line))
        ]
        return broken + lines[len(breakages) :]

    graded_once(openai_api, batch, script)
    openai_api.batch_api.book.script = None
    for _ in range(3):
        GradingJob.objects.in_batch(batch).update(next_attempt_at=None)
        run_until_settled()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert GradingResult.objects.filter(job__batch=batch).count() == 6
    assert set(GradingJob.objects.in_batch(batch).values_list("status", flat=True)) == {JobStatus.COMPLETED}


# --- Anthropic: the results file -----------------------------------------------------------


def errored(kind: str, message: str):
    def rewrite(entry):
        entry["result"] = {
            "type": "errored",
            "error": {"type": "error", "error": {"type": kind, "message": message}},
        }
        return [json.dumps(entry)]

    return rewrite


def test_an_overloaded_entry_uses_up_no_attempt(owner, anthropic_api):
    batch = economy_batch(owner, jobs=2, settings=ANTHROPIC)

    jobs = graded_once(anthropic_api, batch, first_line("results", errored("overloaded_error", "Overloaded")))

    assert_given_back(jobs[0], "Overloaded")
    assert_others_graded(jobs)


def test_an_invalid_request_entry_fails_its_job_with_the_reason(owner, anthropic_api):
    batch = economy_batch(owner, jobs=2, settings=ANTHROPIC)

    jobs = graded_once(
        anthropic_api, batch, first_line("results", errored("invalid_request_error", "prompt is too long"))
    )

    assert jobs[0].status == JobStatus.FAILED and jobs[0].attempts == 1
    assert "prompt is too long" in jobs[0].last_error


@pytest.mark.parametrize("kind", ["expired", "canceled"])
def test_an_expired_or_canceled_entry_goes_back_to_the_queue_without_an_attempt(owner, anthropic_api, kind):
    batch = economy_batch(owner, jobs=2, settings=ANTHROPIC)

    jobs = graded_once(
        anthropic_api,
        batch,
        first_line("results", lambda entry: [json.dumps(dict(entry, result={"type": kind}))]),
    )

    assert jobs[0].status == JobStatus.QUEUED and jobs[0].attempts == 0 and jobs[0].provider_retries == 0
    assert_others_graded(jobs)


def test_a_results_line_that_is_not_json_costs_its_own_job_no_attempt(owner, anthropic_api):
    batch = economy_batch(owner, jobs=3, settings=ANTHROPIC)

    jobs = graded_once(anthropic_api, batch, first_line("results", lambda entry: [json.dumps(entry)[:70]]))

    assert_given_back(jobs[0], "not a JSON line")
    assert_others_graded(jobs)


def test_a_nan_score_in_the_tool_input_is_the_job_s_and_uses_an_attempt(owner, anthropic_api):
    batch = economy_batch(owner, jobs=2, settings=ANTHROPIC)

    def nan(entry):
        tool = next(block for block in entry["result"]["message"]["content"] if block["type"] == "tool_use")
        tool["input"]["criteria"]["thesis"]["score"] = "@@score@@"
        return [json.dumps(entry).replace('"@@score@@"', "NaN")]

    jobs = graded_once(anthropic_api, batch, first_line("results", nan))

    assert_tried_again(jobs[0], "thesis")
    assert_others_graded(jobs)


def test_a_message_cut_off_at_max_tokens_is_the_job_s_and_uses_an_attempt(owner, anthropic_api):
    batch = economy_batch(owner, jobs=2, settings=ANTHROPIC)

    def cut_off(entry):
        message = entry["result"]["message"]
        message["content"] = [{"type": "text", "text": "Let me grade this essay carefully. The thesis"}]
        message["stop_reason"] = "max_tokens"
        return [json.dumps(entry)]

    jobs = graded_once(anthropic_api, batch, first_line("results", cut_off))

    assert_tried_again(jobs[0], "cut off")


def test_an_html_page_as_a_succeeded_message_is_the_provider_s_failure(owner, anthropic_api):
    batch = economy_batch(owner, jobs=2, settings=ANTHROPIC)

    def html(entry):
        entry["result"]["message"] = HTML
        return [json.dumps(entry)]

    jobs = graded_once(anthropic_api, batch, first_line("results", html))

    assert_given_back(jobs[0], "502 Bad Gateway")


def test_a_result_line_holding_a_line_separator_in_a_string_is_one_result():
    from grading.providers.prompting import result_entries

    # JSON strings may hold U+2028 and U+2029 unescaped; str.splitlines would cut there.
    text = '{"custom_id": "a", "note": "one\u2028two\u2029three"}\r\n{"custom_id": "b"}\n\n'

    assert [(custom_id, entry is not None) for custom_id, entry, _ in result_entries(text)] == [
        ("a", True),
        ("b", True),
    ]
