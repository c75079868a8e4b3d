"""GET /api/batches/<id>/jobs filters and sorts as the batch page's review queue does."""

import pytest
from rest_framework.test import APIClient

from tests.review_support import comparison_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def compared(owner):
    return comparison_batch(owner)


def listed(owner, batch, query: str):
    api = APIClient()
    api.force_authenticate(owner)
    return api.get(f"/api/batches/{batch.pk}/jobs{query}")


def test_low_confidence_jobs_come_with_the_reasons_for_a_second_look(owner, compared):
    batch, jobs = compared
    response = listed(owner, batch, "?show=low_confidence")
    assert response.status_code == 200
    body = response.json()
    assert [job["id"] for job in body["results"]] == [
        jobs[("bravo.txt", "builtin")].pk,
        jobs[("bravo.txt", "openai")].pk,
        jobs[("charlie.txt", "builtin")].pk,
    ]
    assert body["results"][0]["confidence"] == {
        "low": True,
        "reasons": ["models differ by 40 %"],
        "spread": 40.0,
    }
    assert body["results"][2]["confidence"]["reasons"] == ["69.0 % is within 2 points of the 70 % boundary"]


def test_filters_combine_with_the_job_filters_and_sorts_apply(owner, compared):
    batch, jobs = compared
    body = listed(owner, batch, "?show=not_reviewed&provider=openai&ordering=-score").json()
    assert [job["id"] for job in body["results"]] == [
        jobs[("bravo.txt", "openai")].pk,
        jobs[("charlie.txt", "openai")].pk,
        jobs[("delta.txt", "openai")].pk,
    ]
    assert body["count"] == 3


def test_an_unknown_filter_or_sort_is_a_400_naming_it(owner, compared):
    batch, _ = compared
    response = listed(owner, batch, "?show=not_reviewed,easy")
    assert response.status_code == 400
    assert "“easy” is not a filter of jobs" in response.json()["show"][0]
    response = listed(owner, batch, "?ordering=name")
    assert response.status_code == 400
    assert "“name” is not a way to sort jobs" in response.json()["ordering"][0]


def test_a_stranger_cannot_list_the_queue(stranger, compared):
    batch, _ = compared
    assert listed(stranger, batch, "?show=failed").status_code == 404
