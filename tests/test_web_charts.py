import re

import pytest

from batches.charts import charts_for, criterion_means, model_scores, score_histogram, status_breakdown
from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_batch, set_status

HISTOGRAM = [
    {"bucket": f"[{n}, {n + 10})", "count": count}
    for n, count in zip(range(0, 100, 10), [0] * 5 + [1, 4, 2, 0, 0], strict=True)
]


def test_the_histogram_draws_one_bar_per_band_with_its_count():
    svg = str(score_histogram(HISTOGRAM))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert len(re.findall(r"<rect ", svg)) == 10
    assert "<title>60–70 %: 4 document(s)</title>" in svg
    assert "60–70 %: 4" in re.search(r"<desc[^>]*>(.*?)</desc>", svg).group(1)


def test_each_band_is_labelled_by_its_range_not_its_lower_edge():
    svg = str(score_histogram(HISTOGRAM))
    labels = re.findall(r'text-anchor="middle" font-size="12" fill="#6b7280">([^<]+)</text>', svg)
    assert labels == [f"{n}–{n + 10}" for n in range(0, 100, 10)]


def test_the_histogram_axis_never_shows_half_a_document():
    svg = str(score_histogram([{"bucket": "[0, 10)", "count": 5}] + HISTOGRAM[1:]))
    assert ">2.5<" not in svg


def test_criterion_bars_are_as_long_as_the_mean_share_of_the_points():
    svg = str(
        criterion_means(
            [
                {"key": "a", "name": "Thesis", "mean": 15, "max_score": 20, "mean_percent": 75.0},
                {"key": "b", "name": "Style", "mean": 3, "max_score": 15, "mean_percent": 20.0},
            ]
        )
    )
    widths = [
        float(w)
        for w in re.findall(
            r'<rect x="210.0" y="[\d.]+" width="([\d.]+)" height="16.0" rx="8" fill="#2f5bd3"', svg
        )
    ]
    assert widths == pytest.approx([260 * 0.75, 260 * 0.20])
    assert "15 / 20" in svg and "3 / 15" in svg


def test_labels_are_escaped():
    svg = str(
        criterion_means(
            [{"key": "x", "name": "<script>alert(1)</script>", "mean": 1, "max_score": 2, "mean_percent": 50}]
        )
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_the_status_ring_sums_to_the_jobs_and_skips_empty_statuses():
    svg = str(
        status_breakdown(
            {"completed": 3, "failed": 1, "queued": 0, "pending": 0, "processing": 0, "cancelled": 0}
        )
    )
    assert len(re.findall(r"stroke-dasharray", svg)) == 2
    assert ">4</text>" in svg
    assert "Completed: 3, Failed: 1" in svg


def test_model_scores_show_each_models_mean():
    svg = str(
        model_scores(
            [
                {"provider": "openai", "model": "gpt-a", "mean_score_percent": 71.5, "completed": 3},
                {"provider": "openai", "model": "gpt-b", "mean_score_percent": None, "completed": 0},
            ]
        )
    )
    assert "71.5%" in svg and "openai · gpt-b" in svg and ">—<" in svg


def test_score_charts_appear_only_once_something_is_graded():
    analytics = {
        "jobs": {"by_status": {"queued": 2}},
        "scores": {"graded": 0, "histogram": HISTOGRAM},
        "criteria": [],
        "by_model": [{"provider": "builtin", "model": "builtin-v1"}],
    }
    assert set(charts_for(analytics)) == {"status"}
    analytics["scores"]["graded"] = 7
    analytics["by_model"].append(
        {"provider": "openai", "model": "m", "mean_score_percent": 50, "completed": 1}
    )
    assert set(charts_for(analytics)) == {"status", "scores", "criteria", "models"}


@pytest.mark.django_db
def test_the_batch_page_draws_the_charts_and_offers_the_export(client, owner):
    batch = make_batch(owner, jobs=2)
    set_status(batch, "completed")
    for job in GradingJob.objects.in_batch(batch):
        GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
        GradingResult.objects.create(
            job=job,
            provider="builtin",
            model="builtin-v1",
            score=64,
            max_score=100,
            criteria=[{"key": "thesis", "name": "Thesis and argument", "score": 14, "max_score": 20}],
        )
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert 'id="chart-scores-t"' in html and 'id="chart-criteria-t"' in html and 'id="chart-status-t"' in html
    assert f'action="/api/batches/{batch.pk}/export"' in html  # the ZIP's form, with or without sheets
    assert f'href="/api/batches/{batch.pk}/export?format=csv"' in html
    assert "64%" in html


@pytest.mark.django_db
def test_a_draft_shows_no_results_section(client, owner):
    batch = make_batch(owner, jobs=2)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert 'id="analytics"' not in html and "/export" not in html
