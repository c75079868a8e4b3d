"""Per-minute request and token limits as real providers keep them, for the loopback stand-ins.

Each limit is a bucket that holds a minute's worth and refills continuously at the limit per
minute. A request reserves one request and its tokens when it arrives — the prompt's (characters
/ 4) and the most output it asks for (`max_completion_tokens` / `max_tokens`), as providers count
a request before it runs — and gets back, when it is answered, the output it did not use. A
request the buckets cannot pay for is answered 429. Every reply announces what is left in the
headers of the provider being played: OpenAI's `x-ratelimit-*` (resets as durations, "1s",
"6m0s", "250ms") or Anthropic's `anthropic-ratelimit-*` (resets as RFC 3339 times).
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime

CHARS_PER_TOKEN = 4


class Bucket:
    def __init__(self, per_minute: int, clock=time.monotonic):
        self.limit = per_minute
        self.level = float(per_minute)
        self._clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(float(self.limit), self.level + (now - self._at) * self.limit / 60)
        self._at = now

    def take(self, amount: float) -> bool:
        self._refill()
        # A request larger than the whole limit passes when the bucket is full, as providers let it.
        if self.level >= amount or self.level >= self.limit:
            self.level -= amount
            return True
        return False

    def give_back(self, amount: float) -> None:
        self._refill()
        self.level = min(float(self.limit), self.level + amount)

    def remaining(self) -> int:
        self._refill()
        return max(0, math.floor(self.level))

    def seconds_until(self, amount: float) -> float:
        """Seconds until the bucket holds `amount` (or is full, if that is less)."""
        self._refill()
        missing = min(amount, self.limit) - self.level
        return max(missing, 0.0) * 60 / self.limit

    def seconds_to_full(self) -> float:
        return self.seconds_until(self.limit)


class RateLimits:
    """The requests and tokens a stand-in accepts per minute (0: no such limit), thread-safe."""

    def __init__(self, requests_per_minute: int = 0, tokens_per_minute: int = 0):
        self.requests = Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute) if tokens_per_minute else None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config) -> RateLimits:
        """The limits a stand-in's configuration sets (its requests_per_minute and tokens_per_minute)."""
        return cls(config.requests_per_minute, config.tokens_per_minute)

    def reconfigured(self, config, options: dict) -> RateLimits:
        """New buckets when the options changed a limit; otherwise these, with what they hold."""
        if {"requests_per_minute", "tokens_per_minute"} & set(options):
            return RateLimits.of(config)
        return self

    @property
    def active(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def admit(self, tokens: int) -> bool:
        """Reserve one request and `tokens`; False (nothing reserved) when either limit is reached."""
        with self._lock:
            if self.requests is not None and not self.requests.take(1):
                return False
            if self.tokens is not None and not self.tokens.take(tokens):
                if self.requests is not None:
                    self.requests.give_back(1)
                return False
            return True

    def settle(self, reserved: int, used: int) -> None:
        """A reply went out: the reserved tokens it did not use are available again."""
        with self._lock:
            if self.tokens is not None and reserved > used:
                self.tokens.give_back(reserved - used)

    def retry_after(self, tokens: int) -> float:
        """Seconds until a refused request of `tokens` would be accepted."""
        with self._lock:
            waits = [0.0]
            if self.requests is not None:
                waits.append(self.requests.seconds_until(1))
            if self.tokens is not None:
                waits.append(self.tokens.seconds_until(tokens))
            return max(waits)

    def remaining(self) -> dict[str, int | None]:
        """What is left now of each limit (None: no such limit)."""
        with self._lock:
            return {
                "requests": self.requests.remaining() if self.requests is not None else None,
                "tokens": self.tokens.remaining() if self.tokens is not None else None,
            }

    def openai_headers(self) -> dict[str, str]:
        headers = {}
        with self._lock:
            for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
                if bucket is not None:
                    headers[f"x-ratelimit-limit-{kind}"] = str(bucket.limit)
                    headers[f"x-ratelimit-remaining-{kind}"] = str(bucket.remaining())
                    headers[f"x-ratelimit-reset-{kind}"] = duration(bucket.seconds_to_full())
        return headers

    def anthropic_headers(self) -> dict[str, str]:
        headers = {}
        with self._lock:
            for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
                if bucket is not None:
                    reset = datetime.fromtimestamp(time.time() + bucket.seconds_to_full(), UTC)
                    headers[f"anthropic-ratelimit-{kind}-limit"] = str(bucket.limit)
                    headers[f"anthropic-ratelimit-{kind}-remaining"] = str(bucket.remaining())
                    headers[f"anthropic-ratelimit-{kind}-reset"] = reset.isoformat(timespec="seconds")
        return headers


def duration(seconds: float) -> str:
    """A reset as OpenAI writes it: "250ms", "1s", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{rest_text}s" if minutes else f"{rest_text}s"


def request_tokens(body: dict | None, output_field: str) -> int:
    """What a request counts against a token limit on arrival: its text / 4 and its output ceiling."""
    if not isinstance(body, dict):
        return 0
    text = 0
    for message in body.get("messages") or []:
        text += len(str(message.get("content", ""))) if isinstance(message, dict) else 0
    for part in (
        body.get("system") or [] if isinstance(body.get("system"), list) else [body.get("system") or ""]
    ):
        text += len(str(part.get("text", ""))) if isinstance(part, dict) else len(str(part))
    output = body.get(output_field) or 0
    return text // CHARS_PER_TOKEN + (int(output) if isinstance(output, int | float) else 0)
