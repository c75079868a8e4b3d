"""The offline grader's features, rubric mapping, learning from exemplars and feedback, on small
made-up texts."""

import re
import threading

import numpy as np
import pytest

from grading.calibration import Scale
from grading.essay import features, grader, model, prior
from grading.essay.features import analyse
from grading.essay.levels import allocate, shares
from grading.essay.plan import plan
from grading.providers import Exemplar, GradeRequest
from grading.providers.builtin import BuiltinProvider
from tests.support.essays import FOUR_TRAITS, story
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY, WEAK_ESSAY


def grade(text, rubric=FOUR_TRAITS, settings=None, exemplars=()):
    request = GradeRequest(
        text=text, rubric=rubric, settings=settings or {}, model="builtin", exemplars=exemplars
    )
    return BuiltinProvider().grade(request)


def misspelt(text):
    return [word for word, _ in analyse(text).misspelt]


# Features


def test_real_words_are_not_misspellings_and_misspellings_are():
    assert misspelt("I won't go and I can't stay. I don’t know. We wont win if we cant try.") == []
    assert misspelt("I did not recieve the letter. It was definately late.") == ["recieve", "definately"]


def test_british_spellings_inflections_and_names_are_not_misspellings():
    text = "The organisations realised their colours were travelling. Mr Okonkwo met Priyanka."
    assert misspelt(text) == []


def test_citation_cues_are_matched_as_words_not_inside_words():
    assert analyse("The internet also helps, and the internet also hurts.").citations == 0
    assert analyse("Smith et al. found this, according to the survey.").citations == 2
    assert analyse("Growth was strong (Bloom et al., 2015) [3].").citations >= 2


def test_linking_words_are_matched_at_word_boundaries():
    essay = analyse(
        "The enthusiast said thus. Then, in addition, we left because it rained; however, I stayed."
    )
    assert essay.connectives == {"thus": 1, "in addition": 1, "because": 1, "however": 1}
    assert analyse("An enthusiastic sincerely thusly unthinkable.").connectives == {}


def test_vocabulary_range_does_not_simply_reward_short_texts_or_repetition():
    varied = analyse(story(16))
    repeated = analyse(" ".join([story(2)] * 8))
    assert varied.value("mattr") > repeated.value("mattr") + 0.2


@pytest.mark.parametrize("count", [30, 120, 399, 400, 900])
def test_mattr_is_the_mean_share_of_distinct_words_in_every_50_word_window(count):
    words = [f"w{(i * 7919) % 37}" for i in range(count)]
    windows = [words[i : i + 50] for i in range(max(count - 49, 1))]
    expected = sum(len(set(window)) / len(window) for window in windows) / len(windows)
    assert features.mattr(words) == pytest.approx(expected)


def test_sentences_keep_their_text_and_abbreviations_do_not_end_them():
    essay = analyse("Dr. Lee came at 3.5 km per hour, e.g. slowly.I waited.\nThen i went home .")
    assert [sentence.text for sentence in essay.sentences] == [
        "Dr. Lee came at 3.5 km per hour, e.g. slowly.",
        "I waited.",
        "Then i went home .",
    ]
    assert essay.value("lowercase_i") > 0
    assert essay.value("spacing") > 0


# The rubric: aspects and levels


def test_criteria_are_matched_to_the_aspect_their_words_name():
    rubric = {
        "criteria": [
            {"key": "analysis", "name": "Analysis and critical thinking", "points": 20},
            {"key": "evidence", "name": "Evidence and support", "points": 20},
            {"key": "style", "name": "Style, grammar and mechanics", "points": 10},
            {"key": "budget", "name": "Budget forecast", "points": 10},
        ]
    }
    aspects = {criterion.key: criterion.aspects for criterion in plan(rubric, {}).criteria}

    assert aspects == {
        "analysis": ("analysis",),
        "evidence": ("evidence",),
        "style": ("conventions", "style"),
        "budget": ("ideas",),
    }


def test_analysis_is_not_scored_by_the_evidence_formula():
    rubric = {
        "criteria": [
            {"key": "analysis", "name": "Analysis and critical thinking", "points": 10},
            {"key": "evidence", "name": "Evidence and support", "points": 10},
        ]
    }
    read = plan(rubric, {})
    analysis, evidence = read.criteria
    base = "Remote work changed offices. Teams met online. Managers set new hours. Staff saved time."
    cited = base + " Output rose 13% (Bloom, 2015) and 20% [3], according to the survey."
    reasoned = base + " This suggests that output rose because staff, therefore, wasted less time."

    def quality(criterion, text):
        essay = analyse(text)
        return read.quality(criterion, read.row(essay), essay)

    assert not np.allclose(analysis.weights, evidence.weights)
    # Citations raise evidence far more than analysis; reasoning raises analysis more.
    assert quality(evidence, cited) - quality(evidence, base) > quality(analysis, cited) - quality(
        analysis, base
    )
    assert quality(analysis, reasoned) - quality(analysis, base) > quality(evidence, reasoned) - quality(
        evidence, base
    )


@pytest.mark.parametrize("text", [story(2), story(8), story(16), STRONG_ESSAY, "Word."])
def test_criterion_scores_land_on_the_rubric_s_levels(text):
    result = grade(text, ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS)
    for item, criterion in zip(result.criteria, ACADEMIC_ESSAY_RUBRIC["criteria"], strict=True):
        assert item.score in {level["points"] for level in criterion["levels"]}
    assert result.score == sum(item.score for item in result.criteria)


def test_without_levels_scores_are_whole_or_half_points():
    rubric = {
        "criteria": [
            {"key": "small", "name": "Ideas", "points": 5},
            {"key": "big", "name": "Style", "points": 40},
        ]
    }
    small, big = grade(story(6), rubric).criteria
    assert small.score * 2 == int(small.score * 2)
    assert big.score == int(big.score)


