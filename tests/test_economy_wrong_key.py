"""A named connection's wrong key fails its economy submission with the variable to fix, never the key."""

import pytest

from batches.models import BatchStatus
from batches.tasks import run_economy
from grading.models import GradingJob, JobStatus, ProviderBatch
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.economy import economy_batch

pytestmark = pytest.mark.django_db

WRONG = "sk-ant-WRONG-KEY-0123456789"


def test_a_wrong_key_fails_the_submission_naming_the_connections_variable_and_not_the_key(
    owner, settings, monkeypatch
):
    with AnthropicStandin(api_key="sk-ant-the-right-one") as server:
        monkeypatch.setenv("CLAUDE_KEY", WRONG)
        settings.PROVIDERS = {
            "claude": {
                "kind": "anthropic",
                "base_url": server.url,
                "key_env": "CLAUDE_KEY",
                "batch_api": True,
            }
        }
        batch = economy_batch(owner, jobs=2, settings={"provider": "claude", "model": "claude-haiku-4-5"})

        report = run_economy()

        assert server.stats()["batches_created"] == 0
    submission = ProviderBatch.objects.get()
    assert submission.status == "failed" and "CLAUDE_KEY" in submission.last_error
    errors = list(GradingJob.objects.in_batch(batch).values_list("status", "last_error"))
    assert {status for status, _ in errors} == {JobStatus.FAILED}
    assert all("CLAUDE_KEY" in error for _, error in errors)
    assert WRONG not in repr(report) + repr(errors) + submission.last_error
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
