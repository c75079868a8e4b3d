"""Exemplars and calibration: a batch's grades learn the teacher's scale from the reviews marked as exemplars."""

import io
import json
import zipfile

import pytest

from grading.exemplars import batch_exemplars, for_document
from grading.models import Exemplar, GradingJob, GradingResult, JobStatus
from templates_app.models import BatchTemplate
from tests.api_support import client_for, share
from tests.conftest import make_batch, make_document, prebuilt

pytestmark = pytest.mark.django_db

# Two criteria on levels 0–3 and 0–5: a total of 0–8.
RUBRIC = {
    "criteria": [
        {
            "key": "ideas",
            "name": "Ideas",
            "points": 3,
            "levels": [{"points": p, "label": f"level {p}"} for p in range(4)],
        },
        {
            "key": "conventions",
            "name": "Conventions",
            "points": 5,
            "levels": [{"points": p, "label": f"level {p}"} for p in (0, 1, 3, 5)],
        },
    ]
}


def graded_batch(owner, raw_scores: list[tuple[float, float]], template=None):
    """A completed batch whose builtin results have these (ideas, conventions) raw scores: on
    RUBRIC set by the batch, or on the given template's (which should be RUBRIC)."""
    if template is None:
        batch = make_batch(owner, jobs=0, settings={"rubric": RUBRIC})
    else:
        batch = make_batch(owner, template, jobs=0)
    documents = [make_document(owner, f"essay-{i}.txt", f"Essay number {i}.") for i in range(len(raw_scores))]
    batch.add_documents(documents)
    for job, (ideas, conventions) in zip(batch.jobs.order_by("pk"), raw_scores, strict=True):
        GradingResult.objects.create(
            job=job,
            provider="builtin",
            model="builtin-v1",
            score=ideas + conventions,
            max_score=8,
            criteria=[
                {"key": "ideas", "name": "Ideas", "score": ideas, "max_score": 3, "feedback": ""},
                {
                    "key": "conventions",
                    "name": "Conventions",
                    "score": conventions,
                    "max_score": 5,
                    "feedback": "",
                },
            ],
        )
    GradingJob.objects.filter(batch=batch).update(status=JobStatus.COMPLETED)
    return batch


def review_as_exemplar(user, job, score, criteria=None):
    body = {"score": score, "exemplar": True}
    if criteria is not None:
        body["criteria"] = criteria
    return client_for(user).post(f"/api/jobs/{job.pk}/review", body, format="json")


RAW = [(1, 3), (2, 3), (3, 5), (0, 1), (2, 5), (1, 1), (3, 3), (2, 1), (1, 5), (3, 1), (0, 3), (2, 3)]


def test_a_teacher_who_grades_two_points_harsher_gets_calibrated_grades_that_agree(owner):
    batch = graded_batch(owner, RAW)
    jobs = list(batch.jobs.order_by("pk").select_related("result"))
    for job in jobs[:8]:
        assert review_as_exemplar(owner, job, max(job.result.score - 2, 0)).status_code == 200

    response = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")

    assert response.status_code == 200, response.json()
    (fitted,) = response.json()["models"]
    assert fitted["exemplars"] == 8 and fitted["method"] is not None
    for job in jobs[8:]:
        result = GradingResult.objects.get(job=job)
        assert result.raw_score == job.result.score
        assert result.score == max(job.result.score - 2, 0)


def test_a_grader_already_on_the_teachers_scale_keeps_its_scores_rather_than_a_worse_map(owner):
    # The teacher agrees with the provider on every exemplar but one: a line fitted on
    # them, each left out in turn, agrees less than the provider's own scores do.
    batch = graded_batch(owner, RAW)
    jobs = list(batch.jobs.order_by("pk").select_related("result"))
    for index, job in enumerate(jobs[:8]):
        score = job.result.score + (1 if index == 0 else 0)
        assert review_as_exemplar(owner, job, score).status_code == 200

    (fitted,) = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate").json()["models"]

    assert fitted["method"] == "identity"
    assert fitted["qwk_after"] == fitted["qwk_before"] > 0.9
    assert "a linear map fitted on them would at" in fitted["note"]
    for job in jobs:
        result = GradingResult.objects.get(job=job)
        assert (result.raw_score, result.score) == (job.result.score, job.result.score)
        assert result.is_calibrated


