"""The offline grader on rubrics and texts unlike its development essays: bands that start at 1,
a holistic 2–12 scale, criteria of mixed shapes, exemplars that all share one score, answers of
one line, very long essays, accented words and other languages."""

import pytest

from grading.essay.plan import plan
from grading.providers import Exemplar, GradeRequest, PermanentProviderError
from grading.providers.builtin import BuiltinProvider
from tests.support.essays import story


def band(low: int, high: int, key: str = "overall", name: str = "Overall impression") -> dict:
    return {
        "key": key,
        "name": name,
        "points": high,
        "levels": [
            {"points": p, "label": f"Band {p}", "descriptor": f"Writing at band {p}."}
            for p in range(low, high + 1)
        ],
    }


def grade(text, criteria, exemplars=(), name=""):
    request = GradeRequest(
        text=text,
        rubric={"criteria": criteria},
        settings={},
        model="builtin",
        exemplars=tuple(exemplars),
        document_name=name,
    )
    return BuiltinProvider().grade(request)


ESSAYS = [story(count, offset=count) for count in (1, 3, 5, 8, 12, 16, 24)]


@pytest.mark.parametrize("text", ESSAYS)
def test_a_band_from_1_to_6_gives_the_share_of_its_range_a_band_from_0_to_5_does(text):
    from_zero = grade(text, [band(0, 5)]).score
    from_one = grade(text, [band(1, 6)]).score

    assert from_one == from_zero + 1


def test_a_holistic_2_to_12_scale_learnt_from_exemplars_stays_on_it_and_keeps_their_order():
    exemplars = [Exemplar(story(2 + 2 * i, offset=i), float(2 + i)) for i in range(11)]

    scores = [grade(story(count, offset=5), [band(2, 12)], exemplars).score for count in (2, 10, 22)]

    assert all(score in range(2, 13) for score in scores)
    assert scores == sorted(scores) and scores[0] < scores[-1]


def test_criteria_of_mixed_shapes_each_land_on_their_own_scale():
    criteria = [
        band(1, 4, "ideas", "Ideas"),
        {"key": "budget", "name": "Budget forecast", "points": 10},
        {
            "key": "conventions",
            "name": "Conventions",
            "points": 10,
            "levels": [{"points": p, "label": str(p)} for p in (0, 5, 10)],
        },
    ]

    for text in ESSAYS:
        result = grade(text, criteria)
        ideas, budget, conventions = (item.score for item in result.criteria)
        assert ideas in {1, 2, 3, 4}
        assert budget * 2 == int(budget * 2) and 0 <= budget <= 10
        assert conventions in {0, 5, 10}
        assert result.score == ideas + budget + conventions


def test_exemplars_that_all_share_one_score_set_the_level_and_the_features_keep_the_order():
    exemplars = [Exemplar(story(6 + i, offset=i), 5.0) for i in range(8)]

    results = [grade(text, [band(1, 6)], exemplars) for text in ESSAYS]
    prior = [grade(text, [band(1, 6)]).score for text in ESSAYS]
    scores = [result.score for result in results]

    assert scores == sorted(scores) and scores[0] < scores[-1]  # not every essay a 5
    assert sum(scores) > sum(prior)  # lifted toward the exemplars' 5
    assert grade(story(9, offset=3), [band(1, 6)], exemplars).score in {4, 5, 6}
    assert results[0].raw["model"]["method"] == "prior at the exemplars' level"
    assert "at the level of 8 teacher-graded exemplars" in results[0].feedback


def test_an_empty_exemplar_set_grades_by_the_prior():
    result = grade(ESSAYS[3], [band(1, 6)], exemplars=())

    assert result.raw["model"]["method"] == "prior"
    assert result.score in range(1, 7)


def test_a_one_line_answer_without_a_full_stop_is_graded_as_its_words():
    result = grade("Patience means waiting without complaining", [band(0, 5)])

    assert result.raw["features"]["word_count"] == 5
    assert "on 5 words" in result.feedback


def test_a_text_without_words_is_a_permanent_error_naming_the_document():
    with pytest.raises(PermanentProviderError, match="“sums.txt” has no words the builtin grader can read"):
        grade("1 + 2 = 3\n\n4 × 5 = 20", [band(0, 5)], name="sums.txt")


def test_a_very_long_essay_lands_on_the_levels():
    text = "\n\n".join(story(16, offset=i) for i in range(40))  # about 7,000 words

    result = grade(text, [band(1, 6), {"key": "style", "name": "Style", "points": 4}])

    assert result.raw["features"]["word_count"] > 6000
    assert result.criteria[0].score in range(1, 7)
    assert result.criteria[1].score * 2 == int(result.criteria[1].score * 2)


def test_accented_english_words_are_words_not_misspellings():
    result = grade(
        "The naïve tourist left her résumé at the café. Her fiancé broke the piñata.", [band(0, 5)]
    )

    assert result.raw["features"]["likely_misspellings"] == 0
    assert "spelling error" not in result.feedback


def test_a_text_in_another_language_is_graded_with_a_warning_that_says_so():
    german = (
        "Das Warten fällt mir schwer, aber ich übe jeden Tag Geduld. Meine Großmutter sagt, dass gute "
        "Dinge zu denen kommen, die warten können. Deshalb warte ich ruhig auf den Frühling."
    )

    result = grade(german, [band(0, 5)])

    assert result.raw["features"]["english_word_share"] < 0.5
    assert result.feedback.startswith("Only ")
    assert "the offline grader measures English writing" in result.feedback
    assert "Only " not in grade(ESSAYS[4], [band(0, 5)]).feedback


@pytest.mark.parametrize("name", ["Overall", "Holistic score", "Writing quality", "Overall impression"])
def test_a_criterion_named_as_the_whole_of_the_writing_is_every_general_aspect_not_words_to_find(name):
    (criterion,) = plan({"criteria": [band(1, 6, name=name)]}, {}).criteria

    assert criterion.aspects == ("ideas", "organisation", "style", "conventions")
    assert criterion.terms == ()
