"""The review queue on the batch page and the job page: filters, sorts, previous/next, accept-and-next."""

import pytest

from batches import views
from grading.models import GradingResult
from tests.conftest import make_batch
from tests.review_support import comparison_batch, job_ids_in_table
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db


@pytest.fixture
def compared(owner):
    return comparison_batch(owner)


def ids(jobs, *keys):
    return [jobs[key].pk for key in keys]


def table(client, batch, query=""):
    response = client.get(f"/batches/{batch.pk}{query}")
    assert response.status_code == 200
    return job_ids_in_table(response.content.decode(), batch)


# --- filters ------------------------------------------------------------------------------


def test_not_reviewed_lists_the_graded_jobs_nobody_has_reviewed(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    assert table(client, batch, "?show=not_reviewed") == ids(
        jobs,
        ("alpha.txt", "builtin"),
        ("bravo.txt", "builtin"),
        ("bravo.txt", "openai"),
        ("charlie.txt", "builtin"),
        ("charlie.txt", "openai"),
        ("delta.txt", "openai"),
    )


def test_failed_lists_only_the_failed_jobs(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    assert table(client, batch, "?show=failed") == ids(jobs, ("delta.txt", "builtin"))


def test_low_confidence_lists_the_jobs_where_models_differ_or_the_grade_is_near_a_boundary(
    client, owner, compared
):
    batch, jobs = compared
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}?show=low_confidence").content.decode()
    assert job_ids_in_table(html, batch) == ids(
        jobs, ("bravo.txt", "builtin"), ("bravo.txt", "openai"), ("charlie.txt", "builtin")
    )
    assert "models differ by 40 %" in html
    assert "69.0 % is within 2 points of the 70 % boundary" in html


def test_a_calibration_that_agrees_poorly_with_the_teacher_makes_its_grades_low_confidence(
    client, owner, compared
):
    batch, jobs = compared
    alpha = jobs[("alpha.txt", "builtin")]
    GradingResult.objects.filter(job=alpha).update(raw_score=73)
    batch.calibration = {
        "models": [{"provider": "builtin", "model": "builtin-v1", "method": "linear", "qwk_after": 0.42}]
    }
    batch.save(update_fields=["calibration"])
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}?show=low_confidence").content.decode()
    assert alpha.pk in job_ids_in_table(html, batch)
    assert "calibration uncertain: it agrees with your grades at 0.42 (QWK)" in html


def test_filters_combine_so_that_all_must_hold(client, owner, compared):
    batch, jobs = compared
    GradingResult.objects.get(job=jobs[("bravo.txt", "openai")]).record_review(owner, 80)
    client.force_login(owner)
    query = "?show=low_confidence&show=not_reviewed"
    assert table(client, batch, query) == ids(jobs, ("bravo.txt", "builtin"), ("charlie.txt", "builtin"))


def test_an_unknown_filter_is_refused_with_a_sentence_and_the_jobs_shown_unfiltered(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}?show=easy")
    assert response.status_code == 400
    html = response.content.decode()
    assert "“easy” is not a filter of jobs; choose from not_reviewed, failed, low_confidence." in html
    assert len(job_ids_in_table(html, batch)) == len(jobs)


# --- sorts -----------------------------------------------------------------------------------