def test_calibrated_scores_are_shown_by_the_api_with_the_providers_score_kept(owner):
    batch = graded_batch(owner, RAW)
    for job in batch.jobs.order_by("pk")[:6]:
        review_as_exemplar(owner, job, max(job.result.score - 2, 0))
    client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")

    last = batch.jobs.order_by("pk").last()
    body = client_for(owner).get(f"/api/jobs/{last.pk}").json()["result"]

    assert body["is_calibrated"] is True
    assert (body["raw_score"], body["score"]) == (5, 3)


def test_criterion_scores_land_on_the_rubrics_levels_when_the_teacher_scores_criteria(owner):
    batch = graded_batch(owner, RAW)
    for job in batch.jobs.order_by("pk")[:8]:
        ideas, conventions = (item["score"] for item in job.result.criteria)
        teacher = [{"key": "ideas", "score": max(ideas - 1, 0)}, {"key": "conventions", "score": conventions}]
        assert review_as_exemplar(owner, job, None, teacher).status_code == 200

    client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")

    for result in GradingResult.objects.filter(job__batch=batch):
        by_key = {item["key"]: item["score"] for item in result.criteria}
        assert by_key["ideas"] in {0, 1, 2, 3}
        assert by_key["conventions"] in {0, 1, 3, 5}
        assert result.score == by_key["ideas"] + by_key["conventions"]


def test_with_too_few_exemplars_no_map_is_fitted_and_scores_stay_the_providers(owner):
    batch = graded_batch(owner, RAW)
    for job in batch.jobs.order_by("pk")[:3]:
        review_as_exemplar(owner, job, 0)

    calibration = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate").json()

    assert calibration["models"][0]["method"] is None
    assert calibration["models"][0]["qwk_after"] is None
    assert not GradingResult.objects.filter(job__batch=batch, raw_score__isnull=False).exists()


def test_the_agreement_shown_is_cross_validated_not_scored_on_the_fitted_exemplars(owner):
    # The teacher's scores follow no pattern the provider's could predict: a map
    # fitted on all of them still fits them somewhat, but left-out exemplars do not.
    batch = graded_batch(owner, RAW)
    teacher = [8, 0, 4, 7, 1, 6, 2, 5, 3, 8, 0, 4]
    for job, score in zip(batch.jobs.order_by("pk"), teacher, strict=True):
        review_as_exemplar(owner, job, score)

    fitted = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate").json()["models"][0]

    assert fitted["qwk_after"] is None or fitted["qwk_after"] < 0.3


def test_withdrawing_an_exemplar_review_takes_the_exemplar_out_and_recalibrating_restores(owner):
    batch = graded_batch(owner, RAW)
    jobs = list(batch.jobs.order_by("pk"))
    for job in jobs[:6]:
        review_as_exemplar(owner, job, max(job.result.score - 2, 0))
    client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")
    for job in jobs[:6]:
        assert client_for(owner).delete(f"/api/jobs/{job.pk}/review").status_code == 200

    client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")

    assert not Exemplar.objects.filter(batch=batch).exists()
    assert not GradingResult.objects.filter(job__batch=batch, raw_score__isnull=False).exists()
    assert GradingResult.objects.get(job=jobs[-1]).score == 5


def test_a_review_without_the_tick_is_no_exemplar(owner):
    batch = graded_batch(owner, RAW[:2])
    job = batch.jobs.order_by("pk").first()

    client_for(owner).post(f"/api/jobs/{job.pk}/review", {"score": 2}, format="json")

    assert not Exemplar.objects.exists()
    assert GradingResult.objects.get(job=job).is_exemplar is False


def test_a_viewer_can_neither_mark_an_exemplar_nor_calibrate(owner, colleague):
    batch = graded_batch(owner, RAW[:2])
    share(batch, colleague, "view")
    job = batch.jobs.order_by("pk").first()

    assert review_as_exemplar(colleague, job, 1).status_code == 403
    assert client_for(colleague).post(f"/api/batches/{batch.pk}/calibrate").status_code == 403
    assert not Exemplar.objects.exists()


def rubric_template(owner) -> BatchTemplate:
    settings = {**prebuilt("academic-essay").default_settings, "rubric": RUBRIC}
    return BatchTemplate.objects.create(
        name="Two traits", slug="two-traits", default_settings=settings, owner=owner
    )


def test_a_batch_grades_with_its_templates_exemplars_and_its_own_but_never_the_document_itself(owner):
    batch = graded_batch(owner, RAW[:3], template=rubric_template(owner))
    jobs = list(batch.jobs.order_by("pk").select_related("document"))
    template_document = make_document(owner, "model-answer.txt", "A model answer.")
    Exemplar.objects.create(template=batch.template, document=template_document, score=8, owner=owner)
    review_as_exemplar(owner, jobs[0], 6)

    exemplars = batch_exemplars(batch.pk)

    assert sorted(e.score for _, e in exemplars) == [6, 8]
    assert [e.text for e in for_document(exemplars, jobs[0].document_id)] == ["A model answer."]
    assert len(for_document(exemplars, jobs[1].document_id)) == 2


