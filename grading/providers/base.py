"""The one interface every grading provider implements, and the errors it may raise.

Besides grading, a provider class states what the rest of the engine needs to know about it
(its limits, prices, token counting, prompt overhead, whether it needs the network or a key), so
that no code outside this package tests a provider's name. The statements are class-level and
cheap: reading them creates no client and loads no SDK.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

MILLION = Decimal(1_000_000)
# Costs are kept to a millionth of a dollar: one token of the cheapest model is less than a cent.
COST_QUANTUM = Decimal("0.000001")
CHARS_PER_TOKEN = 4
APPROXIMATION = "characters / 4 (no offline tokenizer for this model)"
# The Chat Completions format adds a few tokens around each message and to prime the reply.
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
# Output allowance when no result of the model exists yet: a criterion's key,
# score and two or three sentences of feedback, and a paragraph overall.
OUTPUT_TOKENS_PER_CRITERION = 90
OUTPUT_TOKENS_OVERALL = 160
# Too many requests, and Anthropic's overloaded: the provider asks for fewer calls at once.
RATE_LIMITED_STATUSES = frozenset({429, 529})


@dataclass(frozen=True)
class Exemplar:
    """A document the teacher graded: its total on the rubric's scale and, where given, the
    score of each criterion by key. A provider that learns may fit itself to these."""

    text: str
    score: float
    criteria: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GradeRequest:
    text: str
    rubric: dict
    settings: dict
    model: str
    document_name: str = ""
    timeout_s: float = 60.0
    # The batch's exemplars (its template's and its reviewers'), never the document itself.
    exemplars: tuple[Exemplar, ...] = ()


@dataclass
class CriterionGrade:
    key: str
    name: str
    score: float
    max_score: float
    feedback: str
    # [{"quote", "found"}]: what the grader quoted, and whether the quote is in the document.
    evidence: list = field(default_factory=list)


@dataclass(frozen=True)
class Billed:
    """Tokens and cost the provider billed for calls that produced no grade."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class Grade:
    score: float
    max_score: float
    criteria: list[CriterionGrade]
    feedback: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    raw: dict = field(default_factory=dict)
    model: str = ""
    # The rate-limit headers of the last reply (grading.learnt_limits keeps them per provider).
    quota: Quota | None = field(default=None, repr=False)

    def as_criteria_json(self) -> list[dict]:
        return [asdict(criterion) for criterion in self.criteria]


@dataclass(frozen=True)
class ProviderLimits:
    """Limits on calls to a provider across all workers; None means unlimited.

    `source` says where the figures come from (the settings that set them), for people
    reading a provider's description; it takes no part in comparisons.
    """

    max_concurrency: int | None = None
    requests_per_minute: int | None = None
    source: str = field(default="", compare=False)
    # Tokens (input and output) per minute across all workers; 0: none configured.
    tokens_per_minute: int = 0


@dataclass(frozen=True)
class Quota:
    """What a provider's rate-limit headers say is left: requests and tokens, each with its
    per-minute limit and the seconds until it is whole again. None where a header is absent."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_s: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset_s: float | None = None
    # When the reply came (epoch seconds): what is left has refilled since.
    seen_at: float | None = field(default=None, compare=False)

    def __bool__(self) -> bool:
        return self.requests_remaining is not None or self.tokens_remaining is not None


@dataclass(frozen=True)
class Tokenizer:
    """How a provider's model counts tokens offline, and a sentence saying how good that is."""

    name: str
    method: str
    encode: Callable[[str], int] | None = None  # None: characters / 4

    def count(self, text: str) -> int:
        if self.encode is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return self.encode(text)


CHARS_OVER_FOUR = Tokenizer("chars/4", APPROXIMATION)


@dataclass(frozen=True)
class RemoteBatch:
    """A provider batch as the provider last reported it."""

    id: str
    # The provider's own word for its state ("in_progress", "ended", "cancelling", ...).
    status: str
    # No more results will come: every request succeeded, failed, expired or was cancelled.
    ended: bool
    # Requests that have an outcome so far (succeeded, errored, expired, cancelled).
    finished: int = 0
    total: int = 0
    input_file_id: str = ""


