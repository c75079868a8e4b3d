import pytest

from grading.models import GradingJob, GradingResult, JobStatus
from tests.web_support import share_for_viewing

pytestmark = pytest.mark.django_db

CRITERIA = [
    {
        "key": "thesis",
        "name": "Thesis and argument",
        "score": 14,
        "max_score": 20,
        "feedback": "A clear claim.",
    },
    {"key": "style", "name": "Style", "score": 9, "max_score": 15, "feedback": "Some long sentences."},
]


@pytest.fixture
def graded(batch):
    job = batch.jobs.first()
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    result = GradingResult.objects.create(
        job=job,
        provider="builtin",
        model="builtin-v1",
        score=23,
        max_score=35,
        criteria=CRITERIA,
        feedback="Solid overall.",
    )
    return job, result


def test_the_job_page_shows_the_text_beside_each_criterions_score_and_feedback(client, owner, batch, graded):
    job, _ = graded
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert "An essay about parks." in html
    for text in (
        "Thesis and argument",
        "14 / 20",
        "A clear claim.",
        "9 / 15",
        "Some long sentences.",
        "Solid overall.",
    ):
        assert text in html
    assert '<label for="id_criterion_thesis"><bdi>Thesis and argument</bdi></label>' in html
    assert "Save review" in html


def test_a_review_keeps_the_ai_grade_beside_it(client, owner, batch, graded):
    job, result = graded
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/jobs/{job.pk}",
        {"score": "25", "criterion_thesis": "16", "criterion_style": "", "comment": "Fairer on the thesis."},
    )
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.score == 23
    assert result.reviewed_score == 25
    assert result.reviewer == owner
    assert result.review_comment == "Fairer on the thesis."
    assert result.reviewed_criteria == [{"key": "thesis", "score": 16}]
    html = client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert '<span>23</span><span class="muted"> / 35</span>' in html
    assert "Reviewed</span> 25 / 35" in html


def test_a_review_of_every_criterion_adds_them_up(client, owner, batch, graded):
    job, result = graded
    client.force_login(owner)
    client.post(
        f"/batches/{batch.pk}/jobs/{job.pk}",
        {"score": "", "criterion_thesis": "15", "criterion_style": "10.5"},
    )
    result.refresh_from_db()
    assert result.reviewed_score == 25.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"score": "36"}, "The reviewed score must be a number between 0 and 35."),
        ({"score": "-1"}, "The reviewed score must be a number between 0 and 35."),
        ({"score": "lots"}, "Enter a number."),
        (
            {"score": "", "criterion_thesis": "21"},
            "Give “Thesis and argument” a score between 0 and 20.",
        ),
        (
            {"score": "30", "criterion_thesis": "15", "criterion_style": "10"},
            "differs from the sum of the criterion scores (25)",
        ),
    ],
)
def test_a_bad_review_is_explained_and_stores_nothing(client, owner, batch, graded, data, message):
    job, result = graded
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    result.refresh_from_db()
    assert result.reviewed_score is None


def test_a_viewer_reads_the_grade_but_cannot_review(client, owner, colleague, batch, graded):
    job, result = graded
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    page = client.get(f"/batches/{batch.pk}/jobs/{job.pk}")
    assert page.status_code == 200
    assert "Save review" not in page.content.decode()
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}", {"score": "30"}).status_code == 403
    result.refresh_from_db()
    assert result.reviewed_score is None


def test_an_uploader_who_may_only_view_the_batch_cannot_review_their_upload(
    client, owner, colleague, batch, graded
):
    job, result = graded
    GradingJob.objects.filter(pk=job.pk).update(owner=colleague)
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert "Save review" not in client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}", {"score": "30"}).status_code == 403
    result.refresh_from_db()
    assert result.reviewed_score is None


def test_a_stranger_gets_404_for_the_job(client, stranger, batch, graded):
    job, _ = graded
    client.force_login(stranger)
    assert client.get(f"/batches/{batch.pk}/jobs/{job.pk}").status_code == 404
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}", {"score": "1"}).status_code == 404


def test_a_job_without_a_grade_says_so_and_offers_no_review(client, owner, batch):
    job = batch.jobs.first()
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert "No grade yet" in html
    assert "Save review" not in html
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}", {"score": "1"}, follow=True)
    assert "This job has no grade to review yet." in response.content.decode()
