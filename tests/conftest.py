"""Shared personas and helpers.

The personas: an owner, a colleague the batch is shared with, a stranger and
a staff admin who is not a superuser.
"""

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from batches.models import JobBatch
from grading.models import Document, GradingJob
from templates_app.models import BatchTemplate
from templates_app.prebuilt import install

ON_POSTGRES = settings.IS_POSTGRES
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL-only tests on SQLite; CI runs them in its PostgreSQL pass."""
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass of CI)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def owner(db) -> User:
    return User.objects.create_user("olivia", "olivia@example.com", "pw-olivia")


@pytest.fixture
def colleague(db) -> User:
    return User.objects.create_user("colin", "colin@example.com", "pw-colin")


@pytest.fixture
def stranger(db) -> User:
    return User.objects.create_user("stella", "stella@example.com", "pw-stella")


@pytest.fixture
def staff_admin(db) -> User:
    return User.objects.create_user("sam", "sam@example.com", "pw-sam", is_staff=True)


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw-root")


def prebuilt(slug: str = "academic-essay") -> BatchTemplate:
    """A pre-built template; reinstalled when a transactional test flushed the migration's rows."""
    template = BatchTemplate.objects.filter(slug=slug).first()
    if template is None:
        install(BatchTemplate)
        template = BatchTemplate.objects.get(slug=slug)
    return template


@pytest.fixture
def essay_template(db) -> BatchTemplate:
    return prebuilt("academic-essay")


def make_document(owner: User, name: str = "essay.txt", text: str = "An essay about parks.") -> Document:
    return Document.objects.create(
        file=f"documents/{name}",
        original_name=name,
        size=len(text),
        sha256=Document.digest(text.encode()),
        text=text,
        owner=owner,
    )


def make_batch(owner: User, template: BatchTemplate | None = None, jobs: int = 2, **fields) -> JobBatch:
    template = template or prebuilt("academic-essay")
    batch = JobBatch.objects.create_from_template(
        owner=owner, name=fields.pop("name", "Essays"), template=template, **fields
    )
    if jobs:
        batch.add_documents([make_document(owner, f"essay-{i}.txt") for i in range(jobs)])
    return batch


def set_status(batch: JobBatch, status: str, job_status: str | None = None) -> JobBatch:
    """Put a batch (and optionally all its jobs) in a state without going through the machine."""
    JobBatch.objects.filter(pk=batch.pk).update(status=status)
    if job_status:
        GradingJob.objects.filter(batch=batch).update(status=job_status)
    batch.refresh_from_db()
    return batch


@pytest.fixture
def batch(owner, essay_template) -> JobBatch:
    return make_batch(owner, essay_template)


@pytest.fixture
def multipart_parses(monkeypatch) -> list:
    """Every multipart body Django parses (DRF's MultiPartParser hands the body to it too)."""
    from django.http.multipartparser import MultiPartParser

    calls = []
    parse = MultiPartParser.parse

    def recording(self):
        calls.append(self)
        return parse(self)

    monkeypatch.setattr(MultiPartParser, "parse", recording)
    return calls


@pytest.fixture
def tasks_inline(monkeypatch):
    """django-q2's sync mode: async_task runs the task at once, inside the test's transaction."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def webhook_receiver():
    """A real HTTP server on loopback recording webhook POSTs; answers 200."""
    from tests.webhook_receiver import WebhookReceiver

    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def standin(settings):
    """The openai provider pointed at a fresh Chat Completions stand-in on loopback."""
    from tests.support.llm_standin import LLMStandin

    with LLMStandin() as server:
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        settings.MODEL_PRICES = {}
        yield server


@pytest.fixture
def anthropic_standin(settings):
    """The anthropic provider pointed at a fresh Messages stand-in on loopback."""
    from tests.support.anthropic_standin import AnthropicStandin

    with AnthropicStandin() as server:
        settings.ANTHROPIC_BASE_URL = server.url
        settings.ANTHROPIC_API_KEY = ""
        settings.MODEL_PRICES = {}
        yield server
