"""What the tests of limits learnt from a provider share: a quick batch, outcomes to record, the kept state."""

from grading.claims import Blame, Outcome
from grading.models import ProviderLimitState
from tests.support.engine import OPENAI, processing

# Retries without a wait and a batch rule that never binds: what is measured is the provider's limit.
QUICK = {**OPENAI, **processing(backoff_base_s=0, backoff_max_s=0, concurrency=50)}


def refused(work) -> Outcome:
    """A 429: the provider refused the call, which is its fault and not the job's."""
    return Outcome(
        work,
        error="The provider is rate limiting requests (HTTP 429).",
        transient=True,
        blame=Blame.PROVIDER,
        refused=True,
    )


def answered(work, crowded: bool = True) -> Outcome:
    """An answer to a call made while every slot of its runner was in use (`crowded`)."""
    return Outcome(
        work, error="The provider rejected the request as invalid (HTTP 400).", answered=True, crowded=crowded
    )


def state(provider: str = "openai") -> ProviderLimitState:
    """What is kept of the provider's limits in the database."""
    return ProviderLimitState.objects.get(provider=provider)
