"""Whether each connection can grade: listed by GET /api/providers and on the pages that choose one,
and a batch on a connection that is not ready refused at start with the sentence saying why."""

import pytest

from batches.models import BatchStatus
from grading.models import GradingJob, JobStatus
from grading.providers.readiness import forget_reachability
from tests.api_support import client_for
from tests.conftest import make_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db

AZURE = {"kind": "openai", "base_url": "https://azure.example.com/openai/v1", "key_env": "AZURE_OPENAI_KEY"}
LOCAL = {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "max_concurrency": 2}


@pytest.fixture(autouse=True)
def connections(settings, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_KEY", raising=False)
    settings.PROVIDERS = {"azure": AZURE, "local": LOCAL}
    forget_reachability()
    yield
    forget_reachability()


def start(user, batch):
    return client_for(user).post(f"/api/batches/{batch.pk}/start")


# --- at start -------------------------------------------------------------------------------------


def test_a_batch_on_a_connection_without_its_key_is_refused_at_start_naming_the_variable(owner):
    batch = make_batch(owner, settings={"provider": "azure", "model": "gpt-4o"})

    response = start(owner, batch)

    assert response.status_code == 409
    assert "set AZURE_OPENAI_KEY in the environment" in response.json()["detail"]
    assert "connection “azure”" in response.json()["detail"]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT
    assert not GradingJob.objects.filter(batch=batch, status=JobStatus.QUEUED).exists()


def test_a_comparison_naming_a_connection_without_its_key_is_refused_at_start(owner):
    batch = make_batch(owner, settings={"provider": "builtin", "models": ["builtin-v1", "azure:gpt-4o"]})

    response = start(owner, batch)

    assert response.status_code == 409
    assert "AZURE_OPENAI_KEY" in response.json()["detail"]


def test_once_its_key_is_set_the_connection_starts(owner, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_KEY", "sk-azure-test")
    batch = make_batch(owner, settings={"provider": "azure", "model": "gpt-4o"})

    assert start(owner, batch).status_code == 200


def test_a_remote_connection_naming_no_key_variable_is_refused_saying_to_give_it_one(owner, settings):
    settings.PROVIDERS = {"gateway": {"kind": "openai", "base_url": "https://gateway.example.com/v1"}}
    batch = make_batch(owner, settings={"provider": "gateway", "model": "gpt-4o"})

    response = start(owner, batch)

    assert response.status_code == 409
    assert "give it a key_env" in response.json()["detail"]


def test_a_connection_on_loopback_needs_no_key(owner):
    batch = make_batch(owner, settings={"provider": "local", "model": "llama3"})

    assert start(owner, batch).status_code == 200


def test_a_connection_of_kind_anthropic_refuses_a_model_that_is_not_claude(owner, settings, monkeypatch):
    monkeypatch.setenv("CLAUDE_KEY", "sk-ant-test")
    settings.PROVIDERS = {"claude": {"kind": "anthropic", "key_env": "CLAUDE_KEY"}}
    batch = make_batch(owner, settings={"provider": "claude", "model": "gpt-4o"})

    response = start(owner, batch)

    assert response.status_code == 409
    assert "the claude provider cannot grade with it" in response.json()["detail"]


# --- GET /api/providers -----------------------------------------------------------------------------


def listed(user, query: str = "") -> dict[str, dict]:
    response = client_for(user).get(f"/api/providers{query}")
    assert response.status_code == 200, response.content
    return {row["name"]: row for row in response.json()}


def test_the_api_lists_every_connection_with_its_kind_endpoint_limits_and_readiness(owner, settings):
    settings.OPENAI_API_KEY = "sk-openai-test"

    rows = listed(owner)

    assert list(rows) == ["anthropic", "azure", "builtin", "local", "openai"]
    assert rows["local"] == {
        "name": "local",
        "kind": "openai",
        "base_url": "http://127.0.0.1:11434/v1",
        "key_env": "",
        "limits": {"max_concurrency": 2, "requests_per_minute": None, "tokens_per_minute": 0},
        "ready": True,
        "problem": None,
        "reachable": None,
    }
    assert rows["azure"]["ready"] is False
    assert "set AZURE_OPENAI_KEY" in rows["azure"]["problem"]
    assert rows["openai"]["ready"] is True and rows["builtin"]["ready"] is True


def test_an_endpoint_with_credentials_in_its_url_is_listed_without_them(owner, settings):
    settings.PROVIDERS = {"proxy": {"kind": "openai", "base_url": "http://user:hunter2@127.0.0.1:8080/v1"}}

    row = listed(owner)["proxy"]

    assert row["base_url"] == "http://127.0.0.1:8080/v1"


def test_checking_finds_an_endpoint_that_does_not_answer_and_one_that_does(owner, settings):
    with LLMStandin() as standin:
        settings.PROVIDERS = {
            "down": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
            "up": {
                "kind": "openai",
                "base_url": standin.url,
            },
        }

        unchecked = listed(owner)
        checked = listed(owner, "?check=1")
        kept = listed(owner)

    assert unchecked["down"]["reachable"] is None and unchecked["down"]["ready"] is True
    assert checked["up"]["reachable"] is True and checked["up"]["ready"] is True
    assert checked["down"]["reachable"] is False and checked["down"]["ready"] is False
    assert "The connection “down” does not answer at http://127.0.0.1:9/v1" in checked["down"]["problem"]
    # The result is kept a minute: a later list shows it without checking again.
    assert kept["down"]["reachable"] is False


def test_a_check_value_that_is_not_a_yes_or_no_is_a_400(owner):
    response = client_for(owner).get("/api/providers?check=maybe")

    assert response.status_code == 400
    assert "check=1" in str(response.json())


def test_listing_connections_needs_a_signed_in_user():
    assert client_for(None).get("/api/providers").status_code == 401


# --- the pages that choose a connection ---------------------------------------------------------------


@pytest.mark.parametrize("page", ["/batches/new", "/batches/new/scratch"])
def test_the_pages_that_choose_a_connection_list_them_and_mark_those_not_ready(client, owner, page):
    client.force_login(owner)

    html = client.get(page).content.decode()

    assert '<option value="azure">azure (not ready)</option>' in html
    assert '<option value="local">local</option>' in html
    assert "set AZURE_OPENAI_KEY in the environment" in html
    assert "http://127.0.0.1:11434/v1" in html
