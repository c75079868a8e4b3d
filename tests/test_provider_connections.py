"""Named provider connections: declared in PROVIDERS, each graded through with its own endpoint,
key, limits and prices, and several of them compared in one batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_q.conf import Conf

from batches.analytics import batch_analytics
from batches.models import BatchStatus
from grading import estimate
from grading.limits import provider_limits
from grading.models import GradingJob, GradingResult
from grading.providers import available_providers, connection_label, get_provider, provider_class
from grading.schema import split_target
from tests.conftest import make_batch
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.llm_standin import LLMStandin

ROOT = Path(__file__).resolve().parent.parent
HAIKU = "claude-haiku-4-5"


def manage_check(**env: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a fresh process with these variables set."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PROVIDERS", "PROVIDERS_FILE")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("{not json", "PROVIDERS must be JSON: Expecting property name enclosed in double quotes"),
        ('["local"]', "PROVIDERS must be a JSON object of connections"),
        ('{"local": {"base_url": "http://127.0.0.1:11434/v1"}}', "the connection “local” has kind null"),
        ('{"azure": {"kind": "openai", "requests_per_minute": "lots"}}', "“azure” has requests_per_minute"),
        ('{"azure": {"kind": "openai", "max_concurrency": 0}}', "“azure” has max_concurrency 0"),
        ('{"azure": {"kind": "openai", "base_url": "api.example.com"}}', "“azure” has a base_url"),
        ('{"azure": {"kind": "openai", "key_env": "MY KEY"}}', "“azure” has a key_env"),
        ('{"azure": {"kind": "openai", "prices": {"gpt-4o": [2.5]}}}', "“azure” has prices"),
        ('{"azure": {"kind": "openai", "timeout": 3}}', "“azure” has an unknown field “timeout”"),
        ('{"Azure EU": {"kind": "openai"}}', "the connection “Azure EU” needs a name"),
        ('{"builtin": {"kind": "openai"}}', "the connection “builtin” takes the offline grader's name"),
    ],
)
def test_a_bad_providers_value_stops_start_up_with_one_sentence_naming_the_connection_and_field(
    value, sentence
):
    loaded = manage_check(PROVIDERS=value)

    assert loaded.returncode == 1
    assert sentence in loaded.stderr
    assert loaded.stderr.count("\n") == 1 and "Traceback" not in loaded.stderr


def test_a_key_written_into_providers_is_refused_without_repeating_it():
    loaded = manage_check(PROVIDERS='{"azure": {"kind": "openai", "api_key": "sk-WRITTEN-IN-PLAIN"}}')

    assert loaded.returncode == 1
    assert "name that variable in key_env" in loaded.stderr
    assert "sk-WRITTEN-IN-PLAIN" not in loaded.stderr


def test_providers_may_come_from_a_file(tmp_path):
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}))

    assert manage_check(PROVIDERS_FILE=str(path)).returncode == 0
    missing = manage_check(PROVIDERS_FILE=str(tmp_path / "nowhere.json"))
    assert missing.returncode == 1
    assert "PROVIDERS_FILE names" in missing.stderr and "cannot be read" in missing.stderr


# --- each connection is a provider of its kind, bound to its own settings ---------------------------


AZURE = {
    "kind": "openai",
    "base_url": "https://azure.example.com/openai/v1",
    "key_env": "AZURE_OPENAI_KEY",
    "max_concurrency": 24,
    "requests_per_minute": 600,
    "tokens_per_minute": 150_000,
    "prices": {"gpt-4o": [2.0, 8.0]},
}


def test_a_declared_connection_is_a_provider_name_beside_the_default_ones(settings):
    settings.PROVIDERS = {
        "azure": AZURE,
        "local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"},
    }

    assert available_providers() == ["anthropic", "azure", "builtin", "local", "openai"]
    assert provider_class("azure").name == "azure"
    assert get_provider("local") is get_provider("local")
    assert connection_label("local") == "local (openai)"
    assert connection_label("openai") == "openai"


def test_a_connection_states_its_own_limits_and_prices_over_its_kinds(settings):
    settings.PROVIDERS = {"azure": AZURE}
    settings.OPENAI_MAX_CONCURRENCY = 16
    settings.MODEL_PRICES = {}

    azure = provider_limits("azure")
    assert (azure.max_concurrency, azure.requests_per_minute, azure.tokens_per_minute) == (24, 600, 150_000)
    assert provider_limits("openai").max_concurrency == 16
    assert provider_class("azure").price_for("gpt-4o") == (2.0, 8.0)
    assert provider_class("openai").price_for("gpt-4o") == (2.5, 10.0)


def test_a_connection_without_stated_limits_takes_its_kinds_default_cap(settings):
    settings.PROVIDERS = {
        "claude": {"kind": "anthropic", "key_env": "CLAUDE_KEY"},
        "free": {"kind": "openai"},
    }

    assert provider_limits("claude").max_concurrency == 8
    assert provider_limits("free").max_concurrency == 16
    assert provider_limits("free").tokens_per_minute == 0


def test_a_models_entry_names_any_connection_by_its_prefix(settings):
    settings.PROVIDERS = {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}

    assert split_target("local:llama3", "openai") == ("local", "llama3")
    # An Ollama tag is still one model of the batch's connection.
    assert split_target("llama3.1:8b", "local") == ("local", "llama3.1:8b")


@pytest.mark.django_db
def test_the_estimate_prices_each_connection_with_its_own_prices_and_names_its_kind(owner, settings):
    settings.PROVIDERS = {"azure": AZURE}
    settings.MODEL_PRICES = {}
    batch = make_batch(owner, jobs=2, settings={"provider": "openai", "models": ["gpt-4o", "azure:gpt-4o"]})

    rows = {row["provider"]: row for row in estimate.estimate_batch(batch)["by_model"]}

    # A connection's prices without a cached rate pay the full input price for cached tokens.
    assert rows["azure"]["price_per_million_tokens"] == {"input": 2.0, "cached_input": 2.0, "output": 8.0}
    assert rows["openai"]["price_per_million_tokens"] == {"input": 2.5, "cached_input": 1.25, "output": 10.0}
    assert (rows["azure"]["kind"], rows["openai"]["kind"]) == ("openai", "openai")


# --- a comparison across connections ------------------------------------------------------------


@pytest.fixture
def three_endpoints(settings, monkeypatch):
    """Two Chat Completions stand-ins (the openai connection and `local`) and a Messages stand-in."""
    with (
        LLMStandin() as hosted,
        LLMStandin(latency_s=0.05) as local,
        AnthropicStandin(api_key="sk-ant-standin") as claude,
    ):
        settings.OPENAI_BASE_URL = hosted.url
        settings.OPENAI_API_KEY = "sk-hosted"
        settings.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
        settings.ANTHROPIC_API_KEY = ""
        settings.MODEL_PRICES = {}
        monkeypatch.setenv("CLAUDE_KEY", "sk-ant-standin")
        settings.PROVIDERS = {
            "local": {"kind": "openai", "base_url": local.url, "max_concurrency": 2},
            "claude": {"kind": "anthropic", "base_url": claude.url, "key_env": "CLAUDE_KEY"},
        }
        yield hosted, local, claude


COMPARISON = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "models": ["gpt-4o-mini", f"claude:{HAIKU}", "local:llama3"],
    "processing": {"concurrency": 8},
}


@pytest.mark.django_db
def test_a_comparison_across_three_connections_grades_each_through_its_own_and_agrees(
    owner, three_endpoints, monkeypatch, django_capture_on_commit_callbacks
):
    hosted, local, claude = three_endpoints
    monkeypatch.setattr(Conf, "SYNC", True)
    batch = make_batch(owner, jobs=4, settings=COMPARISON)

    with django_capture_on_commit_callbacks(execute=True):
        batch.start_batch()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    graded = sorted(GradingResult.objects.filter(job__batch=batch).values_list("provider", "model"))
    assert graded == [("claude", HAIKU)] * 4 + [("local", "llama3")] * 4 + [("openai", "gpt-4o-mini")] * 4
    # Each endpoint received its own model's calls and no other's, with its own key.
    assert hosted.stats()["models"] == {"gpt-4o-mini": 4}
    assert local.stats()["models"] == {"llama3": 4}
    assert claude.stats()["models"] == {HAIKU: 4}
    assert {request.headers.get("authorization") for request in hosted.requests} == {"Bearer sk-hosted"}
    assert "Bearer sk-hosted" not in {request.headers.get("authorization") for request in local.requests}
    # The local connection's own cap (2), not the batch's concurrency (8), bounded its calls.
    assert local.stats()["peak_concurrency"] <= 2
    comparison = batch_analytics(batch)["model_comparison"]
    assert sorted(tuple(pair["models"]) for pair in comparison) == [
        (f"claude:{HAIKU}", "local:llama3"),
        (f"claude:{HAIKU}", "openai:gpt-4o-mini"),
        ("local:llama3", "openai:gpt-4o-mini"),
    ]
    assert all(pair["documents"] == 4 and pair["exact"] is not None for pair in comparison)
    kinds = {row["provider"]: row["kind"] for row in batch_analytics(batch)["by_model"]}
    assert kinds == {"claude": "anthropic", "local": "openai", "openai": "openai"}


@pytest.mark.django_db
def test_the_admin_lists_each_job_with_its_connection_and_kind(admin_user, client, owner, settings):
    settings.PROVIDERS = {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}
    batch = make_batch(owner, jobs=1)
    GradingJob.objects.filter(batch=batch).update(provider="local", model="llama3")
    client.force_login(admin_user)

    listing = client.get("/admin/grading/gradingjob/").content.decode()
    inline = client.get(f"/admin/batches/jobbatch/{batch.pk}/change/").content.decode()

    assert "local (openai)" in listing
    assert "local (openai)" in inline


def test_a_connection_has_a_batch_api_on_its_providers_own_endpoint_or_when_it_says_so(settings):
    from grading.providers import get_provider

    settings.PROVIDERS = {
        "local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"},
        "direct": {"kind": "openai", "key_env": "DIRECT_KEY"},
        "proxy": {"kind": "anthropic", "base_url": "https://proxy.example/anthropic", "batch_api": True},
    }

    assert get_provider("local").supports_batch_api() is False
    assert get_provider("direct").supports_batch_api() is True
    assert get_provider("proxy").supports_batch_api() is True
    assert get_provider("builtin").supports_batch_api() is False
