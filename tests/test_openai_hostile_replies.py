"""The openai provider reads what real models and gateways send back, repairs what it can once, and blames rightly.

Each reply is scripted into the Chat Completions stand-in on loopback and goes through the
real SDK and sockets; the stand-in records what was sent.
"""

import json

import pytest

from grading.providers import GradeRequest, PermanentProviderError, TransientProviderError
from grading.providers.openai import OpenAIProvider
from grading.providers.prompting import MAX_QUOTE_CHARS, MAX_QUOTES
from tests.support import scripted
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY

KEYS = [criterion["key"] for criterion in ACADEMIC_ESSAY_RUBRIC["criteria"]]


def grade(text=STRONG_ESSAY):
    request = GradeRequest(
        text=text,
        rubric=ACADEMIC_ESSAY_RUBRIC,
        settings=ESSAY_SETTINGS,
        model="gpt-4o-mini",
        document_name="essay.txt",
        timeout_s=5.0,
    )
    return OpenAIProvider().grade(request)


def with_thesis(**fields):
    """The good grade's JSON with the thesis criterion's fields replaced."""

    def content(good):
        good["criteria"]["thesis"].update(fields)
        return json.dumps(good)

    return content


def thesis_score_text(literal: str):
    """The good grade's JSON with the thesis score written as this literal, as it came on the wire."""

    def content(good):
        good["criteria"]["thesis"]["score"] = "@@score@@"
        return json.dumps(good).replace('"@@score@@"', literal)

    return content


def repair_of(standin) -> str:
    return standin.requests[-1].body["messages"][-1]["content"]


# --- replies that are read as they are ---------------------------------------------------------


def test_json_in_a_code_fence_with_prose_before_and_after_is_read_without_a_repair(standin):
    standin.script(
        scripted.chat(lambda good: f"Here is my grade:\n```json\n{json.dumps(good)}\n```\nI hope this helps!")
    )

    result = grade()

    assert [item.key for item in result.criteria] == KEYS
    assert len(standin.requests) == 1


def test_json_after_prose_without_a_fence_is_read_without_a_repair(standin):
    standin.script(scripted.chat(lambda good: f"Sure. {json.dumps(good)}"))

    grade()

    assert len(standin.requests) == 1


def test_an_extra_criterion_the_rubric_lacks_is_ignored_and_adds_no_points(standin):
    def content(good):
        good["criteria"]["bonus"] = {"evidence": [], "reasoning": "Extra.", "score": 100}
        return json.dumps(good)

    standin.script(scripted.chat(content))

    result = grade()

    assert [item.key for item in result.criteria] == KEYS
    assert result.max_score == 100
    assert result.score == sum(item.score for item in result.criteria) <= 100


@pytest.mark.parametrize("score", ['"19"', "19.0", '" 19 "'])
def test_a_level_given_as_a_string_or_a_float_is_read_as_that_level(standin, score):
    standin.script(scripted.chat(thesis_score_text(score)))

    result = grade()

    assert result.criteria[0].score == 19
    assert len(standin.requests) == 1


def test_evidence_given_as_one_string_is_read_as_one_quote(standin):
    standin.script(scripted.chat(with_thesis(evidence="Since 2020, remote work has moved from a perk")))

    result = grade()

    assert result.criteria[0].evidence == [
        {"quote": "Since 2020, remote work has moved from a perk", "found": True}
    ]
    assert len(standin.requests) == 1


def test_fifty_quotes_keep_only_the_first_few(standin):
    standin.script(scripted.chat(with_thesis(evidence=["Since 2020"] * 50)))

    result = grade()

    assert len(result.criteria[0].evidence) == MAX_QUOTES


def test_a_quote_of_ten_thousand_characters_is_checked_whole_and_kept_short(standin):
    long_text = STRONG_ESSAY + " filler" * 2000
    quote = long_text[-10_000:]
    standin.script(scripted.chat(with_thesis(evidence=[quote, "x" * 10_000])))

    result = grade(text=long_text)

    found, fabricated = result.criteria[0].evidence
    assert found["found"] is True and fabricated["found"] is False
    assert len(found["quote"]) <= MAX_QUOTE_CHARS and found["quote"].endswith("…")
    assert len(fabricated["quote"]) <= MAX_QUOTE_CHARS


TYPOGRAPHIC_DOCUMENT = (
    "She said “it’s done” — and left... The ﬁnal figure was 13%.\n"
    "The café\u00a0opened   at\tnine; it was so-called ‘modern’."
)


@pytest.mark.parametrize(
    "quote",
    [
        'She said "it\'s done" - and left…',  # straight quotes, hyphen, one-character ellipsis
        "she said “it’s done” – and left",  # case and an en dash
        "The final figure was 13%",  # the document's PDF ligature ﬁ
        "The cafe\u0301 opened at nine",  # decomposed é, one space where the document has others
        "The café opened\nat nine; it was so-called 'modern'",
        "She said … and left",  # an elision of the words between
    ],
)
def test_a_quote_with_other_typography_or_spacing_than_the_document_is_found(standin, quote):
    standin.script(scripted.chat(with_thesis(evidence=[quote])))

    result = grade(text=TYPOGRAPHIC_DOCUMENT)

    assert result.criteria[0].evidence == [{"quote": quote, "found": True}]