@dataclass
class BatchItem:
    """One request's outcome in a provider batch's results, by its custom_id.

    `grade` when it succeeded; else `error` (a ProviderError saying whether trying again
    may help); `expired` or `cancelled` when the provider never ran it.
    """

    custom_id: str
    grade: Grade | None = None
    error: ProviderError | None = None
    expired: bool = False
    cancelled: bool = False


class ProviderError(Exception):
    """A grading call that did not produce a grade.

    `transient` tells the engine whether trying again later may succeed; `retry_after` is the
    provider's own hint in seconds, which takes precedence over computed backoff.
    """

    transient: bool = False
    # The provider answered, and the answer is what failed (a reply that does not fit
    # even after a repair); an HTTP status says so too. An answer means the provider is up.
    answered: bool = False
    # What the calls behind this error cost (a repair's first reply, say), when any was billed.
    billed: Billed | None = None

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        quota: Quota | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status_code = status_code
        self.quota = quota

    @property
    def rate_limited(self) -> bool:
        """The provider said it has too much to do (429, or 529 overloaded): fewer calls at once."""
        return self.status_code in RATE_LIMITED_STATUSES


class TransientProviderError(ProviderError):
    transient = True


class PermanentProviderError(ProviderError):
    transient = False


class Provider(ABC):
    """Grades one document against a rubric.

    Instances are shared across the engine's worker threads, so `grade` must not keep
    per-call state on `self`.
    """

    name: str
    # Grades without the network (nothing remote to protect, nothing to pay).
    offline: bool = False
    # Needs an API key in the deployment's settings to grade.
    needs_key: bool = False

    @abstractmethod
    def grade(self, request: GradeRequest) -> Grade:
        """Return the grade, or raise a ProviderError subclass."""

    # --- the provider's batch API (economy delivery), where it has one ------------------
    #
    # A provider with a batch API grades the same requests at a discount within a window.
    # grading.economy drives these; a provider without one (builtin, most local servers)
    # keeps the defaults and its batches are graded in real time.

    # The provider's promise: results within this long of the submission.
    batch_window: timedelta = timedelta(hours=24)
    # The price of a batch request, as a share of the real-time price.
    batch_discount: Decimal = Decimal("0.5")
    # What one provider batch may hold.
    batch_max_requests: int = 50_000
    batch_max_bytes: int = 200 * 1024 * 1024

    def supports_batch_api(self) -> bool:
        """Whether this provider's endpoint offers a batch API."""
        return False

    def batch_request(self, custom_id: str, request: GradeRequest) -> dict:
        """One request of a provider batch, as the provider's batch API takes it (a JSON object)."""
        raise NotImplementedError(f"The {self.name} provider has no batch API.")

    def submit_batch(
        self, requests: list[dict], marker: str, on_upload: Callable[[str], None]
    ) -> RemoteBatch:
        """Send the requests as one provider batch, labelled with `marker`.

        `on_upload(file_id)` is called as soon as an uploaded input file has an id, before
        the batch is created, so that the caller can record it (a reconcile then creates
        the batch from that file rather than uploading again).
        """
        raise NotImplementedError(f"The {self.name} provider has no batch API.")

    def find_batch(
        self,
        marker: str,
        *,
        input_file_id: str = "",
        since: datetime | None = None,
        size: int = 0,
        known: Collection[str] = (),
    ) -> RemoteBatch | None:
        """The provider batch a submission recorded as `marker` made, if it made one (a reconcile after a crash).

        A provider that labels its batches finds it by the marker; one that cannot looks among
        the batches created `since` the submission was recorded that are not `known`
        (recorded by other submissions) and hold `size` requests.
        """
        raise NotImplementedError(f"The {self.name} provider has no batch API.")

    def create_batch_from_file(self, input_file_id: str, marker: str) -> RemoteBatch:
        """Create the batch from an input file uploaded earlier (providers that upload files)."""
        raise NotImplementedError(f"The {self.name} provider does not upload batch files.")

    def poll_batch(self, external_id: str) -> RemoteBatch:
        raise NotImplementedError(f"The {self.name} provider has no batch API.")

    def batch_results(self, external_id: str, requests: Mapping[str, GradeRequest]) -> Iterator[BatchItem]:
        """The outcomes available so far, each read into a grade or an error like a real-time reply."""
        raise NotImplementedError(f"The {self.name} provider has no batch API.")

    def cancel_batch(self, external_id: str) -> RemoteBatch:
        raise NotImplementedError(f"The {self.name} provider has no batch API.")

    # --- what the provider states about itself (class-level; no client, no SDK) ---------

    @classmethod
    def problem(cls, model: str) -> str | None:
        """Why this provider cannot grade with `model` on this server, in a sentence; None when it can.

        Checked when a batch starts, so that a missing key or another provider's model
        is refused with what to set, instead of failing every job.
        """
        return None

    @classmethod
    def limits(cls) -> ProviderLimits:
        """Concurrency and request-rate caps that hold across all workers."""
        return ProviderLimits(source="none stated: unlimited")

    @classmethod
    def price_for(cls, model: str) -> tuple[float, float]:
        """US dollars per million input and output tokens; (0, 0) when no price is known."""
        return 0.0, 0.0

    @classmethod
    def is_priced(cls, model: str) -> bool:
        """Whether the price of `model` is known (a known price may be zero)."""
        return cls.price_for(model) != (0.0, 0.0)

    @classmethod
    def price_method(cls, model: str) -> str:
        """Where the price of `model` comes from, in a sentence an estimate can show."""
        return "the provider's stated price" if cls.is_priced(model) else "no price known for this model"

    @classmethod
    def cost_of(cls, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
        """Dollars for a call; `cached_tokens` of the input were read from the prompt cache."""
        price_in, price_out = cls.price_for(model)
        cached = min(max(cached_tokens, 0), input_tokens)
        cost = (
            (input_tokens - cached) * Decimal(str(price_in))
            + cached * Decimal(str(cls.cached_input_price(model)))
            + output_tokens * Decimal(str(price_out))
        ) / MILLION
        return cost.quantize(COST_QUANTUM)

    # Providers that cache a repeated prompt prefix read it from the cache only when the prefix
    # is at least this long (OpenAI's and Anthropic's smallest cacheable prompt); None: no caching.
    cache_min_tokens: int | None = None

    @classmethod
    def cached_input_price(cls, model: str) -> float:
        """US dollars per million input tokens read from the prompt cache; the full price without caching."""
        return cls.price_for(model)[0]

    @classmethod
    def tokenizer(cls, model: str) -> Tokenizer:
        """How to count a request's tokens offline for `model`."""
        return CHARS_OVER_FOUR

    @classmethod
    def prompt_overhead_tokens(cls, settings: dict[str, Any], tokenizer: Tokenizer) -> int:
        """Tokens each call sends besides the document (instructions, rubric, reply schema)."""
        return 0

    @classmethod
    def max_output_tokens(cls, settings: dict[str, Any], model: str) -> int:
        """The most output one call may ask for: what a token budget reserves before the reply."""
        return cls.output_tokens_guess(settings)[0]

    @classmethod
    def output_tokens_guess(cls, settings: dict[str, Any]) -> tuple[int, str]:
        """Output tokens per call before any result says otherwise, and how they were guessed."""
        criteria = (settings.get("rubric") or {}).get("criteria") or []
        allowance = OUTPUT_TOKENS_PER_CRITERION * len(criteria) + OUTPUT_TOKENS_OVERALL
        cap = int(settings.get("max_output_tokens") or allowance)
        return (
            min(allowance, cap),
            f"{OUTPUT_TOKENS_PER_CRITERION} per criterion + {OUTPUT_TOKENS_OVERALL} overall, "
            "capped by max_output_tokens",
        )


def criteria_of(rubric: dict) -> list[dict]:
    """The rubric's criteria, refusing a rubric the provider could not grade against."""
    criteria = rubric.get("criteria") if isinstance(rubric, dict) else None
    if not criteria:
        raise PermanentProviderError("The rubric has no criteria to grade against.")
    return criteria


def require_text(request: GradeRequest) -> None:
    if not request.text or not request.text.strip():
        name = f" “{request.document_name}”" if request.document_name else ""
        raise PermanentProviderError(f"The document{name} has no text to grade.")
