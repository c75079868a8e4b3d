"""Calibration on rubrics unlike the four 0–3 traits: a holistic band from 1 to 6, and exemplar
sets a map cannot be learnt from, which say why instead of "too few exemplars"."""

import pytest

from grading.models import GradingJob, GradingResult, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, make_document
from tests.test_batch_calibration import review_as_exemplar

pytestmark = pytest.mark.django_db

BAND = {
    "criteria": [
        {
            "key": "overall",
            "name": "Overall",
            "points": 6,
            "levels": [{"points": p, "label": f"band {p}"} for p in range(1, 7)],
        }
    ]
}


def band_batch(owner, raw_scores: list[float]):
    """A completed batch whose builtin results give these holistic 1–6 scores."""
    batch = make_batch(owner, jobs=0, settings={"rubric": BAND})
    batch.add_documents(
        [make_document(owner, f"essay-{i}.txt", f"Essay {i}.") for i in range(len(raw_scores))]
    )
    for job, raw in zip(batch.jobs.order_by("pk"), raw_scores, strict=True):
        GradingResult.objects.create(
            job=job,
            provider="builtin",
            model="builtin-v1",
            score=raw,
            max_score=6,
            criteria=[{"key": "overall", "name": "Overall", "score": raw, "max_score": 6, "feedback": ""}],
        )
    GradingJob.objects.filter(batch=batch).update(status=JobStatus.COMPLETED)
    return list(batch.jobs.order_by("pk").select_related("result")), batch


def calibrate(owner, batch) -> dict:
    response = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_harsher_teacher_on_a_1_to_6_band_gets_grades_on_the_band_never_0(owner):
    jobs, batch = band_batch(owner, [3, 4, 5, 6, 3, 4, 5, 6, 1, 2])
    for job in jobs[:8]:
        assert review_as_exemplar(owner, job, job.result.score - 2).status_code == 200

    (fitted,) = calibrate(owner, batch)["models"]

    assert fitted["method"] == "linear"
    for job in jobs[8:]:
        result = GradingResult.objects.get(job=job)
        assert result.score == 1  # the map says below 1; the band's lowest is 1
        assert result.criteria[0]["score"] == result.score


def test_the_one_criterion_of_a_holistic_rubric_follows_the_calibrated_total(owner):
    jobs, batch = band_batch(owner, [2, 3, 4, 5, 2, 3, 4, 5, 6, 6])
    for job in jobs[:8]:
        review_as_exemplar(owner, job, job.result.score - 1)

    calibrate(owner, batch)

    for job in jobs:
        result = GradingResult.objects.get(job=job)
        assert result.is_calibrated
        assert result.criteria[0]["score"] == result.score
        assert result.raw_criteria[0]["score"] == job.result.score
    assert GradingResult.objects.get(job=jobs[-1]).score == 5


def test_exemplars_that_all_share_one_score_fit_no_map_and_say_why(owner):
    jobs, batch = band_batch(owner, [2, 3, 4, 5, 6, 3, 4])
    for job in jobs[:6]:
        review_as_exemplar(owner, job, 4)

    (fitted,) = calibrate(owner, batch)["models"]

    assert fitted["method"] is None
    assert fitted["reason"] == "every exemplar has your score 4: nothing to learn a spread from"
    assert GradingResult.objects.get(job=jobs[-1]).score == 4  # the provider's, unchanged
    client = client_for(owner)
    client.force_login(owner)
    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert "none: every exemplar has your score 4" in page


def test_a_grader_whose_scores_fall_as_the_teachers_rise_fits_no_map_and_says_why(owner):
    jobs, batch = band_batch(owner, [1, 2, 3, 4, 5, 6, 3])
    for job in jobs[:6]:
        review_as_exemplar(owner, job, 7 - job.result.score)

    (fitted,) = calibrate(owner, batch)["models"]

    assert fitted["method"] is None
    assert fitted["reason"] == "the grader's scores do not rise with yours"


def test_too_few_exemplars_say_how_many_are_needed(owner):
    jobs, batch = band_batch(owner, [1, 2, 3, 4])
    for job in jobs[:3]:
        review_as_exemplar(owner, job, 3)

    (fitted,) = calibrate(owner, batch)["models"]

    assert fitted["reason"] == "too few exemplars (at least 5)"


def test_calibrating_a_batch_with_no_completed_grade_is_a_409_with_a_sentence(owner):
    batch = make_batch(owner, jobs=2, settings={"rubric": BAND})

    response = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "The batch has no completed grades to calibrate yet: grade it first.",
        "code": "nothing_to_calibrate",
    }


def test_the_calibrate_button_says_why_nothing_was_calibrated(owner):
    jobs, batch = band_batch(owner, [2, 3, 4, 5, 6, 3, 4])
    for job in jobs[:6]:
        review_as_exemplar(owner, job, 4)
    client = client_for(owner)
    client.force_login(owner)

    page = client.post(f"/batches/{batch.pk}/calibrate", follow=True).content.decode()

    assert "Not calibrated (6 exemplar(s)): every exemplar has your score 4" in page
    empty = make_batch(owner, jobs=1, settings={"rubric": BAND})
    page = client.post(f"/batches/{empty.pk}/calibrate", follow=True).content.decode()
    assert "Not calibrated: The batch has no completed grades to calibrate yet" in page
