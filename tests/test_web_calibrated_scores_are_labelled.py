"""After calibration every page and export that shows an AI score says when it is a calibrated one."""

import csv
import io

import pytest

from grading.models import GradingResult
from tests.review_support import calibrated_comparison_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def compared(owner):
    batch, jobs = calibrated_comparison_batch(owner)
    assert [group["method"] is not None for group in batch.calibration["models"]] == [True, False]
    return batch, jobs


def test_the_jobs_table_flags_a_calibrated_score_and_names_the_providers_own(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}").content.decode()

    table = html[html.index('id="batch-jobs"') :]
    calibrated = GradingResult.objects.get(job=jobs[("essay-7.txt", "builtin")])
    assert calibrated.is_calibrated and calibrated.raw_score == 90
    assert 'title="Calibrated to your scale; the provider gave 90 / 100"' in table
    assert table.count(">Calibrated</span>") == 2  # the builtin grader's two jobs not reviewed


def test_the_comparison_says_which_models_scores_are_calibrated(client, owner, compared):
    batch, _ = compared
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}/compare").content.decode()

    head = html[html.index("<thead>") : html.index("</thead>")]
    builtin, openai = head.split("builtin:builtin-v1")[1], head.split("openai:gpt-4o-mini")[1]
    assert builtin.split("</th>")[0] == ' <span class="flag flag-calibrated">calibrated</span>'
    assert "calibrated" not in openai.split("</th>")[0]
    assert "differ in scale" in html


def test_the_gradebook_csv_says_which_scores_are_calibrated(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)

    rows = gradebook(client, batch, "calibrated")
    assert rows["essay-7.txt"]["calibrated"] == "yes"
    assert rows["essay-7.txt"]["calibrated_score"] == "70"

    rows = gradebook(client, batch, "final")
    assert rows["essay-0.txt"]["calibrated"] == "no"  # its score is the teacher's review
    assert rows["essay-6.txt"]["calibrated"] == "partly"  # a calibrated and a provider's own score
    assert rows["essay-7.txt"]["final_score"] == "82.5"  # the mean of 70 (calibrated) and 95


def gradebook(client, batch, basis: str) -> dict[str, dict]:
    response = client.get(f"/api/batches/{batch.pk}/export?format=csv&score={basis}")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return {row["file_name"]: row for row in csv.DictReader(io.StringIO(text))}
