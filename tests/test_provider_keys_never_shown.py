"""A connection's key goes to its endpoint and nowhere else: not into the database, an API answer,
a page, the admin, a log record or an export, whether its calls succeed or are refused."""

import io
import logging
import zipfile

import pytest
from django.core.management import call_command
from django_q.conf import Conf

from batches.models import BatchStatus
from grading.models import GradingJob
from grading.providers import GradeRequest, PermanentProviderError, TransientProviderError, get_provider
from tests.api_support import client_for
from tests.conftest import make_batch
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.llm_standin import LLMStandin
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY

# Two keys, each in its own variable: the gateway's is accepted, Claude's is not (a 401, whose
# error is recorded as the job's last error).
GATEWAY_KEY = "sk-live-SWEEP-gateway-7f3a9c41"
CLAUDE_KEY = "sk-ant-SWEEP-wrong-0b2d88e5"
KEYS = (GATEWAY_KEY, CLAUDE_KEY)


@pytest.fixture
def graded(owner, settings, monkeypatch, django_capture_on_commit_callbacks, caplog):
    """A batch graded through two connections with keys, one of them refusing its key."""
    monkeypatch.setenv("GATEWAY_KEY", GATEWAY_KEY)
    monkeypatch.setenv("CLAUDE_SWEEP_KEY", CLAUDE_KEY)
    monkeypatch.setattr(Conf, "SYNC", True)
    caplog.set_level(logging.DEBUG)  # every record of every logger, the SDKs' own included
    with LLMStandin() as gateway, AnthropicStandin(api_key="sk-ant-the-right-one") as claude:
        settings.PROVIDERS = {
            "gateway": {"kind": "openai", "base_url": gateway.url, "key_env": "GATEWAY_KEY"},
            "claude": {"kind": "anthropic", "base_url": claude.url, "key_env": "CLAUDE_SWEEP_KEY"},
        }
        batch = make_batch(
            owner,
            jobs=2,
            settings={
                "provider": "gateway",
                "model": "gpt-4o-mini",
                "models": ["gpt-4o-mini", "claude:claude-haiku-4-5"],
                "processing": {"max_attempts": 1},
            },
        )
        with django_capture_on_commit_callbacks(execute=True):
            batch.start_batch()
        batch.refresh_from_db()
        # The key did reach its own endpoint, so the sweep below looks for something that exists.
        assert {request.headers.get("authorization") for request in gateway.requests} == {
            f"Bearer {GATEWAY_KEY}"
        }
        yield batch


def leaks(text: str) -> list[str]:
    return [key for key in KEYS if key in text]


@pytest.mark.django_db
def test_the_keys_appear_in_no_api_answer_page_admin_page_log_record_export_or_row(
    graded, owner, admin_user, client, caplog
):
    assert graded.status == BatchStatus.COMPLETED_WITH_ERRORS
    refused = GradingJob.objects.filter(batch=graded, provider="claude").first()
    assert "rejected the API key set in CLAUDE_SWEEP_KEY" in refused.last_error
    found: dict[str, list[str]] = {}

    api = client_for(owner)
    for url in (
        "/api/providers",
        "/api/providers?check=1",
        f"/api/batches/{graded.pk}",
        f"/api/batches/{graded.pk}/jobs",
        "/api/jobs",
        f"/api/batches/{graded.pk}/analytics",
        f"/api/batches/{graded.pk}/estimate",
        f"/api/batches/{graded.pk}/export?format=csv",
    ):
        response = api.get(url)
        assert response.status_code == 200, (url, response.status_code)
        found[url] = leaks(
            b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
        )
    export = api.get(f"/api/batches/{graded.pk}/export")
    with zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content))) as archive:
        for name in archive.namelist():
            found[f"export {name}"] = leaks(archive.read(name).decode(errors="replace"))

    client.force_login(owner)
    job = GradingJob.objects.filter(batch=graded).first()
    for url in (
        "/batches/new",
        "/batches/new/scratch",
        f"/batches/{graded.pk}",
        f"/batches/{graded.pk}/jobs/{job.pk}",
        f"/batches/{graded.pk}/edit",
    ):
        found[url] = leaks(client.get(url).content.decode())
    client.force_login(admin_user)
    for url in (
        "/admin/grading/gradingjob/",
        f"/admin/grading/gradingjob/{refused.pk}/change/",
        f"/admin/batches/jobbatch/{graded.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        found[url] = leaks(response.content.decode())

    found["log records"] = leaks(
        "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    )
    rows = io.StringIO()
    call_command("dumpdata", "grading", "batches", "notifications", stdout=rows)
    found["database rows"] = leaks(rows.getvalue())

    assert caplog.records, "the grading left no log record to look through"
    assert {where: keys for where, keys in found.items() if keys} == {}


def grade_through(name: str):
    request = GradeRequest(
        text=STRONG_ESSAY,
        rubric=ACADEMIC_ESSAY_RUBRIC,
        settings=ESSAY_SETTINGS,
        model="gpt-4o-mini",
        timeout_s=5.0,
    )
    return get_provider(name).grade(request)


def test_an_endpoint_that_cannot_be_reached_is_named_without_the_credentials_in_its_url(settings):
    settings.PROVIDERS = {"proxy": {"kind": "openai", "base_url": "http://grader:hunter2@127.0.0.1:9/v1"}}

    with pytest.raises(TransientProviderError) as failed:
        grade_through("proxy")

    assert "Could not connect to http://127.0.0.1:9/v1" in str(failed.value)
    assert "hunter2" not in str(failed.value)


def test_a_refused_key_is_named_by_its_variable_and_never_shown(settings, monkeypatch):
    monkeypatch.setenv("GATEWAY_KEY", GATEWAY_KEY)
    with LLMStandin(fail_with_status=401) as gateway:
        settings.PROVIDERS = {
            "gateway": {"kind": "openai", "base_url": gateway.url, "key_env": "GATEWAY_KEY"}
        }

        with pytest.raises(PermanentProviderError) as failed:
            grade_through("gateway")

    assert "rejected the API key set in GATEWAY_KEY (HTTP 401)" in str(failed.value)
    assert not leaks(str(failed.value))
