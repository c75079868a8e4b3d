"""Filtering, ordering and pagination of /api/batches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import JobBatch
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt, set_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def batches(owner, colleague):
    now = timezone.now()
    rows = {
        "alpha": make_batch(owner, name="Alpha essays", priority=9, tags=["english", "term-1"], jobs=0),
        "beta": make_batch(
            owner,
            name="Beta reports",
            template=prebuilt("business-report"),
            priority=3,
            tags=["business"],
            description="Quarterly numbers",
            jobs=0,
        ),
        "gamma": make_batch(
            owner,
            name="Gamma papers",
            template=prebuilt("research-paper"),
            priority=5,
            tags=["english", "term-2"],
            jobs=0,
        ),
        "delta": make_batch(colleague, name="Delta essays", priority=7, tags=["english", "term-1"], jobs=0),
    }
    JobBatch.objects.filter(pk=rows["alpha"].pk).update(
        created_at=now - timedelta(days=10), deadline=now + timedelta(days=1)
    )
    JobBatch.objects.filter(pk=rows["beta"].pk).update(
        created_at=now - timedelta(days=5), deadline=now + timedelta(days=30)
    )
    JobBatch.objects.filter(pk=rows["gamma"].pk).update(created_at=now - timedelta(days=1))
    JobBatch.objects.filter(pk=rows["delta"].pk).update(
        created_at=now - timedelta(days=2), deadline=now + timedelta(days=3)
    )
    set_status(rows["beta"], "processing")
    set_status(rows["gamma"], "paused")
    return rows


def names(superuser, query):
    response = client_for(superuser).get(f"/api/batches?{query}")
    assert response.status_code == 200, response.json()
    return [row["name"].split()[0] for row in response.json()["results"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["Gamma", "Delta", "Beta", "Alpha"]),
        ("status=draft", ["Delta", "Alpha"]),
        ("status=processing&status=paused", ["Gamma", "Beta"]),
        ("status=processing,paused", ["Gamma", "Beta"]),
        ("priority_min=5", ["Gamma", "Delta", "Alpha"]),
        ("priority_max=5", ["Gamma", "Beta"]),
        ("priority_min=4&priority_max=8", ["Gamma", "Delta"]),
        ("tags=english", ["Gamma", "Delta", "Alpha"]),
        ("tags=english&tags=term-1", ["Delta", "Alpha"]),
        ("tags=english,term-1", ["Delta", "Alpha"]),
        ("tags=english,business", []),
        ("template=academic-essay", ["Delta", "Alpha"]),
        ("owner=colin", ["Delta"]),
        ("search=essays", ["Delta", "Alpha"]),
        ("search=quarterly", ["Beta"]),
        ("search=TERM-2", ["Gamma"]),
        ("search=alpha essays", ["Alpha"]),
        ("status=draft&tags=english&priority_min=8", ["Alpha"]),
        ("ordering=priority", ["Beta", "Gamma", "Delta", "Alpha"]),
        ("ordering=-priority", ["Alpha", "Delta", "Gamma", "Beta"]),
        ("ordering=name", ["Alpha", "Beta", "Delta", "Gamma"]),
        ("ordering=-name", ["Gamma", "Delta", "Beta", "Alpha"]),
        ("ordering=created_at", ["Alpha", "Beta", "Delta", "Gamma"]),
        ("ordering=deadline", ["Alpha", "Delta", "Beta", "Gamma"]),
        ("ordering=-deadline", ["Beta", "Delta", "Alpha", "Gamma"]),
        ("tags=english&ordering=-priority", ["Alpha", "Delta", "Gamma"]),
        ("status=draft,paused&ordering=name&search=a", ["Alpha", "Delta", "Gamma"]),
    ],
)
def test_filters_and_ordering_combine(superuser, batches, query, expected):
    assert names(superuser, query) == expected


def test_filter_by_template_id_and_owner_id(superuser, owner, batches):
    assert names(superuser, f"template={prebuilt('research-paper').pk}") == ["Gamma"]
    assert names(superuser, f"owner={owner.pk}&ordering=name") == ["Alpha", "Beta", "Gamma"]


def test_filter_by_creation_and_deadline_ranges(superuser, batches):
    now = timezone.now()
    after = (now - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    before = (now - timedelta(days=4)).isoformat().replace("+00:00", "Z")
    assert names(superuser, f"created_after={after}") == ["Gamma", "Delta"]
    assert names(superuser, f"created_before={before}") == ["Beta", "Alpha"]
    deadline = (now + timedelta(days=5)).date().isoformat()
    assert names(superuser, f"deadline_before={deadline}&ordering=deadline") == ["Alpha", "Delta"]


def test_filters_apply_within_what_the_user_may_view(owner, batches):
    assert names(owner, "tags=term-1") == ["Alpha"]


@pytest.fixture
def thirty(owner):
    JobBatch.objects.bulk_create(
        [JobBatch(name=f"Batch {i:02}", owner=owner, template=prebuilt()) for i in range(30)]
    )


def test_pages_default_to_25(owner, thirty):
    body = client_for(owner).get("/api/batches").json()
    assert body["count"] == 30
    assert len(body["results"]) == 25
    assert body["next"].endswith("page=2")
    assert len(client_for(owner).get("/api/batches?page=2").json()["results"]) == 5


@pytest.mark.parametrize(
    "size, expected", [("1", 1), ("10", 10), ("200", 30), ("1000", 30), ("0", 25), ("-5", 25), ("x", 25)]
)
def test_page_size_is_bounded(owner, thirty, size, expected):
    response = client_for(owner).get(f"/api/batches?page_size={size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == expected


def test_page_size_is_capped_at_200(owner):
    JobBatch.objects.bulk_create(
        [JobBatch(name=f"B{i}", owner=owner, template=prebuilt()) for i in range(205)]
    )
    response = client_for(owner).get("/api/batches?page_size=1000")
    assert len(response.json()["results"]) == 200
    assert response.json()["count"] == 205


def test_a_page_past_the_end_is_not_found(owner, thirty):
    assert client_for(owner).get("/api/batches?page=3").status_code == 404


def test_pages_never_overlap_when_sort_keys_tie(owner, thirty):
    client = client_for(owner)
    seen = []
    for page in (1, 2, 3):
        body = client.get(f"/api/batches?ordering=priority&page_size=10&page={page}").json()
        seen += [row["id"] for row in body["results"]]
    assert len(seen) == len(set(seen)) == 30
