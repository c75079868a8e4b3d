"""What providers that call an HTTP endpoint share: keys on loopback, Retry-After, HTTP statuses as
our errors, the MODEL_PRICES setting, and keeping a key out of every sentence.

Nothing here imports an SDK or Django: providers hand in what they read from their settings.
"""

from __future__ import annotations

import email.utils
import ipaddress
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grading.providers.base import PermanentProviderError, ProviderError, Quota, TransientProviderError

# Placeholder for local servers (Ollama, vLLM, llama.cpp, a stand-in) that ignore the key but need a header.
LOOPBACK_KEY = "no-key-needed-on-loopback"
# Statuses worth retrying besides 5xx; every other 4xx will fail the same way again.
TRANSIENT_STATUSES = frozenset({408, 409, 429})
STATUS_REASONS = {
    400: "rejected the request as invalid",
    401: "rejected the API key",
    403: "refused access to this model or endpoint",
    404: "does not know this model or endpoint",
    422: "could not process the request",
}
PRICES_FORMAT = (
    'MODEL_PRICES must be JSON like {"model": [input_per_million, output_per_million]}, '
    "optionally followed by the cache-write and cache-read prices per million, none negative."
)


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown_url(base_url: str) -> str:
    """The endpoint as it may appear in an error: without any user name or password, query or fragment
    in it (gateways take keys there: `?key=…`, `?api-key=…`)."""
    parts = urlsplit(base_url)
    if "@" not in parts.netloc and not parts.query and not parts.fragment:
        return base_url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query="", fragment=""))


def endpoint(base_url: str, api_key: str, key_setting: str, connection: str = "") -> tuple[str, str]:
    """The endpoint and the key to send: a loopback server (Ollama, vLLM, llama.cpp) needs none."""
    if api_key:
        return base_url, api_key
    if not is_loopback(base_url):
        named = f" (connection “{connection}”)" if connection else ""
        raise PermanentProviderError(
            f"No API key is configured for {shown_url(base_url)}{named}: set {key_setting} in the environment."
        )
    return base_url, LOOPBACK_KEY


def redacted(text: str, secret: str | None) -> str:
    """The text with the secret taken out, should an endpoint or a library ever echo it."""
    if not secret or secret == LOOPBACK_KEY:
        return text
    return text.replace(secret, "[redacted]")


def retry_after_seconds(headers) -> float | None:
    """The server's requested wait, from `retry-after-ms` or `Retry-After` (seconds or a date)."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


# OpenAI's rate-limit headers: x-ratelimit-{limit,remaining,reset}-{requests,tokens}; resets are
# durations ("1s", "6m0s", "250ms"). Anthropic's: anthropic-ratelimit-{requests,tokens,
# input-tokens,output-tokens}-{limit,remaining,reset}; resets are RFC 3339 times. Each is read
# wherever it is present, so a gateway that sends either family is understood.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(value: str | None) -> float | None:
    """Seconds of a reset duration ("1s", "6m0s", "250ms", "1h2m3.5s", or a plain number), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def moment_seconds(value: str | None) -> float | None:
    """Seconds from now until an RFC 3339 moment (a reset time), never negative; None if unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - time.time())


def _int_header(headers, name: str) -> int | None:
    value = headers.get(name)
    try:
        return max(0, int(float(value))) if value not in (None, "") else None
    except ValueError:
        return None


def quota_from_headers(headers) -> Quota | None:
    """What the reply's rate-limit headers say is left (OpenAI's or Anthropic's); None without any."""
    if headers is None:
        return None
    found: dict[str, object] = {}
    for kind in ("requests", "tokens"):
        # Anthropic's "tokens" is the most restrictive of its token limits; without it, input tokens.
        names = [kind] if kind == "requests" else ["tokens", "input-tokens"]
        for name in names:
            remaining = _int_header(headers, f"anthropic-ratelimit-{name}-remaining")
            if remaining is not None:
                found[f"{kind}_remaining"] = remaining
                found[f"{kind}_limit"] = _int_header(headers, f"anthropic-ratelimit-{name}-limit")
                found[f"{kind}_reset_s"] = moment_seconds(headers.get(f"anthropic-ratelimit-{name}-reset"))
                break
        remaining = _int_header(headers, f"x-ratelimit-remaining-{kind}")
        if remaining is not None and f"{kind}_remaining" not in found:
            found[f"{kind}_remaining"] = remaining
            found[f"{kind}_limit"] = _int_header(headers, f"x-ratelimit-limit-{kind}")
            found[f"{kind}_reset_s"] = duration_seconds(headers.get(f"x-ratelimit-reset-{kind}"))
    return Quota(**found, seen_at=time.time()) if found else None


def status_error(
    status: int,
    message: str,
    headers,
    *,
    busy: dict[int, str] | None = None,
    reasons: dict[int, str] | None = None,
) -> ProviderError:
    """An HTTP error status as our error, with a sentence fit to show as the job's last error.

    `busy` names the statuses by which the provider says to come back later (429, and
    Anthropic's 529), with the wait it asks for; other 5xx, 408 and 409 are transient too;
    every other status is permanent, with its reason from `reasons` (over STATUS_REASONS).
    """
    busy = {429: "is rate limiting requests", **(busy or {})}
    wait = retry_after_seconds(headers)
    quota = quota_from_headers(headers)
    if status in busy:
        hint = f" Retry after {round(wait, 1):g} seconds." if wait is not None else ""
        return TransientProviderError(
            f"The provider {busy[status]} (HTTP {status}): {message}.{hint}",
            retry_after=wait,
            status_code=status,
            quota=quota,
        )
    if status >= 500 or status in TRANSIENT_STATUSES:
        return TransientProviderError(
            f"The provider failed with HTTP {status}: {message}.",
            retry_after=wait,
            status_code=status,
            quota=quota,
        )
    reason = {**STATUS_REASONS, **(reasons or {})}.get(status, "refused the request")
    return PermanentProviderError(f"The provider {reason} (HTTP {status}): {message}.", status_code=status)


def configured_prices(raw: dict) -> dict[str, tuple[float, ...]]:
    """The MODEL_PRICES setting (parsed from JSON at start-up), checked model by model.

    Each model gets its input and output prices per million tokens, and optionally its
    cache-write and cache-read prices (providers without prompt caching ignore them).
    """
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(PRICES_FORMAT)
    prices = {}
    for name, row in raw.items():
        if not isinstance(row, list | tuple) or len(row) not in (2, 4):
            raise ValueError(PRICES_FORMAT)
        try:
            prices[str(name)] = tuple(float(value) for value in row)
        except (ValueError, TypeError) as error:
            raise ValueError(PRICES_FORMAT) from error
        # JSON as Python reads it takes NaN and Infinity: a price must be a real amount, and no
        # provider pays the school for tokens.
        if not all(math.isfinite(value) and value >= 0 for value in prices[str(name)]):
            raise ValueError(PRICES_FORMAT)
    return prices


# Large enough that a worker keeping dozens of calls in flight never waits for a socket.
POOL_CONNECTIONS = 256


class Clients:
    """One SDK client per endpoint and key, made on first use and shared by every thread.

    The threads share its connection pool; `make(base_url, api_key, limits)` builds one
    (the SDK is imported there, never when a provider is only described).
    """

    def __init__(self, make: Callable[[str, str, Any], Any]):
        self._make = make
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, base_url: str, api_key: str) -> Any:
        key = (base_url, api_key)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    import httpx2

                    limits = httpx2.Limits(
                        max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
                    )
                    client = self._clients[key] = self._make(base_url, api_key, limits)
        return client