@pytest.mark.parametrize("quote", ["and left … She said", "The … the", "She … it"])
def test_an_elision_is_found_only_when_its_parts_of_two_words_or_more_come_in_order(standin, quote):
    standin.script(scripted.chat(with_thesis(evidence=[quote])))

    result = grade(text=TYPOGRAPHIC_DOCUMENT)

    assert result.criteria[0].evidence[0]["found"] is False


RTL_DOCUMENT = "My grandmother wrote \u200fשלום עולם\u200f and “مرحبا بالعالم” 🎉👩\u200d🔬 in her letters."


@pytest.mark.parametrize(
    "quote", ["שלום עולם", "مرحبا بالعالم", "🎉👩\u200d🔬 in her letters", "wrote שלום עולם and"]
)
def test_quotes_in_right_to_left_scripts_or_with_emoji_are_found(standin, quote):
    standin.script(scripted.chat(with_thesis(evidence=[quote])))

    result = grade(text=RTL_DOCUMENT)

    assert result.criteria[0].evidence == [{"quote": quote, "found": True}]


# --- replies that earn one repair ------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "named"),
    [
        ("25.5", "scored 25.5"),
        ("-6", "scored -6"),
        ("13", "scored 13"),
        ("NaN", "scored nan"),
        ("Infinity", "scored inf"),
        ("-Infinity", "scored -inf"),
        ('"nineteen"', "has no numeric score"),
        ("null", "has no numeric score"),
    ],
)
def test_a_score_that_is_not_one_of_the_levels_is_repaired_once_naming_it(standin, literal, named):
    standin.script(scripted.chat(thesis_score_text(literal)))

    result = grade()

    assert len(standin.requests) == 2
    assert "“thesis”" in repair_of(standin) and named in repair_of(standin)
    assert result.criteria[0].score in {25, 19, 12, 6}


def test_a_criterion_given_twice_is_repaired_rather_than_one_taken_at_random(standin):
    def content(good):
        twice = json.dumps(good["criteria"]["thesis"] | {"score": 6})
        return json.dumps(good).replace('"thesis": {', f'"thesis": {twice}, "thesis": {{', 1)

    standin.script(scripted.chat(content))

    grade()

    assert len(standin.requests) == 2
    assert "criterion “thesis” is given twice" in repair_of(standin)


def test_the_criteria_object_given_twice_is_repaired(standin):
    def content(good):
        other = json.dumps(good["criteria"])
        return json.dumps(good).replace('{"criteria": ', f'{{"criteria": {other}, "criteria": ', 1)

    standin.script(scripted.chat(content))

    grade()

    assert len(standin.requests) == 2
    assert "the “criteria” object is given twice" in repair_of(standin)


def test_a_reply_cut_off_mid_string_is_asked_again_with_twice_the_room(standin):
    standin.script(scripted.chat(lambda good: json.dumps(good)[:150], finish_reason="length"))

    result = grade()

    first, second = (request.body for request in standin.requests)
    assert second["max_completion_tokens"] == 2 * first["max_completion_tokens"]
    assert len(result.criteria) == len(KEYS)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            scripted.chat(lambda good: json.dumps(good)[:150], finish_reason="length"),
            "cut off at the output token limit",
        ),
        (scripted.chat(lambda good: json.dumps({"grade": 85, "comments": "Good."})), "no “criteria” object"),
        (scripted.chat(with_thesis(score=25.5)), "criterion “thesis” scored 25.5"),
        (scripted.chat(with_thesis(evidence={"quote": "x"})), "criterion “thesis” gives its evidence as"),
        (
            scripted.chat(lambda good: json.dumps(good).replace('"thesis"', '"thesis_x"', 1)),
            "criterion “thesis” is missing",
        ),
        (scripted.chat(""), "the reply is empty"),
    ],
)
def test_a_second_reply_still_malformed_fails_naming_what_was_wrong_after_two_calls(standin, reply, reason):
    standin.script(reply, reply)

    with pytest.raises(PermanentProviderError) as failure:
        grade()

    assert len(standin.requests) == 2
    assert str(failure.value).count(reason) == 2
    assert "after one repair" in str(failure.value)


# --- replies that are not a grade --------------------------------------------------------------


def test_an_empty_content_with_a_refusal_fails_at_once_as_an_answer(standin):
    standin.script(scripted.chat(None, refusal="I can't help grade this document."))

    with pytest.raises(
        PermanentProviderError, match="refused to grade the document: I can't help"
    ) as failure:
        grade()

    assert len(standin.requests) == 1
    assert failure.value.answered  # the provider is up: a probe that gets it closes the circuit


def test_a_reply_stopped_by_a_content_filter_fails_at_once_as_an_answer(standin):
    standin.script(scripted.chat(None, finish_reason="content_filter"))

    with pytest.raises(PermanentProviderError, match="content filter stopped the reply") as failure:
        grade()

    assert len(standin.requests) == 1
    assert failure.value.answered


def test_an_html_page_with_http_200_is_the_provider_s_failure_not_the_reply_s(standin):
    standin.script(scripted.raw("<html><head><title>Gateway login</title></head><body>Sign in</body></html>"))

    with pytest.raises(TransientProviderError, match="text/html.*Gateway login") as failure:
        grade()

    assert not failure.value.answered
    assert len(standin.requests) == 1
