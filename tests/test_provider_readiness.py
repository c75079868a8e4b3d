"""A batch whose provider cannot work on this server is refused at start with what to set."""

import pytest

from batches.models import BatchStatus
from grading.models import GradingJob, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


def start(user, batch):
    return client_for(user).post(f"/api/batches/{batch.pk}/start")


def test_a_remote_openai_endpoint_without_a_key_is_refused_at_start(owner, settings):
    settings.OPENAI_BASE_URL = "https://llm.example.com/v1"
    settings.OPENAI_API_KEY = ""
    batch = make_batch(owner, settings={"provider": "openai", "model": "gpt-4o-mini"})

    response = start(owner, batch)

    assert response.status_code == 409
    assert "set OPENAI_API_KEY" in response.json()["detail"]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT
    assert not GradingJob.objects.filter(batch=batch, status=JobStatus.QUEUED).exists()


def test_openai_with_the_builtin_graders_model_left_in_is_refused_naming_the_model(owner, settings):
    settings.OPENAI_API_KEY = "sk-test"
    batch = make_batch(owner, settings={"provider": "openai"})  # the template's model is builtin-v1

    response = start(owner, batch)

    assert response.status_code == 409
    assert "“builtin-v1” is the builtin grader's model" in response.json()["detail"]


def test_the_builtin_grader_with_another_providers_model_is_refused(owner):
    batch = make_batch(owner, settings={"provider": "builtin", "model": "gpt-4o-mini"})

    response = start(owner, batch)

    assert response.status_code == 409
    assert "builtin-v1" in response.json()["detail"]


def test_a_provider_that_can_work_starts(owner, settings):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = "https://llm.example.com/v1"
    batch = make_batch(owner, settings={"provider": "openai", "model": "gpt-4o-mini"})

    assert start(owner, batch).status_code == 200


def test_an_upload_into_an_auto_start_draft_with_a_broken_provider_leaves_it_a_draft(owner, settings):
    settings.OPENAI_BASE_URL = "https://llm.example.com/v1"
    settings.OPENAI_API_KEY = ""
    batch = make_batch(
        owner,
        jobs=0,
        settings={"provider": "openai", "model": "gpt-4o-mini", "processing": {"auto_start": True}},
    )

    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/documents", {"files": [_file()]}, format="multipart"
    )

    assert response.status_code == 201, response.json()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT


def _file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("essay.txt", b"An essay about rivers.")


def test_the_batch_page_says_why_a_draft_cannot_start(owner, settings, client):
    settings.OPENAI_BASE_URL = "https://llm.example.com/v1"
    settings.OPENAI_API_KEY = ""
    batch = make_batch(owner, settings={"provider": "openai", "model": "gpt-4o-mini"})
    client.force_login(owner)

    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert "This batch cannot start yet" in page
    assert "set OPENAI_API_KEY" in page