def test_a_batch_that_sets_its_own_rubric_does_not_learn_from_its_templates_exemplars(owner):
    batch = graded_batch(owner, RAW[:3])  # RUBRIC (0–8) over the template's 0–100 essay rubric
    template_document = make_document(owner, "model-answer.txt", "A model answer.")
    Exemplar.objects.create(template=batch.template, document=template_document, score=80, owner=owner)
    review_as_exemplar(owner, batch.jobs.order_by("pk").first(), 6)

    assert [e.score for _, e in batch_exemplars(batch.pk)] == [6]


def test_the_review_page_ticks_a_review_as_exemplar_and_the_batch_page_calibrates(owner):
    batch = graded_batch(owner, RAW)
    jobs = list(batch.jobs.order_by("pk").select_related("result"))
    client = client_for(owner)
    client.force_login(owner)
    for job in jobs[:6]:
        response = client.post(
            f"/batches/{batch.pk}/jobs/{job.pk}", {"score": max(job.result.score - 2, 0), "exemplar": "on"}
        )
        assert response.status_code == 302
    assert Exemplar.objects.filter(batch=batch).count() == 6

    response = client.post(f"/batches/{batch.pk}/calibrate", follow=True)

    page = response.content.decode()
    assert "Calibrated from 6 exemplar(s)" in page
    assert "After (cross-validated)" in page
    assert GradingResult.objects.get(job=jobs[-1]).score == 3


def test_a_viewer_gets_no_calibrate_button_and_a_403_when_posting(owner, colleague):
    batch = graded_batch(owner, RAW[:2])
    share(batch, colleague, "view")
    client = client_for(colleague)
    client.force_login(colleague)

    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert "Calibration to your scale" in page
    assert f"/batches/{batch.pk}/calibrate" not in page
    assert client.post(f"/batches/{batch.pk}/calibrate").status_code == 403


def test_analytics_and_the_export_say_the_scores_are_calibrated(owner):
    batch = graded_batch(owner, RAW)
    for job in batch.jobs.order_by("pk")[:6]:
        review_as_exemplar(owner, job, max(job.result.score - 2, 0))
    client = client_for(owner)
    assert client.get(f"/api/batches/{batch.pk}/analytics").json()["calibrated"] is False

    client.post(f"/api/batches/{batch.pk}/calibrate")

    assert client.get(f"/api/batches/{batch.pk}/analytics").json()["calibrated"] is True
    archive = b"".join(client.get(f"/api/batches/{batch.pk}/export").streaming_content)
    with zipfile.ZipFile(io.BytesIO(archive)) as exported:
        assert "calibrated to the teacher's scale" in exported.read("README.txt").decode()
        last = GradingResult.objects.filter(job__batch=batch).order_by("job_id").last()
        (result_name,) = [n for n in exported.namelist() if n.endswith(f"-{last.job_id}/result.json")]
        result = json.loads(exported.read(result_name))
        assert (result["calibrated"], result["raw_score"], result["score"]) == (True, 5, 3)


def test_grades_that_end_after_a_calibration_are_calibrated_when_the_batch_finishes_again(owner):
    # A retry: the batch was calibrated, then one job was graded again; as the batch finishes
    # again, that grade joins the teacher's scale with the rest instead of keeping the provider's.
    from batches.models import JobBatch
    from grading.statuses import BatchStatus

    batch = graded_batch(owner, RAW)
    jobs = list(batch.jobs.order_by("pk").select_related("result"))
    for job in jobs[:8]:
        review_as_exemplar(owner, job, max(job.result.score - 2, 0))
    assert client_for(owner).post(f"/api/batches/{batch.pk}/calibrate").status_code == 200
    retried = jobs[-1]
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)
    GradingJob.objects.filter(pk=retried.pk).update(status=JobStatus.QUEUED)
    GradingResult.objects.filter(job=retried).update(score=5, raw_score=None, raw_criteria=[], criteria=[])
    GradingJob.objects.filter(pk=retried.pk).update(status=JobStatus.COMPLETED)

    assert JobBatch.objects.get(pk=batch.pk).finalize()

    result = GradingResult.objects.get(job=retried)
    assert (result.raw_score, result.score) == (5, 3)