def test_level_allocation_adds_up_to_the_predicted_total():
    scales = [Scale.steps(0, 3)] * 4
    assert sum(allocate([1.5, 1.5, 1.5, 1.5], scales, 6.0)) == 6
    assert sum(allocate([1.4, 1.4, 1.4, 1.4], scales, 5.6)) == 6
    assert allocate([2.9, 0.2, 1.6, 1.4], scales, 6.1) == [3, 0, 2, 1]
    split = shares([1.0, -1.0], [10, 10], 12.0, slope=2.0)
    assert sum(split) == pytest.approx(12.0)
    assert split[0] > split[1]


# Learning from exemplars


def teacher_exemplars(count, offset=0):
    """A teacher who gives longer, more developed stories more of 0–12."""
    lengths = [2 + (i * 13) // max(count - 1, 1) for i in range(count)]
    return tuple(
        Exemplar(story(n, offset + i), float(min(12, n - 2 + (n > 8)))) for i, n in enumerate(lengths)
    )


def test_a_model_fitted_on_exemplars_ranks_new_essays_as_the_teacher_does():
    exemplars = teacher_exemplars(12)
    long, short = grade(story(14, 5), exemplars=exemplars), grade(story(3, 7), exemplars=exemplars)

    assert long.raw["model"]["method"] == "ridge on exemplars"
    assert long.score > short.score
    # On the teacher's own scale: the teacher gave long stories 10–12 and short ones 0–2.
    assert long.score >= 9
    assert short.score <= 4


def test_predictions_for_exemplars_come_from_models_fitted_without_them(monkeypatch):
    rows = np.vstack([np.arange(len(prior.COLUMNS), dtype=float) * 0.01 * i for i in range(12)])
    bags = [analyse(story(2 + i)).bag for i in range(12)]
    y = np.arange(12, dtype=float)
    seen = []
    original = model.fit

    def spy(z, stems, scores, weights, column):
        seen.append(set(scores.tolist()))
        return original(z, stems, scores, weights, column)

    monkeypatch.setattr(model, "fit", spy)
    model.cross_validated(rows, bags, y, np.ones(len(prior.COLUMNS)) / 10, prior.COLUMNS.index("exemplars"))

    held_out = model.folds(12)
    assert len(seen) == len(held_out)
    for fold, scores in zip(held_out, seen, strict=True):
        assert not {float(y[i]) for i in fold} & scores


def test_exemplar_criterion_scores_train_criterion_models():
    exemplars = tuple(
        Exemplar(e.text, e.score, {"ideas": min(3, e.score // 3), "conventions": 2})
        for e in teacher_exemplars(10)
    )
    result = grade(story(15), exemplars=exemplars)

    assert result.raw["model"]["criteria_learnt"] == ["conventions", "ideas"]
    assert result.criteria[0].score == 3
    assert result.criteria[3].score == 2


def test_too_few_exemplars_grade_by_the_prior():
    result, without = grade(story(8), exemplars=teacher_exemplars(12)[:4]), grade(story(8))
    assert result.raw["model"]["method"] == "prior"
    assert (result.score, result.criteria) == (without.score, without.criteria)


def test_each_exemplar_set_is_fitted_once_even_from_many_threads(monkeypatch):
    calls = []
    original = grader.fit_exemplars

    def counting(plan_, exemplars):
        calls.append(len(exemplars))
        return original(plan_, exemplars)

    monkeypatch.setattr(grader, "fit_exemplars", counting)
    exemplars = teacher_exemplars(9, offset=3)
    results = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(grade(story(4 + i), exemplars=exemplars).score))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # An equal but distinct exemplar set is the same set.
    grade(story(5), exemplars=tuple(Exemplar(e.text, e.score) for e in exemplars))

    assert calls == [9]
    assert len(results) == 8


# Feedback


def quotes(feedback):
    return [quoted.rstrip("…") for quoted in re.findall(r"“([^”]+)”", feedback)]


def test_feedback_quotes_sentences_of_the_document():
    text = "I did not recieve the parcel until monday.\n\nthe wait was long but it tought me patience, which I needed."
    result = grade(text)
    flat = " ".join(text.split())

    quoted = [q for item in result.criteria for q in quotes(item.feedback)] + quotes(result.feedback)
    sentences = [q for q in quoted if len(q.split()) > 3]
    assert sentences
    assert all(q in flat for q in sentences)
    conventions = result.criteria[3].feedback
    assert "“recieve” in “I did not recieve the parcel until monday.”" in conventions
    assert "not starting with a capital, such as “the wait was long" in conventions
    unclosed = grade("The bus was late. We waited in the rain for an hour").criteria[3].feedback
    assert "without closing punctuation: “We waited in the rain for an hour”" in unclosed


def test_feedback_opens_with_the_level_and_its_description():
    feedback = grade(story(12)).criteria[0].feedback
    assert re.match(r"Level \d \(\d of 3\) — Ideas at level \d\. ", feedback)


def test_overall_feedback_names_the_source_of_the_grade():
    assert "no teacher-graded exemplars" in grade(WEAK_ESSAY).feedback
    assert (
        "Graded against 12 teacher-graded exemplars"
        in grade(story(5), exemplars=teacher_exemplars(12)).feedback
    )


def test_feature_names_and_values_line_up():
    essay = analyse(story(10))
    assert len(essay.values) == len(features.NAMES)
    assert prior.COLUMNS[: len(features.NAMES)] == features.NAMES
    assert essay.value("length") == pytest.approx(np.log(essay.word_count))
