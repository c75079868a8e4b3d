"""The error contract: bad input of any kind is a 400 (or 404), never a 500."""

import pytest

from batches.models import JobBatch
from tests.api_support import client_for

pytestmark = pytest.mark.django_db


def raw_post(user, path, body: bytes | str, content_type="application/json"):
    return client_for(user).generic("POST", path, body, content_type=content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b'{"name": "x",}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50 + b"1" + b"}" * 50,
        b'{"name": "X", "template": "academic-essay", "priority": NaN}',
        b'{"name": "X", "template": "academic-essay", "priority": Infinity}',
        b'{"name": "X", "template": "academic-essay", "priority": 1e400}',
        b'{"name": "X", "template": "academic-essay", "priority": ' + b"9" * 5000 + b"}",
        b"\xff\xfe\x00garbage",
        b"",
    ],
)
def test_malformed_json_is_a_400(owner, essay_template, body):
    response = raw_post(owner, "/api/batches", body)
    assert response.status_code == 400
    assert not JobBatch.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "nul\x00name", "template": "academic-essay"},
        {"name": "X", "template": "academic\x00essay"},
        {"name": "X", "template": "academic-essay", "tags": ["a\x00b"]},
        {"name": "X", "template": "academic-essay", "description": "\x00"},
        {"name": "X", "template": "academic-essay", "settings": {"instructions": "a\x00b"}},
        {"name": "X", "template": "academic-essay", "settings": {"k\x00": 1}},
    ],
)
def test_nul_characters_are_a_400(owner, essay_template, body):
    response = client_for(owner).post("/api/batches", body, format="json")
    assert response.status_code == 400
    assert not JobBatch.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": 12, "template": "academic-essay", "priority": "high"},
        {"name": ["X"], "template": "academic-essay"},
        {"name": "X", "template": True},
        {"name": "X", "template": 10**30},
        {"name": "X", "template": "academic-essay", "priority": 10**30},
        {"name": "X", "template": "academic-essay", "priority": 5.5},
        {"name": "X", "template": "academic-essay", "deadline": "2024-02-30T00:00:00Z"},
        {"name": "X", "template": "academic-essay", "deadline": "0001-01-01T00:00:00+14:00"},
        {"name": "X", "template": "academic-essay", "deadline": 12345},
        {"name": "X", "template": "academic-essay", "settings": {"temperature": 10**300}},
        {"name": "X", "template": "academic-essay", "settings": {"max_output_tokens": 10**300}},
        {
            "name": "X",
            "template": "academic-essay",
            "settings": {"rubric": {"criteria": [{"points": 1e308}]}},
        },
        {"name": "X", "template": "academic-essay", "unknown": 1},
        ["not", "an", "object"],
        "a string",
    ],
)
def test_wrong_types_huge_numbers_and_bad_dates_are_a_400(owner, essay_template, body):
    response = client_for(owner).post("/api/batches", body, format="json")
    assert response.status_code == 400, response.content
    assert not JobBatch.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/batches/abc",
        "/api/batches/99999999999999999999999",
        "/api/batches/-1",
        "/api/batches/1%00",
        "/api/nothing-here",
    ],
)
def test_unknown_paths_and_ids_are_a_json_404(owner, path):
    response = client_for(owner).get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "query",
    [
        "status=nonsense",
        "priority_min=abc",
        "priority_max=1e999",
        "created_after=yesterday",
        "deadline_before=2024-13-01",
        "ordering=password",
        "search=%00",
        "tags=a%00b",
        "template=%00",
        "owner=%00",
        "page=abc",
        "page=99999999999999999999",
    ],
)
def test_bad_query_parameters_are_a_400_or_404(owner, query):
    response = client_for(owner).get(f"/api/batches?{query}")
    assert response.status_code in (400, 404), response.content


def test_a_bad_query_parameter_names_itself(owner):
    response = client_for(owner).get("/api/batches?priority_min=abc")
    assert response.status_code == 400
    assert "priority_min" in response.json()


def test_unsupported_media_types_are_a_415(owner):
    response = raw_post(owner, "/api/batches", b"<x/>", content_type="application/xml")
    assert response.status_code == 415
