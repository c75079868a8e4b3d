"""Limits on provider calls, and how long a failed job waits before its next attempt.

Per-provider limits are stated by each provider (from the deployment's settings: credentials
and quotas belong to the deployment, not to a batch); per-batch limits come from the job's
settings snapshot.
"""

import random
from typing import Any

from grading.providers import ProviderLimits, UnknownProvider, provider_class
from grading.schema import Processing

PROCESSING_DEFAULTS = Processing()


def provider_limits(name: str) -> ProviderLimits:
    """The limits the provider states; a name no longer registered has none to keep."""
    try:
        return provider_class(name).limits()
    except UnknownProvider:
        return ProviderLimits(source=f"none: unknown provider “{name}”")


def rule(processing: dict[str, Any] | None, name: str) -> Any:
    """A processing rule from a settings snapshot, or the schema's default when absent."""
    value = (processing or {}).get(name)
    return getattr(PROCESSING_DEFAULTS, name) if value is None else value


def backoff_delay(
    attempt: int,
    base_s: float,
    max_s: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the next attempt: exponential backoff with full jitter.

    Full jitter (a uniform draw below the exponential ceiling) spreads the retries
    of many jobs that failed together, so they do not hit the provider again in one
    wave. A provider's Retry-After is a floor, never shortened by the draw.
    """
    ceiling = min(max_s, base_s * 2 ** max(attempt - 1, 0))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
