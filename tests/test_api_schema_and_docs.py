"""/api/schema (OpenAPI 3), /api/docs (Swagger UI served locally) and the browsable API."""

import re

import pytest

from tests.conftest import make_batch

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    ("/api/batches", "get"),
    ("/api/batches", "post"),
    ("/api/batches/{id}", "get"),
    ("/api/batches/{id}", "put"),
    ("/api/batches/{id}", "patch"),
    ("/api/batches/{id}", "delete"),
    *{
        (f"/api/batches/{{id}}/{action}", "post")
        for action in ("start", "pause", "resume", "cancel", "retry", "duplicate", "archive")
    },
    ("/api/batches/{id}/jobs", "get"),
    ("/api/batches/{id}/jobs", "post"),
    ("/api/batches/{id}/jobs/{job_id}", "delete"),
    ("/api/batches/{id}/documents", "post"),
    ("/api/batches/bulk-operations", "post"),
    ("/api/batch-templates", "get"),
    ("/api/batch-templates", "post"),
    ("/api/batch-templates/{id}", "get"),
    ("/api/batch-templates/{id}", "put"),
    ("/api/batch-templates/{id}", "patch"),
    ("/api/batch-templates/{id}", "delete"),
    ("/api/jobs", "get"),
    ("/api/jobs/{id}", "get"),
    ("/api/auth/token", "post"),
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3_and_names_every_endpoint_without_a_trailing_slash(schema):
    assert schema["openapi"].startswith("3.")
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert documented >= ENDPOINTS
    assert not [path for path in schema["paths"] if path.endswith("/")]


def test_the_schema_names_both_ways_to_sign_in_on_every_operation_that_needs_one(schema):
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
    signed_in = [
        operation
        for item in schema["paths"].values()
        for operation in item.values()
        if "security" in operation
    ]
    assert signed_in
    assert all({"cookieAuth": []} in operation["security"] for operation in signed_in)


def test_every_operation_documents_its_responses_and_errors(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert codes & {"200", "201", "204"}, (path, method)
            if path != "/api/auth/token":
                assert "401" in codes, (path, method)
            if "requestBody" in operation:
                assert "400" in codes, (path, method)


def test_every_operation_documents_the_400_a_query_holding_a_nul_gets(schema, owner):
    # core/request_guards.py answers it before any view runs, on every operation.
    from tests.api_support import client_for

    refused = client_for(owner).get("/api/inbox?note=a%00b")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_query"
    undocumented = [
        (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "400" not in operation["responses"]
    ]
    assert undocumented == []


def test_refused_transitions_document_the_409_body(schema):
    start = schema["paths"]["/api/batches/{id}/start"]["post"]
    conflict = start["responses"]["409"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][conflict.rsplit("/", 1)[1]]
    assert set(body["required"]) == {"detail", "code", "status", "action"}


def test_the_request_bodies_are_described(schema):
    create = schema["paths"]["/api/batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["$ref"].endswith("/JobBatchRequest")
    upload = schema["paths"]["/api/batches/{id}/documents"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    bulk = schema["paths"]["/api/batches/bulk-operations"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert bulk["schema"]["$ref"].endswith("/BulkOperationRequest")


def test_the_docs_page_is_served_without_any_cdn(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == []
    for asset in re.findall(r"""(?:src|href)=["'](/static/[^"']+)""", html):
        assert "drf_spectacular_sidecar" in asset


def browsable_urls(schema: dict, batch) -> list[str]:
    """Every path of the schema, with ids of real objects, so routes added later join in."""
    job = batch.jobs.first()
    ids = {"batches": batch.pk, "jobs": job.pk, "batch-templates": batch.template_id}
    urls = ["/api/"]
    for path in schema["paths"]:
        url = path.replace("{batch_id}", str(batch.pk)).replace("{job_id}", str(job.pk)).replace("{eid}", "1")
        urls.append(url.replace("{id}", str(ids.get(path.split("/")[2], 1))))
    return urls


def test_the_browsable_api_renders_every_endpoint_for_a_signed_in_user(client, superuser, schema):
    batch = make_batch(superuser)
    client.force_login(superuser)
    for url in browsable_urls(schema, batch):
        response = client.get(url, HTTP_ACCEPT="text/html")
        # 409: a job's feedback sheet while nothing is graded.
        assert response.status_code in (200, 404, 405, 409), (url, response.status_code)
        if response.get("Content-Disposition", "").startswith("attachment"):
            continue  # a download (the export) is a file, not a page
        assert response["Content-Type"].startswith("text/html"), url
        assert b"Django REST framework" in response.content, url
    assert client.get(f"/api/batches/{batch.pk}", HTTP_ACCEPT="text/html").status_code == 200
