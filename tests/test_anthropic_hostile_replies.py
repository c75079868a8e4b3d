"""The anthropic provider reads what real Claude replies and gateways send back, repairs once, and blames rightly.

Each reply is scripted into the Messages API stand-in on loopback and goes through the real SDK.
"""

import json

import pytest

from grading.providers import GradeRequest, PermanentProviderError, TransientProviderError
from grading.providers.anthropic import AnthropicProvider
from tests.support import scripted
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY

KEYS = [criterion["key"] for criterion in ACADEMIC_ESSAY_RUBRIC["criteria"]]
HAIKU = "claude-haiku-4-5"


@pytest.fixture
def standin(anthropic_standin):
    return anthropic_standin


def grade(text=STRONG_ESSAY):
    request = GradeRequest(
        text=text,
        rubric=ACADEMIC_ESSAY_RUBRIC,
        settings=ESSAY_SETTINGS,
        model=HAIKU,
        document_name="essay.md",
        timeout_s=5.0,
    )
    return AnthropicProvider().grade(request)


def thesis_score_text(literal: str):
    def tool_input(good):
        good["criteria"]["thesis"]["score"] = "@@score@@"
        return json.dumps(good).replace('"@@score@@"', literal)

    return tool_input


def follow_up(standin) -> str:
    (result,) = standin.requests[-1].body["messages"][-1]["content"]
    return result["content"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400", "-6", "25.5"])
def test_a_score_off_the_levels_even_nan_is_repaired_and_the_follow_up_goes_out(standin, literal):
    standin.script(scripted.tool_call(thesis_score_text(literal)))

    result = grade()

    assert len(standin.requests) == 2
    assert "criterion “thesis” scored" in follow_up(standin)
    assert result.criteria[0].score in {25, 19, 12, 6}


@pytest.mark.parametrize("literal", ["NaN", "-Infinity", "1e400"])
def test_a_number_json_cannot_hold_outside_the_scores_does_not_reach_the_stored_reply(standin, literal):
    standin.script(scripted.tool_call(lambda good: json.dumps(good)[:-1] + f', "confidence": {literal}}}'))

    result = grade()

    assert len(standin.requests) == 1
    json.dumps(result.raw, allow_nan=False)  # what PostgreSQL's jsonb accepts


def test_a_criterion_given_twice_in_the_tool_input_is_repaired(standin):
    def tool_input(good):
        twice = json.dumps(good["criteria"]["thesis"] | {"score": 6})
        return json.dumps(good).replace('"thesis": {', f'"thesis": {twice}, "thesis": {{', 1)

    standin.script(scripted.tool_call(tool_input))

    grade()

    assert len(standin.requests) == 2
    assert "criterion “thesis” is given twice" in follow_up(standin)


def test_a_score_as_a_string_and_evidence_as_a_string_are_read_without_a_repair(standin):
    def tool_input(good):
        good["criteria"]["thesis"].update(score="19", evidence="Since 2020, remote work")
        return good

    standin.script(scripted.tool_call(tool_input))

    result = grade()

    assert result.criteria[0].score == 19
    assert result.criteria[0].evidence == [{"quote": "Since 2020, remote work", "found": True}]
    assert len(standin.requests) == 1


def test_the_grade_written_as_json_in_a_text_block_instead_of_the_tool_call_is_read(standin):
    standin.script(
        scripted.blocks(
            lambda good: [{"type": "text", "text": f"Here is the grade:\n```json\n{json.dumps(good)}\n```"}]
        )
    )

    result = grade()

    assert [item.key for item in result.criteria] == KEYS
    assert len(standin.requests) == 1


def test_prose_instead_of_the_tool_call_twice_fails_after_two_calls_naming_it(standin):
    prose = scripted.blocks([{"type": "text", "text": "A thoughtful essay; I would give it a B."}])
    standin.script(prose, prose)

    with pytest.raises(
        PermanentProviderError, match="did not call record_grade; and after one repair"
    ) as failure:
        grade()

    assert len(standin.requests) == 2
    assert failure.value.answered


def test_a_tool_call_cut_off_twice_at_max_tokens_fails_after_two_calls(standin):
    cut = scripted.tool_call({}, stop_reason="max_tokens")
    standin.script(cut, cut)

    with pytest.raises(
        PermanentProviderError, match="cut off at the output token limit; and after one repair"
    ):
        grade()

    first, second = (request.body for request in standin.requests)
    assert second["max_tokens"] == 2 * first["max_tokens"]


def test_a_refusal_fails_at_once_as_an_answer(standin):
    standin.script(scripted.blocks([{"type": "text", "text": "I can't grade this."}], stop_reason="refusal"))

    with pytest.raises(PermanentProviderError, match="refused to grade") as failure:
        grade()

    assert len(standin.requests) == 1
    assert failure.value.answered


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (
            scripted.raw("<!DOCTYPE html><html><title>502 Bad Gateway</title></html>"),
            "text/html.*502 Bad Gateway",
        ),
        (
            scripted.raw(
                '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
                content_type="application/json",
            ),
            "an error.*Overloaded",
        ),
    ],
)
def test_a_page_or_an_error_object_with_http_200_is_the_provider_s_failure(standin, reply, said):
    standin.script(reply)

    with pytest.raises(TransientProviderError, match=said) as failure:
        grade()

    assert not failure.value.answered
    assert len(standin.requests) == 1
