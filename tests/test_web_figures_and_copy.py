"""Figures and copy on the pages: sensible units, one word count, accurate sentences."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import RequestFactory
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from batches.templatetags.batch_ui import seconds, throughput
from core.permissions import Level, share
from grading.models import Document, GradingJob, GradingResult, JobStatus
from grading.providers import GradeRequest
from grading.providers.builtin import BuiltinProvider
from tests.conftest import make_batch, make_document, set_status
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS

pytestmark = pytest.mark.django_db


# --- durations and rates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0, "< 0.1 s"),
        (12.4, "< 0.1 s"),
        (420, "0.4 s"),
        (2500, "2.5 s"),
        (12_400, "12 s"),
        (150_000, "2.5 min"),
    ],
)
def test_durations_never_read_zero_seconds(ms, shown):
    assert seconds(ms) == shown


@pytest.mark.parametrize(
    ("processing", "shown"),
    [
        ({"jobs_per_minute": 4848.7, "wall_time_s": 0.1}, "all within a second"),
        ({"jobs_per_minute": 4848.7, "wall_time_s": 12}, "81 jobs/s"),
        ({"jobs_per_minute": 30.0, "wall_time_s": 600}, "30 jobs/min"),
        ({"jobs_per_minute": 2.5, "wall_time_s": 600}, "2.5 jobs/min"),
        ({"jobs_per_minute": 0.05, "wall_time_s": 36000}, "3 jobs/h"),
        ({"jobs_per_minute": None, "wall_time_s": None}, "—"),
    ],
)
def test_throughput_picks_a_unit_people_read(processing, shown):
    assert throughput(processing) == shown


@pytest.fixture
def quick(owner):
    """A builtin batch of two jobs graded within 60 ms, one failed: 4/3 of a job per 60 ms."""
    batch = make_batch(owner, jobs=3, name="Quick")
    started = timezone.now() - timedelta(minutes=5)
    JobBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.COMPLETED_WITH_ERRORS,
        started_at=started,
        completed_at=started + timedelta(milliseconds=60),
    )
    jobs = list(batch.jobs.order_by("pk"))
    for job, score in zip(jobs[:2], (60, 80), strict=True):
        GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED, duration_ms=12)
        GradingResult.objects.create(
            job=job, provider="builtin", model="builtin-v1", score=score, max_score=100
        )
    GradingJob.objects.filter(pk=jobs[2].pk).update(status=JobStatus.FAILED, duration_ms=3)
    return batch


def test_a_sub_second_batch_shows_no_absurd_rate(client, owner, quick):
    client.force_login(owner)
    html = client.get(f"/batches/{quick.pk}").content.decode()
    assert "<dt>Median time per job</dt><dd>&lt; 0.1 s</dd>" in html
    assert "<dt>Throughput</dt><dd>all within a second</dd>" in html
    assert "Jobs per minute" not in html


def test_the_spread_is_in_the_same_unit_as_the_mean(client, owner, quick):
    client.force_login(owner)
    html = client.get(f"/batches/{quick.pk}").content.decode()
    assert "<dt>Mean score</dt><dd>70%</dd>" in html
    assert "<dt>Spread (SD)</dt><dd>10%</dd>" in html
    assert " pts" not in html


# --- one word count --------------------------------------------------------------------------

TEXT = "It's a well-known fact — 42 parks, 3 rivers. Cities need green space!\n\nA second paragraph: done."


def test_the_page_and_the_builtin_grader_count_words_alike(client, owner, batch):
    request = GradeRequest(text=TEXT, rubric=ACADEMIC_ESSAY_RUBRIC, settings=ESSAY_SETTINGS, model="builtin")
    grade = BuiltinProvider().grade(request)
    graded = re.search(r"on (\d+) words", grade.feedback).group(1)
    document = make_document(owner, "count.txt", text=TEXT)
    assert document.word_count == int(graded) == grade.raw["features"]["word_count"] == 14
    assert len(TEXT.split()) != 14  # the page used to count whitespace-separated tokens

    job = batch.jobs.first()
    GradingJob.objects.filter(pk=job.pk).update(document=document)
    client.force_login(owner)
    assert f"{graded} words ·" in client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert Document.objects.get(pk=document.pk).word_count == 14


# --- the estimate, the live announcement, the 403 ------------------------------------------------


def test_only_a_batch_graded_by_builtin_is_told_builtin_costs_nothing(client, owner):
    client.force_login(owner)
    builtin = make_batch(owner, name="Offline")
    openai = make_batch(owner, name="Online", settings={"provider": "openai", "model": "gpt-4o-mini"})
    assert "the builtin grader runs offline" in client.get(f"/batches/{builtin.pk}").content.decode()
    html = client.get(f"/batches/{openai.pk}").content.decode()
    assert "What grading will take" in html
    assert "builtin" not in re.search(r'<section class="card estimate".*?</section>', html, re.S).group(0)


def test_a_failed_batch_is_announced_in_plain_english(client, owner, batch):
    set_status(batch, BatchStatus.FAILED, JobStatus.FAILED)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/live").content.decode()
    assert "2 of 2 jobs done; the batch failed." in html
    assert "is failed" not in html


def test_a_change_holder_is_told_only_the_owner_deletes(client, owner, colleague, batch):
    share(batch, colleague, Level.CHANGE)
    client.force_login(colleague)
    response = client.get(f"/batches/{batch.pk}/delete")
    html = response.content.decode()
    assert response.status_code == 403
    assert "You can change this batch but not delete it: only its owner can delete it." in html
    assert "delete access" not in html


# --- the list's filters ------------------------------------------------------------------------


def test_filter_errors_name_the_field_as_the_page_does(client, owner, batch):
    client.force_login(owner)
    html = client.get("/batches?priority_min=abc&priority_max=3&status=bogus").content.decode()
    assert "Lowest priority: Enter a whole number." in html
    assert "Status: Select a valid choice." in html
    assert "Priority_min" not in html and "Status: Select" in html


def test_sorting_applies_on_change_and_without_scripts_by_the_button(client, owner, batch):
    client.force_login(owner)
    html = client.get("/batches").content.decode()
    assert re.search(r'<select name="ordering" id="id_ordering" data-submit-on-change>', html)
    assert ">Apply filters</button>" in html
    script = (Path(settings.BASE_DIR) / "static" / "js" / "app.js").read_text()
    assert "[data-submit-on-change]" in script and "requestSubmit" in script


# --- signing out, the admin's wording ----------------------------------------------------------


def test_signing_out_says_so(client, owner):
    client.force_login(owner)
    response = client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "You are signed out." in response.content.decode()
    assert "You are signed out." not in client.get("/accounts/login/").content.decode()


def test_admin_actions_are_worded_as_commands(admin_user):
    request = RequestFactory().get("/admin/batches/jobbatch/")
    request.user = admin_user
    offered = admin.site._registry[JobBatch].get_actions(request)
    descriptions = {name: entry[2] for name, entry in offered.items()}
    assert descriptions["start_batches"] == "Start the selected batches"
    assert descriptions["cancel_batches"] == "Cancel the selected batches"
    assert descriptions["retry_batches"] == "Retry the failed jobs of the selected batches"
    assert descriptions["unarchive_batches"] == "Unarchive the selected batches"
    assert not any(text.startswith(("Started", "Cancelled", "Retried")) for text in descriptions.values())