def test_sorting_by_score_uses_the_final_score_and_puts_ungraded_jobs_last(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    lowest_first = ids(
        jobs,
        ("delta.txt", "openai"),  # 35
        ("bravo.txt", "builtin"),  # 45
        ("charlie.txt", "openai"),  # 65
        ("charlie.txt", "builtin"),  # 69
        ("alpha.txt", "builtin"),  # 75
        ("alpha.txt", "openai"),  # 76, reviewed 77
        ("bravo.txt", "openai"),  # 85
        ("delta.txt", "builtin"),  # failed: no score
    )
    assert table(client, batch, "?ordering=score") == lowest_first
    assert table(client, batch, "?ordering=-score") == lowest_first[-2::-1] + lowest_first[-1:]


def test_sorting_by_status_puts_the_failures_first(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    assert table(client, batch, "?ordering=status")[0] == jobs[("delta.txt", "builtin")].pk


def test_sorting_by_spread_puts_the_documents_the_models_disagree_on_first(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    order = table(client, batch, "?ordering=-spread")
    assert order[:2] == ids(jobs, ("bravo.txt", "builtin"), ("bravo.txt", "openai"))  # 40 points
    assert order[2:4] == ids(jobs, ("charlie.txt", "builtin"), ("charlie.txt", "openai"))  # 4 points
    # delta has one grade: no spread, so it comes last.
    assert order[-2:] == ids(jobs, ("delta.txt", "builtin"), ("delta.txt", "openai"))


def test_an_unknown_sort_is_refused_with_a_sentence(client, owner, compared):
    batch, _ = compared
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}?ordering=random")
    assert response.status_code == 400
    assert "“random” is not a way to sort jobs" in response.content.decode()


def test_filters_and_sort_are_kept_in_job_links_pagination_and_the_live_poll(
    client, owner, compared, monkeypatch
):
    batch, jobs = compared
    monkeypatch.setattr(views, "JOBS_PAGE_SIZE", 2)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}?show=not_reviewed&ordering=-score").content.decode()
    first = jobs[("bravo.txt", "openai")].pk
    assert f'href="/batches/{batch.pk}/jobs/{first}?show=not_reviewed&amp;ordering=-score"' in html
    assert 'href="?show=not_reviewed&amp;ordering=-score&amp;page=2#batch-jobs"' in html
    batch.status = "processing"
    batch.save(update_fields=["status"])
    html = client.get(f"/batches/{batch.pk}?show=not_reviewed&ordering=-score&page=2").content.decode()
    assert f'hx-get="/batches/{batch.pk}/live?show=not_reviewed&amp;ordering=-score&amp;page=2"' in html


# --- the job page ----------------------------------------------------------------------------


def test_previous_and_next_follow_the_filter_and_sort(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    middle = jobs[("bravo.txt", "openai")]
    html = client.get(f"/batches/{batch.pk}/jobs/{middle.pk}?show=low_confidence").content.decode()
    before, after = jobs[("bravo.txt", "builtin")].pk, jobs[("charlie.txt", "builtin")].pk
    assert f'href="/batches/{batch.pk}/jobs/{before}?show=low_confidence" rel="prev"' in html
    assert f'href="/batches/{batch.pk}/jobs/{after}?show=low_confidence" rel="next"' in html
    assert "2 of 3 · Low confidence" in html
    assert "<strong>Low confidence:</strong> models differ by 40 %." in html
    html = client.get(f"/batches/{batch.pk}/jobs/{middle.pk}?ordering=score").content.decode()
    assert f'/jobs/{jobs[("alpha.txt", "openai")].pk}?ordering=score" rel="prev"' in html
    assert f'/jobs/{jobs[("delta.txt", "builtin")].pk}?ordering=score" rel="next"' in html
    assert "7 of 8" in html


def test_the_job_page_offers_the_keys_and_an_accept_button_that_works_without_script(client, owner, compared):
    batch, jobs = compared
    job = jobs[("bravo.txt", "builtin")]
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/jobs/{job.pk}?show=not_reviewed").content.decode()
    assert f'action="/batches/{batch.pk}/jobs/{job.pk}/review/accept?show=not_reviewed"' in html
    assert "Accept the AI grade (45 / 100)" in html
    assert "<kbd>a</kbd> accept the AI grade as the review" in html
    assert 'src="/static/js/review-keys.js"' in html


def test_accepting_records_the_ai_grade_as_the_review_and_opens_the_next_job_in_the_filter(
    client, owner, compared
):
    batch, jobs = compared
    job = jobs[("bravo.txt", "builtin")]
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/accept?show=not_reviewed")
    following = jobs[("bravo.txt", "openai")]
    assert response.status_code == 302
    assert response["Location"] == f"/batches/{batch.pk}/jobs/{following.pk}?show=not_reviewed"
    result = GradingResult.objects.get(job=job)
    assert (result.reviewed_score, result.reviewer) == (45, owner)
    assert result.reviewed_criteria == [{"key": "content", "score": 45.0}]
    assert messages_of(response) == ["Accepted the AI's 45 / 100 for “bravo.txt”."]


def test_saving_an_overriding_review_opens_the_next_job_in_the_sort(client, owner, compared):
    batch, jobs = compared
    job = jobs[("charlie.txt", "builtin")]  # 69 of 100: fourth lowest
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/jobs/{job.pk}?ordering=score", {"score": "", "criterion_content": "90"}
    )
    # The next job in the order the reviewer was walking, though 90 now sorts the reviewed job elsewhere.
    following = jobs[("alpha.txt", "builtin")]
    assert response["Location"] == f"/batches/{batch.pk}/jobs/{following.pk}?ordering=score"
    assert GradingResult.objects.get(job=job).reviewed_score == 90


def test_reviewing_the_last_job_of_the_filter_says_so_and_returns_to_the_filtered_list(
    client, owner, compared
):
    batch, jobs = compared
    last = jobs[("delta.txt", "openai")]
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{last.pk}/review/accept?show=not_reviewed")
    assert response["Location"] == f"/batches/{batch.pk}?show=not_reviewed#batch-jobs"
    assert messages_of(response) == [
        "Accepted the AI's 35 / 100 for “delta.txt”. That was the last job in “Not reviewed”."
    ]


def test_a_failed_job_has_no_grade_to_accept(client, owner, compared):
    batch, jobs = compared
    job = jobs[("delta.txt", "builtin")]
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/accept")
    assert response["Location"] == f"/batches/{batch.pk}/jobs/{job.pk}"
    assert messages_of(response) == ["This job has no grade to accept yet."]


def test_a_viewer_cannot_accept_a_grade_and_a_stranger_cannot_find_the_job(
    client, owner, colleague, stranger, compared
):
    batch, jobs = compared
    job = jobs[("bravo.txt", "builtin")]
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert "Accept the AI grade" not in client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/accept").status_code == 403
    client.force_login(stranger)
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/accept").status_code == 404
    assert GradingResult.objects.get(job=job).reviewed_score is None


def test_a_bad_filter_on_the_job_page_is_named_and_accepting_with_it_stores_nothing(client, owner, compared):
    batch, jobs = compared
    job = jobs[("bravo.txt", "builtin")]
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/jobs/{job.pk}?show=nope")
    assert response.status_code == 400
    assert "“nope” is not a filter of jobs" in response.content.decode()
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/accept?show=nope")
    assert response.status_code == 400
    assert GradingResult.objects.get(job=job).reviewed_score is None


def test_a_job_that_has_left_the_filter_keeps_its_place_between_its_neighbours(client, owner, compared):
    batch, jobs = compared
    job = jobs[("bravo.txt", "openai")]
    GradingResult.objects.get(job=job).accept_ai_grade(owner)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/jobs/{job.pk}?show=not_reviewed").content.decode()
    assert "Not in this list of 5 · Not reviewed" in html
    assert f'/jobs/{jobs[("bravo.txt", "builtin")].pk}?show=not_reviewed" rel="prev"' in html
    assert f'/jobs/{jobs[("charlie.txt", "builtin")].pk}?show=not_reviewed" rel="next"' in html
    assert "Accept the AI grade" not in html


def test_accepting_a_job_reviewed_meanwhile_keeps_the_teachers_review_and_comment(client, owner, compared):
    # A page opened before the review was saved (another tab, a colleague), or `a` pressed again.
    batch, jobs = compared
    job = jobs[("bravo.txt", "builtin")]
    GradingResult.objects.get(job=job).record_review(owner, 60, comment="Strong argument, weak sources.")
    client.force_login(owner)

    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/review/accept?show=failed")

    result = GradingResult.objects.get(job=job)
    assert (result.reviewed_score, result.review_comment) == (60, "Strong argument, weak sources.")
    assert response["Location"] == f"/batches/{batch.pk}/jobs/{job.pk}?show=failed"
    assert messages_of(response) == [
        "Not accepted: this job is already reviewed (60 / 100 by olivia), and that review is kept. "
        "Change it in the form, or withdraw it first."
    ]


def test_accept_sent_twice_by_a_key_pressed_twice_moves_on_both_times(client, owner, compared):
    batch, jobs = compared
    job = jobs[("bravo.txt", "builtin")]
    following = jobs[("bravo.txt", "openai")]
    client.force_login(owner)
    url = f"/batches/{batch.pk}/jobs/{job.pk}/review/accept?show=not_reviewed"

    first = client.post(url)
    again = client.post(url)

    assert (
        first["Location"] == again["Location"] == f"/batches/{batch.pk}/jobs/{following.pk}?show=not_reviewed"
    )
    assert messages_of(again) == [
        "Accepted the AI's 45 / 100 for “bravo.txt”.",
        "Already accepted: the AI's 45 / 100 for “bravo.txt”.",
    ]
    assert GradingResult.objects.get(job=job).reviewed_score == 45


def test_the_key_legend_names_only_the_keys_that_do_something_on_the_page(client, owner, compared):
    batch, jobs = compared
    first, last = jobs[("alpha.txt", "builtin")], jobs[("delta.txt", "openai")]
    only = jobs[("delta.txt", "builtin")]  # the one failed job: alone in "Failed", no grade to accept
    client.force_login(owner)

    at_first = client.get(f"/batches/{batch.pk}/jobs/{first.pk}").content.decode()
    at_last = client.get(f"/batches/{batch.pk}/jobs/{last.pk}").content.decode()
    alone = client.get(f"/batches/{batch.pk}/jobs/{only.pk}?show=failed").content.decode()

    assert "<kbd>j</kbd> next" in at_first and "<kbd>k</kbd> previous" not in at_first
    assert "<kbd>k</kbd> previous" in at_last and "<kbd>j</kbd> next" not in at_last
    assert 'id="key-legend"' not in alone


def test_a_batch_without_jobs_says_so_whatever_the_filter_in_its_address(client, owner):
    empty = make_batch(owner, jobs=0, name="Nothing yet")
    client.force_login(owner)

    page = client.get(f"/batches/{empty.pk}?show=failed").content.decode()

    assert "No jobs yet." in page
    assert "No job matches these filters." not in page  # with no filter form to clear them from
