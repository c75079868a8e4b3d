"""Calibration at awkward moments: while the batch grades, after a withdrawn review, a model
without exemplars, a template exemplar that is also one of the batch's documents."""

import pytest

from batches.models import BatchStatus
from grading.models import Exemplar, GradingResult, JobStatus
from tests.api_support import client_for
from tests.conftest import set_status
from tests.review_support import CALIBRATION_RAW, calibrated_comparison_batch, comparison_batch

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.PAUSED])
def test_a_batch_with_jobs_still_to_grade_is_not_calibrated_and_says_so(owner, client, status):
    batch, jobs = calibrated_comparison_batch(owner)
    before = dict(GradingResult.objects.values_list("pk", "score"))
    set_status(batch, status)

    response = client_for(owner).post(f"/api/batches/{batch.pk}/calibrate")

    assert response.status_code == 409
    assert response.json()["detail"] == (
        "The batch still has jobs to grade: calibrate it once it has ended, so that every grade is "
        "on the same scale."
    )
    assert dict(GradingResult.objects.values_list("pk", "score")) == before
    client.force_login(owner)
    page = client.post(f"/batches/{batch.pk}/calibrate", follow=True).content.decode()
    assert "Not calibrated: The batch still has jobs to grade" in page


def test_the_card_says_why_calibrating_waits_while_the_batch_grades(owner, client):
    batch, _ = calibrated_comparison_batch(owner)
    set_status(batch, BatchStatus.PROCESSING)
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}").content.decode()

    card = html[html.index('id="calibration"') :].split("</section>")[0]
    assert "Calibrate again</button>" not in card
    assert "Calibrating waits until the batch has ended" in card


def test_withdrawing_one_models_exemplar_review_keeps_the_other_models_exemplar(owner):
    grades = [
        (f"essay-{i}.txt", ("builtin", "builtin-v1"), raw, None) for i, raw in enumerate(CALIBRATION_RAW)
    ]
    grades += [
        (f"essay-{i}.txt", ("openai", "gpt-4o-mini"), raw, None) for i, raw in enumerate(CALIBRATION_RAW)
    ]
    batch, jobs = comparison_batch(owner, grades)
    builtin, openai = jobs[("essay-0.txt", "builtin")].result, jobs[("essay-0.txt", "openai")].result
    builtin.record_review(owner, 12, exemplar=True)
    openai.record_review(owner, 14, exemplar=True)

    builtin.clear_review()

    exemplar = Exemplar.objects.get(batch=batch)
    assert exemplar.score == 14  # the review still ticked
    openai.clear_review()
    assert not Exemplar.objects.filter(batch=batch).exists()


def test_withdrawing_exemplar_reviews_then_recalibrating_gives_back_the_providers_scores(owner):
    batch, jobs = calibrated_comparison_batch(owner)
    assert GradingResult.objects.filter(raw_score__isnull=False).exists()
    for i in range(2):
        jobs[(f"essay-{i}.txt", "builtin")].result.clear_review()

    calibration = batch.calibrate()

    assert calibration["exemplars"] == 4
    assert [group["reason"] for group in calibration["models"]] == ["too few exemplars (at least 5)"] * 2
    scores = {r.job_id: r.score for r in GradingResult.objects.all()}
    assert scores[jobs[("essay-7.txt", "builtin")].pk] == 90
    assert not GradingResult.objects.filter(raw_score__isnull=False).exists()


def test_a_model_that_graded_no_exemplar_keeps_its_own_scores_and_the_card_says_why(owner, client):
    batch, jobs = calibrated_comparison_batch(owner)
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}").content.decode()

    openai = GradingResult.objects.get(job=jobs[("essay-7.txt", "openai")])
    assert openai.score == 95 and not openai.is_calibrated
    card = html[html.index('id="calibration"') :].split("</section>")[0]
    assert "openai · gpt-4o-mini" in card and "none: too few exemplars (at least 5)" in card


def test_removing_a_template_exemplar_whose_document_is_a_job_keeps_the_job_and_its_grade(owner, client):
    batch, jobs = calibrated_comparison_batch(owner)
    job = jobs[("essay-7.txt", "builtin")]
    template = batch.template.copy_for(owner, name="Week 6 rubric")
    exemplar = Exemplar.objects.create(template=template, document=job.document, score=70, owner=owner)
    client.force_login(owner)

    response = client.post(f"/templates/{template.pk}/exemplars/{exemplar.pk}/remove", follow=True)

    assert "Removed “essay-7.txt” from the exemplars." in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.document.original_name == "essay-7.txt"
    assert client.get(f"/batches/{batch.pk}/jobs/{job.pk}").status_code == 200
