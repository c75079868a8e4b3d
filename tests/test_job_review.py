"""Human review: POST /api/jobs/{id}/review and the admin record a grade beside the AI's."""

import csv
import io

import pytest
from django import forms as forms_module

from batches.analytics import batch_analytics
from batches.export import stream_gradebook_csv
from grading.models import GradingJob, GradingResult
from tests.analytics_support import MODEL_A, NOW, result_of, worked_batch
from tests.api_support import client_for, share

pytestmark = pytest.mark.django_db


@pytest.fixture
def worked(owner):
    return worked_batch(owner)


@pytest.fixture
def d2_result(worked) -> GradingResult:
    return result_of(worked, "d2.txt", MODEL_A)  # AI: 4 of 10 (content 2 of 6, style 2 of 4)


def review(user, result, body):
    return client_for(user).post(f"/api/jobs/{result.job_id}/review", body, format="json")


def test_a_review_is_recorded_beside_the_ai_score(owner, d2_result):
    response = review(
        owner, d2_result, {"score": 5, "criteria": [{"key": "content", "score": 3}], "comment": "Fair."}
    )
    assert response.status_code == 200, response.json()
    body = response.json()["result"]
    assert (body["score"], body["reviewed_score"], body["final_score"]) == (4, 5, 5)
    assert body["is_reviewed"] is True
    assert body["reviewer"] == "olivia"
    assert body["reviewed_criteria"] == [{"key": "content", "score": 3}]
    d2_result.refresh_from_db()
    assert d2_result.score == 4
    assert d2_result.reviewed_at is not None
    assert d2_result.review_comment == "Fair."


def test_scoring_every_criterion_may_leave_the_total_to_their_sum(owner, d2_result):
    criteria = [{"key": "content", "score": 4}, {"key": "style", "score": 3.5, "comment": "Clear."}]
    response = review(owner, d2_result, {"criteria": criteria})
    assert response.status_code == 200
    assert response.json()["result"]["reviewed_score"] == 7.5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"score": 11}, "score"),
        ({"score": -1}, "score"),
        ({"score": "many"}, "score"),
        ({"score": 5, "criteria": [{"key": "spelling", "score": 1}]}, "criteria"),
        ({"score": 5, "criteria": [{"key": "content", "score": 7}]}, "criteria"),
        (
            {"score": 5, "criteria": [{"key": "content", "score": 1}, {"key": "content", "score": 2}]},
            "criteria",
        ),
        ({"score": 5, "criteria": [{"key": "content"}]}, "criteria"),
        ({"criteria": [{"key": "content", "score": 3}]}, "score"),
        ({"score": 9, "criteria": [{"key": "content", "score": 4}, {"key": "style", "score": 3}]}, "score"),
        ({"score": 5, "grade": "A"}, "grade"),
        ({}, "score"),
    ],
)
def test_a_review_that_does_not_fit_the_rubric_is_a_400_on_its_field(owner, d2_result, body, field):
    response = review(owner, d2_result, body)
    assert response.status_code == 400
    assert field in response.json()
    d2_result.refresh_from_db()
    assert d2_result.reviewed_score is None


def test_a_job_without_a_result_cannot_be_reviewed(owner, worked):
    queued = GradingJob.objects.get(batch=worked, status="queued")
    response = client_for(owner).post(f"/api/jobs/{queued.pk}/review", {"score": 1}, format="json")
    assert response.status_code == 409
    assert "no result" in response.json()["detail"]


def test_a_colleague_with_change_permission_can_review(colleague, worked, d2_result):
    share(worked, colleague, "view", "change")
    response = review(colleague, d2_result, {"score": 6})
    assert response.status_code == 200
    assert response.json()["result"]["reviewer"] == "colin"


def test_a_colleague_who_may_only_view_cannot_review(colleague, worked, d2_result):
    share(worked, colleague, "view")
    response = review(colleague, d2_result, {"score": 6})
    assert response.status_code == 403
    assert response.json()["detail"] == "You may view this but not change it."


def test_a_stranger_cannot_find_the_job(stranger, d2_result):
    assert review(stranger, d2_result, {"score": 6}).status_code == 404


def test_uploading_the_job_grants_no_review_the_batch_does_not(colleague, worked, d2_result):
    # The job is the colleague's upload, but reviewing changes the batch's gradebook.
    GradingJob.objects.filter(pk=d2_result.job_id).update(owner=colleague)
    share(worked, colleague, "view")
    assert review(colleague, d2_result, {"score": 6}).status_code == 403
    assert client_for(colleague).delete(f"/api/jobs/{d2_result.job_id}/review").status_code == 403

    worked.jobbatchuserobjectpermission_set.filter(user=colleague).delete()
    assert review(colleague, d2_result, {"score": 6}).status_code == 404
    d2_result.refresh_from_db()
    assert d2_result.reviewed_score is None


def test_the_owner_of_a_job_in_no_batch_may_review_it(owner, colleague, worked, d2_result):
    GradingJob.objects.filter(pk=d2_result.job_id).update(batch=None, owner=colleague)
    assert review(colleague, d2_result, {"score": 6}).status_code == 200
    assert review(owner, d2_result, {"score": 6}).status_code == 404


def test_withdrawing_a_review_makes_the_ai_score_final_again(owner, d2_result):
    review(owner, d2_result, {"score": 6})
    response = client_for(owner).delete(f"/api/jobs/{d2_result.job_id}/review")
    assert response.status_code == 200
    result = response.json()["result"]
    assert (result["reviewed_score"], result["final_score"], result["reviewer"]) == (None, 4, None)


