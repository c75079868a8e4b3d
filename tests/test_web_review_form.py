"""The review form as a reviewer meets it: pre-filled, partial reviews, a total that follows, errors in place.

Criteria start at the score that stands (the review's, else the AI's); the
total is left empty to follow them (their sum is its placeholder) unless an
earlier review set it apart. Every range problem shows on its own field, by
the criterion's name. A review can be withdrawn, and the page leads to the
previous and next submissions of the batch.
"""

import re
from html.parser import HTMLParser

import pytest

from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_batch
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db

CRITERIA = [
    {"key": "thesis", "name": "Thesis and argument", "score": 14, "max_score": 20, "feedback": "Clear."},
    {"key": "style", "name": "Style", "score": 9, "max_score": 15, "feedback": "Long sentences."},
]


def grade(job) -> GradingResult:
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    return GradingResult.objects.create(
        job=job, provider="builtin", model="builtin-v1", score=23, max_score=35, criteria=CRITERIA
    )


@pytest.fixture
def graded(batch):
    job = batch.jobs.order_by("created_at", "id").first()
    return job, grade(job)


class _Inputs(HTMLParser):
    """name -> the attributes of each <input> of the review form."""

    def __init__(self):
        super().__init__()
        self.inputs, self.in_review = {}, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.in_review = attrs.get("action", "").rstrip("/").split("/")[-2:-1] == ["jobs"]
        elif tag == "input" and self.in_review and attrs.get("name"):
            self.inputs[attrs["name"]] = attrs


def review_inputs(client, batch, job) -> dict[str, dict]:
    reader = _Inputs()
    reader.feed(client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode())
    return reader.inputs


def as_sent(inputs: dict[str, dict], **changes: str) -> dict[str, str]:
    """What the browser posts: each field's value, with the reviewer's changes."""
    data = {
        name: attrs.get("value", "")
        for name, attrs in inputs.items()
        if name.startswith("criterion_") or name == "score"
    }
    return {**data, **changes}


def post(client, batch, job, data):
    return client.post(f"/batches/{batch.pk}/jobs/{job.pk}", data)


def test_the_criteria_start_at_the_ais_scores_and_the_total_at_their_sum_as_a_placeholder(
    client, owner, batch, graded
):
    job, _ = graded
    client.force_login(owner)
    inputs = review_inputs(client, batch, job)
    assert inputs["criterion_thesis"]["value"] == "14"
    assert inputs["criterion_style"]["value"] == "9"
    assert "value" not in inputs["score"]
    assert inputs["score"]["placeholder"] == "23"


def test_changing_one_criterion_is_a_review_the_others_taken_from_the_ai(client, owner, batch, graded):
    job, result = graded
    client.force_login(owner)
    response = post(client, batch, job, as_sent(review_inputs(client, batch, job), criterion_thesis="16"))
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.reviewed_score == 25
    assert result.reviewed_criteria == [{"key": "thesis", "score": 16}, {"key": "style", "score": 9}]


def test_after_a_review_the_form_starts_from_it_and_the_total_still_follows(client, owner, batch, graded):
    job, result = graded
    client.force_login(owner)
    post(client, batch, job, as_sent(review_inputs(client, batch, job), criterion_thesis="16"))

    inputs = review_inputs(client, batch, job)
    assert (inputs["criterion_thesis"]["value"], inputs["criterion_style"]["value"]) == ("16", "9")
    assert "value" not in inputs["score"] and inputs["score"]["placeholder"] == "25"

    # A second change: no "differs from the sum", the total follows.
    response = post(client, batch, job, as_sent(inputs, criterion_style="11"))
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.reviewed_score == 27


def test_a_total_typed_in_is_kept_and_starts_filled_in_next_time(client, owner, batch, graded):
    job, result = graded
    client.force_login(owner)
    response = post(client, batch, job, as_sent(review_inputs(client, batch, job), score="30"))
    assert response.status_code == 302
    result.refresh_from_db()
    assert (result.reviewed_score, result.reviewed_criteria) == (30, [])

    inputs = review_inputs(client, batch, job)
    assert inputs["score"]["value"] == "30"
    # Changing a criterion keeps the deliberate total, and records that criterion.
    response = post(client, batch, job, as_sent(inputs, criterion_thesis="17"))
    assert response.status_code == 302
    result.refresh_from_db()
    assert (result.reviewed_score, result.reviewed_criteria) == (30, [{"key": "thesis", "score": 17}])


def test_every_range_problem_shows_on_its_field_by_name(client, owner, batch, graded):
    job, result = graded
    client.force_login(owner)
    response = post(
        client,
        batch,
        job,
        as_sent(review_inputs(client, batch, job), criterion_thesis="21", criterion_style="-1"),
    )
    assert response.status_code == 400
    html = response.content.decode()
    thesis = re.search(r'<ul class="errors" id="id_criterion_thesis_error">(.*?)</ul>', html, re.S).group(1)
    style = re.search(r'<ul class="errors" id="id_criterion_style_error">(.*?)</ul>', html, re.S).group(1)
    assert "Give “Thesis and argument” a score between 0 and 20." in thesis
    assert "Give “Style” a score between 0 and 15." in style
    assert "“thesis”" not in html
    result.refresh_from_db()
    assert result.reviewed_score is None


def test_a_review_can_be_withdrawn(client, owner, batch, graded):
    job, result = graded
    result.record_review(owner, 30, comment="Generous.")
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert f'action="/batches/{batch.pk}/jobs/{job.pk}/review/withdraw"' in html

    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/withdraw")

    assert response.status_code == 302
    assert messages_of(response) == ["Withdrew the review (30 / 35): the AI's 23 / 35 is final again."]
    result.refresh_from_db()
    assert (result.reviewed_score, result.review_comment, result.reviewer) == (None, "", None)
    assert "Withdraw review" not in client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()


def test_only_change_holders_may_withdraw(client, owner, colleague, batch, graded):
    job, result = graded
    result.record_review(owner, 30)
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert "Withdraw review" not in client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/withdraw").status_code == 403
    result.refresh_from_db()
    assert result.reviewed_score == 30


def test_the_page_leads_to_the_previous_and_next_submissions_in_the_lists_order(client, owner):
    batch = make_batch(owner, jobs=3)
    first, middle, last = batch.jobs.order_by("created_at", "id")
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}/jobs/{middle.pk}").content.decode()
    assert re.search(rf'href="/batches/{batch.pk}/jobs/{first.pk}" rel="prev"', html)
    assert re.search(rf'href="/batches/{batch.pk}/jobs/{last.pk}" rel="next"', html)
    assert "2 of 3" in html

    opening = client.get(f"/batches/{batch.pk}/jobs/{first.pk}").content.decode()
    assert 'rel="prev"' not in opening and "1 of 3" in opening
    assert 'rel="next"' not in client.get(f"/batches/{batch.pk}/jobs/{last.pk}").content.decode()
