"""A real cluster grades a comparison across connections it knows from its own environment:
PROVIDERS and the keys' variables are the workers', as in a deployment."""

import json

import pytest

from batches.analytics import batch_analytics
from batches.models import BatchStatus, JobBatch
from grading.models import GradingResult
from tests.conftest import make_document, prebuilt
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.cluster import running_cluster, wait_for
from tests.support.engine import processing
from tests.support.llm_standin import LLMStandin

pytestmark = [pytest.mark.postgres, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

DOCUMENTS = 12
HAIKU = "claude-haiku-4-5"
CLAUDE_KEY = "sk-ant-cluster-test"


def test_a_cluster_grades_each_model_of_a_comparison_through_its_own_connection(owner, settings, monkeypatch):
    with (
        LLMStandin(latency_s=0.02) as hosted,
        LLMStandin(latency_s=0.05) as local,
        AnthropicStandin(api_key=CLAUDE_KEY) as claude,
    ):
        connections = {
            "local": {"kind": "openai", "base_url": local.url, "max_concurrency": 2},
            "claude": {"kind": "anthropic", "base_url": claude.url, "key_env": "CLAUDE_KEY"},
        }
        # The same connections here (the start checks them) and in the workers' environment.
        settings.PROVIDERS = connections
        settings.OPENAI_BASE_URL = hosted.url
        monkeypatch.setenv("CLAUDE_KEY", CLAUDE_KEY)
        batch = JobBatch.objects.create_from_template(
            owner=owner,
            name="Three connections",
            template=prebuilt("academic-essay"),
            settings={
                "provider": "openai",
                "model": "gpt-4o-mini",
                "models": ["gpt-4o-mini", f"claude:{HAIKU}", "local:llama3"],
                **processing(concurrency=16),
            },
        )
        batch.add_documents(
            [
                make_document(owner, f"essay-{i:02}.txt", f"Essay {i} argues for parks. " * 30)
                for i in range(DOCUMENTS)
            ]
        )
        env = {"PROVIDERS": json.dumps(connections), "OPENAI_BASE_URL": hosted.url, "Q_WORKERS": "2"}
        with running_cluster(**env) as cluster:
            batch.start_batch()
            finished = lambda: JobBatch.objects.get(pk=batch.pk).status in BatchStatus.finished()  # noqa: E731
            try:
                wait_for(finished, timeout=120, what="the batch to finish")
            except TimeoutError as error:
                raise AssertionError(f"{error}\n--- cluster log ---\n{cluster.log()}") from None

        batch.refresh_from_db()
        assert batch.status == BatchStatus.COMPLETED
        graded = GradingResult.objects.filter(job__batch=batch)
        assert sorted(set(graded.values_list("provider", "model"))) == [
            ("claude", HAIKU),
            ("local", "llama3"),
            ("openai", "gpt-4o-mini"),
        ]
        assert graded.count() == 3 * DOCUMENTS
        assert hosted.stats()["models"] == {"gpt-4o-mini": DOCUMENTS}
        assert local.stats()["models"] == {"llama3": DOCUMENTS}
        assert claude.stats()["models"] == {HAIKU: DOCUMENTS}
        # The local connection's cap held across both workers.
        assert local.stats()["peak_concurrency"] <= 2
        comparison = batch_analytics(batch)["model_comparison"]
        assert len(comparison) == 3 and all(pair["documents"] == DOCUMENTS for pair in comparison)