def _gradebook(batch) -> dict[str, dict[str, str]]:
    text = b"".join(stream_gradebook_csv(batch)).decode()
    return {row["file_name"]: row for row in csv.DictReader(io.StringIO(text))}


def test_a_review_changes_the_export_and_the_agreement_figures(owner, worked, d2_result):
    before = _gradebook(worked)["d2.txt"]
    assert (before["final_score"], before["reviewed"]) == ("5", "no")  # mean of the AI's 4 and 6
    assert batch_analytics(worked, now=NOW)["ai_human_agreement"]["overall"]["pairs"] == 0

    review(owner, d2_result, {"score": 7, "criteria": [{"key": "content", "score": 5}]})

    after = _gradebook(worked)["d2.txt"]
    assert (after["final_score"], after["reviewed"], after["Content (6)"]) == ("7", "yes", "5")
    agreement = batch_analytics(worked, now=NOW)["ai_human_agreement"]
    assert agreement["overall"]["pairs"] == 1
    assert agreement["overall"]["mean_abs_difference"] == pytest.approx(30)  # 40 % vs 70 %
    assert [row["key"] for row in agreement["criteria"]] == ["content"]


# --- the admin -------------------------------------------------------------------


def test_the_admin_records_the_reviewer_and_time_and_keeps_the_ai_score(superuser, client, d2_result):
    client.force_login(superuser)
    url = f"/admin/grading/gradingresult/{d2_result.pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "reviewed_score": "6",
            "reviewed_criteria": '[{"key": "style", "score": 4}]',
            "review_comment": "Checked by hand.",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    d2_result.refresh_from_db()
    assert (d2_result.score, d2_result.reviewed_score, d2_result.reviewer) == (4, 6, superuser)
    assert d2_result.reviewed_at is not None
    assert d2_result.reviewed_criteria == [{"key": "style", "score": 4.0}]


def test_the_admin_shows_a_review_that_does_not_fit_the_rubric_as_a_form_error(superuser, client, d2_result):
    client.force_login(superuser)
    response = client.post(
        f"/admin/grading/gradingresult/{d2_result.pk}/change/",
        {"reviewed_score": "6", "reviewed_criteria": '[{"key": "nope", "score": 1}]', "review_comment": ""},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not a criterion" in errors["reviewed_criteria"][0]
    d2_result.refresh_from_db()
    assert d2_result.reviewed_score is None


def test_the_admin_refuses_a_review_by_an_uploader_who_may_only_view_the_batch(
    staff_admin, client, worked, d2_result
):
    GradingJob.objects.filter(pk=d2_result.job_id).update(owner=staff_admin)
    share(worked, staff_admin, "view")
    client.force_login(staff_admin)
    url = f"/admin/grading/gradingresult/{d2_result.pk}/change/"
    assert client.get(url).status_code == 200  # read-only
    response = client.post(url, {"reviewed_score": "6", "reviewed_criteria": "[]", "review_comment": ""})
    assert response.status_code == 403
    d2_result.refresh_from_db()
    assert d2_result.reviewed_score is None

    share(worked, staff_admin, "change")
    response = client.post(url, {"reviewed_score": "6", "reviewed_criteria": "[]", "review_comment": ""})
    assert response.status_code == 302
    d2_result.refresh_from_db()
    assert d2_result.reviewer == staff_admin


def test_emptying_the_review_in_the_admin_withdraws_it(superuser, client, owner, d2_result):
    d2_result.record_review(owner, 6)
    client.force_login(superuser)
    response = client.post(
        f"/admin/grading/gradingresult/{d2_result.pk}/change/",
        {"reviewed_score": "", "reviewed_criteria": "[]", "review_comment": ""},
    )
    assert response.status_code == 302
    d2_result.refresh_from_db()
    assert (d2_result.reviewed_score, d2_result.reviewer, d2_result.reviewed_at) == (None, None, None)


def _form_data(response) -> dict:
    """The POST body the admin change page would send back unchanged: its form and inline formsets."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(
            {f"{formset.prefix}-{key}": value for key, value in formset.management_form.initial.items()}
        )
        forms += list(formset.forms)
    for form in forms:
        for name, field in form.fields.items():
            if field.disabled:
                continue
            value = form[name].value()
            if value is None:
                continue
            widget_data = field.widget.format_value(value) if hasattr(field.widget, "format_value") else value
            if isinstance(value, bool):
                if value:
                    data[form.add_prefix(name)] = "on"
                continue
            if hasattr(field.widget, "widgets"):  # split date and time
                for index, part in enumerate(field.widget.decompress(value)):
                    data[f"{form.add_prefix(name)}_{index}"] = part or ""
                continue
            if isinstance(field, forms_module.JSONField):
                widget_data = field.prepare_value(value)
            data[form.add_prefix(name)] = widget_data
    return data


def test_reviewing_in_the_job_page_inline_records_the_reviewer(superuser, client, d2_result):
    client.force_login(superuser)
    url = f"/admin/grading/gradingjob/{d2_result.job_id}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = _form_data(page)
    prefix = page.context["inline_admin_formsets"][0].formset.prefix
    data[f"{prefix}-0-reviewed_score"] = "7"
    data[f"{prefix}-0-reviewed_criteria"] = "[]"
    data[f"{prefix}-0-review_comment"] = "Better than it looks."
    response = client.post(url, data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.errors for i in response.context["inline_admin_formsets"] for f in i.formset.forms],
    )
    d2_result.refresh_from_db()
    assert (d2_result.score, d2_result.reviewed_score, d2_result.reviewer) == (4, 7, superuser)
    assert d2_result.reviewed_at is not None
