"""Exemplars too few or too noisy to learn from still set the teacher's scale: grades keep the
teacher's spread rather than bunching at the exemplars' mean."""

from grading.providers import Exemplar, GradeRequest
from grading.providers.builtin import BuiltinProvider
from tests.support.essays import FOUR_TRAITS, story

# Ten stories of 2 to 14 sentences, scored by a teacher whose scores have nothing to do with
# how developed the stories are.
LENGTHS = (2, 3, 5, 6, 7, 9, 10, 11, 13, 14)
SCORES = (9.0, 1.0, 12.0, 4.0, 8.0, 3.0, 11.0, 6.0, 2.0, 10.0)
NOISY = tuple(
    Exemplar(story(n, 40 + i), score) for i, (n, score) in enumerate(zip(LENGTHS, SCORES, strict=True))
)


def grade(text, exemplars):
    request = GradeRequest(text=text, rubric=FOUR_TRAITS, settings={}, model="builtin", exemplars=exemplars)
    return BuiltinProvider().grade(request)


def test_noisy_exemplars_fall_back_to_the_prior_on_the_teacher_s_scale():
    long, short = grade(story(15, 3), NOISY), grade(story(2, 9), NOISY)

    assert long.raw["model"]["method"] == "prior on the exemplars' scale"
    assert long.score > short.score


def test_grades_learnt_from_noisy_exemplars_spread_like_the_teacher_s():
    scores = [grade(story(n, 70 + n), NOISY).score for n in (1, 2, 4, 8, 12, 16)]

    # The teacher used 1–12; a least-squares fit that learnt nothing would give every story
    # about the exemplars' mean of 6.6.
    assert max(scores) - min(scores) >= 6
