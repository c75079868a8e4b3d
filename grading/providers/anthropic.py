"""Grading through Anthropic's Messages API, with the official `anthropic` SDK.

The rubric's reply schema (prompting.response_schema, the same as the OpenAI path's) is the
input schema of one tool, `record_grade`, which the request forces the model to call; the
tool's input is the reply, checked here against the rubric like any other. The system prompt
is sent as one content block marked `cache_control: ephemeral`, so the prefix every job of a
batch shares (the tool, the brief, the teacher's instructions, the rubric and the exemplars)
is read from Anthropic's prompt cache after the first call, at a tenth of the input price or
less; the recorded cost counts cached reads and cache writes at their own prices.

Claude models differ in what a request may carry, and a request a model refuses is an HTTP
400 that would fail every job of a batch, so what each model accepts is stated in
CLAUDE_MODELS beside its prices (from Anthropic's published pricing and migration pages):
the newest models (Opus 5.5, Sonnet 5.5, Fable 5.1) refuse a forced tool choice, so they are
asked with `tool_choice: auto` and told to call the tool (a reply without the call is
repaired like any other mismatch); models from Opus 4.7 on refuse sampling parameters, so
the batch's temperature is not sent to them; models that think before answering unless told
otherwise get room for their thinking on top of the reply's. A Claude model not in the table
is asked the way every model accepts (no forced tool, no temperature, room to think) and is
not priced until MODEL_PRICES names it.

As in openai.py, the SDK's own retries are off (the engine owns retrying), and the SDK is
imported only inside the calls that reach the endpoint: reading what the provider states about
itself must not load it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings

from grading.providers.anthropic_batches import AnthropicBatches
from grading.providers.base import (
    CHARS_PER_TOKEN,
    COST_QUANTUM,
    MILLION,
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
from grading.providers.prompting import (
    DOCUMENT_HEADING_TOKENS,
    MAX_REPLY_TOKENS,
    ModelRefusal,
    ReplyCutOff,
    ReplyMismatch,
    mismatch,
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
    Clients,
    configured_prices,
    quota_from_headers,
    redacted,
    shown_url,
    status_error,
)

if TYPE_CHECKING:
    import anthropic
    import httpx2

DEFAULT_BASE_URL = "https://api.anthropic.com"
MESSAGES_PATH = "/v1/messages"
TOOL_NAME = "record_grade"
TOOL_DESCRIPTION = (
    "Record the grade of the document given between the <document> markers: for every criterion of the "
    "rubric, the quotes that decide it, the reasoning, then one of the scores the rubric allows; and the "
    "overall feedback. Call this tool once, with the whole grade."
)
# After the document, for models that choose their tools themselves (and harmless for the others).
RECORD_REQUEST = f"Record your grade by calling the {TOOL_NAME} tool."
# The tool-use system prompt the API adds when a request has tools (Anthropic's documented
# figure is 313 to 346 tokens, depending on the tool choice; the larger is counted).
TOOL_USE_PROMPT_TOKENS = 346
# Output room for a model that thinks before it answers unless told not to: thinking counts
# towards max_tokens, and max_tokens is a ceiling, not a charge.
THINKING_ALLOWANCE = 8_000
# Anthropic's standard prompt-cache multipliers of the input price: 5-minute writes, reads.
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
# Models from Claude Opus 4.7 on use a tokenizer that counts about 30 % more tokens for the same text.
NEWER_TOKENIZER_FACTOR = 1.3
# A dated snapshot (claude-haiku-4-5-20251001), `-latest`, or the 1M-context suffix: the family's model.
_SNAPSHOT = re.compile(r"(-\d{8}|-latest|\[1m\])+$")


@dataclass(frozen=True)
class Prices:
    """US dollars per million tokens: input, output, 5-minute cache writes, cache reads."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    @classmethod
    def standard(cls, input: float, output: float) -> Prices:
        """Prices whose cache writes and reads follow Anthropic's standard multipliers."""
        return cls(input, output, input * CACHE_WRITE_FACTOR, input * CACHE_READ_FACTOR)


@dataclass(frozen=True)
class ClaudeModel:
    """A Claude model family: its prices, and what its requests may carry."""

    prices: Prices | None
    # (prompt tokens, prices): every token of a request whose prompt (input, cache reads and
    # writes) is longer than this is billed at these prices instead (Claude Haiku 5.5).
    long_prompt: tuple[int, Prices] | None = None
    # Accepts tool_choice {"type": "tool"}; otherwise the tool is offered with "auto".
    forced_tool: bool = True
    # Accepts temperature (sampling parameters).
    sampling: bool = True
    # Thinks before answering unless told not to; its thinking counts towards max_tokens.
    thinks: bool = False
    # Counts tokens with the tokenizer of Claude Opus 4.7 and later.
    newer_tokenizer: bool = False


_OPUS_4 = ClaudeModel(Prices(15.00, 75.00, 18.75, 1.50))
_OPUS_45 = ClaudeModel(Prices(5.00, 25.00, 6.25, 0.50))
_OPUS_47 = ClaudeModel(Prices(5.00, 25.00, 6.25, 0.50), sampling=False, newer_tokenizer=True)
_SONNET_4 = ClaudeModel(Prices(3.00, 15.00, 3.75, 0.30))
_FABLE_5 = ClaudeModel(Prices(10.00, 50.00, 12.50, 1.00), sampling=False, thinks=True, newer_tokenizer=True)
_FABLE_51 = ClaudeModel(
    Prices(10.00, 50.00, 12.50, 0.25), forced_tool=False, sampling=False, thinks=True, newer_tokenizer=True
)
# Anthropic's published prices (platform.claude.com, "Pricing", and each model's page), as of
# November 2026; MODEL_PRICES overrides any of them and prices models this table lacks.
CLAUDE_MODELS: dict[str, ClaudeModel] = {
    "claude-fable-5-1": _FABLE_51,
    "claude-mythos-5-1": _FABLE_51,
    "claude-fable-5": _FABLE_5,
    "claude-mythos-5": _FABLE_5,
    "claude-opus-5-5": ClaudeModel(
        Prices(4.00, 20.00, 5.00, 0.20), forced_tool=False, sampling=False, thinks=True, newer_tokenizer=True
    ),
    "claude-opus-5": ClaudeModel(
        Prices(5.00, 25.00, 6.25, 0.50), sampling=False, thinks=True, newer_tokenizer=True
    ),
    "claude-opus-4-8": _OPUS_47,
    "claude-opus-4-7": _OPUS_47,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    "claude-sonnet-5-5": ClaudeModel(
        Prices(2.00, 10.00, 2.50, 0.10), forced_tool=False, sampling=False, thinks=True, newer_tokenizer=True
    ),
    "claude-sonnet-5": ClaudeModel(
        Prices(2.00, 10.00, 2.50, 0.20), sampling=False, thinks=True, newer_tokenizer=True
    ),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-5-5": ClaudeModel(
        Prices(0.10, 0.50, 0.125, 0.01),
        long_prompt=(100_000, Prices(0.50, 2.50, 0.625, 0.05)),
        sampling=False,
        thinks=True,
        newer_tokenizer=True,
    ),
    "claude-haiku-4-5": ClaudeModel(Prices(1.00, 5.00, 1.25, 0.10)),
    "claude-3-5-haiku": ClaudeModel(Prices(0.80, 4.00, 1.00, 0.08)),
    "claude-3-haiku": ClaudeModel(Prices(0.25, 1.25, 0.30, 0.03)),
}
# A Claude model the table does not know: asked the way every current model accepts, not priced.
UNKNOWN_MODEL = ClaudeModel(None, forced_tool=False, sampling=False, thinks=True, newer_tokenizer=True)


def family_of(model: str) -> str:
    return _SNAPSHOT.sub("", model)


def claude_model(model: str) -> ClaudeModel:
    """What the table states about `model`, or about the family a dated snapshot belongs to."""
    return CLAUDE_MODELS.get(model) or CLAUDE_MODELS.get(family_of(model)) or UNKNOWN_MODEL


def is_claude(model: str) -> bool:
    return model.startswith("claude-")


def prices_for(model: str, prompt_tokens: int = 0, stated: dict | None = None) -> Prices | None:
    """The prices of `model` for a request with this many prompt tokens; None when no price is known.

    MODEL_PRICES names a model or its family with [input, output] (cache writes and reads
    then follow Anthropic's standard multipliers) or [input, output, cache write, cache read];
    `stated`, the connection's own prices (PROVIDERS' `prices`, the same form), comes first.
    """
    configured = {**configured_prices(django_settings.MODEL_PRICES), **configured_prices(stated or {})}
    row = configured.get(model) or configured.get(family_of(model))
    if row is not None:
        return Prices.standard(*row) if len(row) == 2 else Prices(*row)
    stated = claude_model(model)
    if stated.long_prompt and prompt_tokens > stated.long_prompt[0]:
        return stated.long_prompt[1]
    return stated.prices


def usage_cost(model: str, usage: dict, stated: dict | None = None) -> Decimal:
    """What one call cost: uncached input, cache writes and cache reads each at their own price."""
    fresh = token_count(usage.get("input_tokens"))
    written = token_count(usage.get("cache_creation_input_tokens"))
    read = token_count(usage.get("cache_read_input_tokens"))
    output = token_count(usage.get("output_tokens"))
    prices = prices_for(model, fresh + written + read, stated)
    if prices is None:
        return Decimal(0)
    dollars = (
        fresh * _decimal(prices.input)
        + written * _decimal(prices.cache_write)
        + read * _decimal(prices.cache_read)
        + output * _decimal(prices.output)
    )
    return dollars / MILLION


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


def connection() -> tuple[str, str]:
    """Endpoint and key of the `anthropic` connection, looked up per call, never kept."""
    return AnthropicProvider.connection().endpoint()


def _new_client(base_url: str, api_key: str, limits) -> anthropic.Anthropic:
    import anthropic

    # The key and base URL are given, so the SDK reads neither from the
    # environment nor from a credentials profile on disk.
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        http_client=anthropic.DefaultHttpxClient(limits=limits),
    )


_clients = Clients(_new_client)


def client_for(base_url: str, api_key: str) -> anthropic.Anthropic:
    """One client per endpoint and key, so all threads share its connection pool."""
    return _clients.get(base_url, api_key)


def tool_definition(criteria: list[dict]) -> dict:
    return {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": response_schema(criteria)}


def message_body(request: GradeRequest, criteria: list[dict]) -> dict:
    """The Messages API request: the shared prompt as a cached system block, the rubric as a tool's input schema."""
    settings = request.settings or {}
    stated = claude_model(request.model)
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": reply_token_budget(criteria, settings) + (THINKING_ALLOWANCE if stated.thinks else 0),
        "system": [
            {
                "type": "text",
                "text": system_prompt(criteria, settings, request.exemplars),
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "messages": [{"role": "user", "content": f"{user_message(request)}\n\n{RECORD_REQUEST}"}],
        "tools": [tool_definition(criteria)],
        "tool_choice": {"type": "tool", "name": TOOL_NAME} if stated.forced_tool else {"type": "auto"},
    }
    if stated.sampling and settings.get("temperature") is not None:
        body["temperature"] = float(settings["temperature"])
    return body


def reply_room(model: str) -> int:
    """The most output a repair may ask for."""
    return MAX_REPLY_TOKENS + (THINKING_ALLOWANCE if claude_model(model).thinks else 0)


def message_json(response: httpx2.Response) -> dict:
    """The Message a successful reply carries, as plain JSON."""
    return reply_envelope(response, "Message")


def tool_input(message: dict) -> dict:
    """The input of the reply's call to record_grade: the grade, as the schema asked for it."""
    stop = message.get("stop_reason")
    if stop == "refusal":
        raise ModelRefusal("The model refused to grade the document.")
    if stop == "model_context_window_exceeded":
        raise ModelRefusal("The document is too long for the model's context window.")
    if stop == "max_tokens":
        raise ReplyCutOff()
    content = message.get("content")
    if not isinstance(content, list):
        mismatch("the reply has no content")
    calls = [
        block
        for block in content
        if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") == TOOL_NAME
    ]
    if not calls:
        return grade_in_words(content)
    payload = calls[-1].get("input")
    if isinstance(payload, str):
        payload = reply_payload(payload)
    if not isinstance(payload, dict):
        mismatch(f"the input of {TOOL_NAME} is not a JSON object")
    return payload


def grade_in_words(content: list) -> dict:
    """The grade a model asked with `tool_choice: auto` wrote as JSON in its text instead of calling the tool."""
    text = "\n".join(
        str(block.get("text")) for block in content if isinstance(block, dict) and block.get("type") == "text"
    )
    with contextlib.suppress(ReplyMismatch):
        payload = reply_payload(text)
        if "criteria" in payload:
            return payload
    mismatch(f"the reply did not call {TOOL_NAME}")


def repair_body(body: dict, reply: dict, problem: ReplyMismatch, *, room: int = MAX_REPLY_TOKENS) -> dict:
    """The follow-up for a reply that did not fit: more room if it was cut off, else the reason.

    The reply goes back as the assistant's turn, as it came (thinking blocks included, as the
    API requires); each call to the tool is answered with an error result naming what was
    wrong, as the API requires a result for every call, and the model is asked again.
    """
    if isinstance(problem, ReplyCutOff):
        return {**body, "max_tokens": min(2 * body["max_tokens"], max(room, body["max_tokens"]))}
    content = reply.get("content")
    content = [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []
    if not content:
        return body
    follow_up = repair_request(problem, f"a call to {TOOL_NAME} with the whole grade")
    calls = [block for block in content if block.get("type") == "tool_use" and block.get("id")]
    answer: str | list = (
        [
            {"type": "tool_result", "tool_use_id": call["id"], "is_error": True, "content": follow_up}
            for call in calls
        ]
        if calls
        else follow_up
    )
    messages = [
        *body["messages"],
        {"role": "assistant", "content": content},
        {"role": "user", "content": answer},
    ]
    return {**body, "messages": messages}


def api_message(error: anthropic.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"]).rstrip(".")
        if isinstance(detail, str):
            return detail.rstrip(".")
    return str(error.message).rstrip(".")


def translate(
    error: anthropic.AnthropicError, base_url: str, api_key: str, key_env: str = "ANTHROPIC_API_KEY"
) -> ProviderError:
    """The SDK's exception as ours, with a sentence fit to show as the job's last error (never the key)."""
    import anthropic

    where = shown_url(base_url)
    if isinstance(error, anthropic.APITimeoutError):
        return TransientProviderError(f"The request to {where} timed out.")
    if isinstance(error, anthropic.APIConnectionError):
        cause = redacted(str(error.__cause__ or error), api_key)
        return TransientProviderError(f"Could not connect to {where}: {cause}.")
    if isinstance(error, anthropic.APIStatusError):
        return status_error(
            error.status_code,
            redacted(api_message(error), api_key),
            error.response.headers,
            busy={529: "is overloaded"},
            reasons={
                401: f"rejected the API key set in {key_env}",
                402: "refused the request for billing reasons",
                413: "refused the request as too large (the document may be too long)",
            },
        )
    return PermanentProviderError(f"The Anthropic client failed: {redacted(str(error), api_key)}.")


def build_grade(
    request: GradeRequest, replies: list[dict], criteria: list[dict], stated: dict | None = None
) -> Grade:
    """The grade from the last reply; tokens and cost count every call it took.

    Input tokens are all the prompt's tokens, cached or not (as the OpenAI path counts
    them); the cost prices cache writes and reads at their own rates.
    """
    reply = replies[-1]
    graded, feedback = parse_payload(tool_input(reply), criteria, request.text)
    spent = billed(request, replies, stated)
    return Grade(
        score=sum(item.score for item in graded),
        max_score=sum(item.max_score for item in graded),
        criteria=graded,
        feedback=feedback,
        input_tokens=spent.input_tokens,
        output_tokens=spent.output_tokens,
        cost=spent.cost,
        raw=reply,
        model=str(reply.get("model") or request.model),
    )


def billed(request: GradeRequest, replies: list[dict], stated: dict | None = None) -> Billed:
    """What these replies cost, from their usage blocks (whatever their content is worth)."""
    usages = [r.get("usage") if isinstance(r.get("usage"), dict) else {} for r in replies]
    input_tokens = sum(
        token_count(usage.get(field))
        for usage in usages
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    output_tokens = sum(token_count(usage.get("output_tokens")) for usage in usages)
    cost = sum((usage_cost(request.model, usage, stated) for usage in usages), Decimal(0))
    return Billed(input_tokens, output_tokens, cost.quantize(COST_QUANTUM))


class AnthropicProvider(AnthropicBatches, Provider):
    # The connection this class calls (connections.py); the registry binds a subclass to each
    # other connection of kind anthropic, under that connection's name.
    name = "anthropic"
    offline = False
    needs_key = True  # except on a loopback endpoint (a stand-in, a local proxy): see connection()

    @classmethod
    def connection(cls) -> Connection:
        return bound_connection(cls.name, "anthropic")

    @classmethod
    def problem(cls, model: str) -> str | None:
        if not is_claude(model or ""):
            return (
                f"“{model}” is not a Claude model, so the {cls.name} provider cannot grade with it: "
                "choose a model such as claude-haiku-4-5."
            )
        return cls.connection().problem()

    @classmethod
    def limits(cls) -> ProviderLimits:
        return cls.connection().limits()

    @classmethod
    def price_for(cls, model: str) -> tuple[float, float]:
        prices = prices_for(model, stated=cls.connection().prices)
        return (prices.input, prices.output) if prices else (0.0, 0.0)

    # What the batch API (anthropic_batches) borrows of the real-time path.
    request_body = staticmethod(message_body)

    @classmethod
    def read_reply(cls, request: GradeRequest, reply: dict, criteria: list[dict]) -> Grade:
        return build_grade(request, [reply], criteria, cls.connection().prices)

    @classmethod
    def reply_billed(cls, request: GradeRequest, reply: dict) -> Billed:
        return billed(request, [reply], cls.connection().prices)

    sdk_client = staticmethod(client_for)
    translate_error = staticmethod(translate)

    @staticmethod
    def sdk_error() -> type[Exception]:
        import anthropic

        return anthropic.AnthropicError

    # The smallest prefix Claude Sonnet and Opus models cache (some Haiku models need more).
    cache_min_tokens = 1024

    @classmethod
    def cached_input_price(cls, model: str) -> float:
        prices = prices_for(model, stated=cls.connection().prices)
        return prices.cache_read if prices else 0.0

    @classmethod
    def price_method(cls, model: str) -> str:
        if not cls.is_priced(model):
            return "no price known for this model: set MODEL_PRICES"
        return (
            "the anthropic provider's price table (MODEL_PRICES overrides it); the shared prompt is "
            "priced as a cache read after the first call, and the recorded cost counts cache writes too"
        )

    @classmethod
    def tokenizer(cls, model: str) -> Tokenizer:
        """Characters / 4: Anthropic ships no offline tokenizer; newer models count about 30 % more."""
        if not claude_model(model).newer_tokenizer:
            return super().tokenizer(model)
        return Tokenizer(
            "chars/4x1.3",
            "characters / 4 × 1.3 (no offline tokenizer for Claude; models from Opus 4.7 on count "
            "about 30 % more tokens for the same text)",
            lambda text: math.ceil(len(text) / CHARS_PER_TOKEN * NEWER_TOKENIZER_FACTOR),
        )

    @classmethod
    def prompt_overhead_tokens(cls, settings: dict[str, Any], tokenizer: Tokenizer) -> int:
        """The system prompt, the tool (the reply schema) and the API's tool-use prompt, per call."""
        criteria = prompt_criteria(settings)
        text = system_prompt(criteria, settings) + json.dumps(tool_definition(criteria)) + RECORD_REQUEST
        return tokenizer.count(text) + TOOL_USE_PROMPT_TOKENS + DOCUMENT_HEADING_TOKENS

    def grade(self, request: GradeRequest) -> Grade:
        criteria = request_criteria(request)
        bound = self.connection()
        base_url, api_key = bound.endpoint()
        try:
            prices_for(request.model, stated=bound.prices)  # a bad MODEL_PRICES fails before money is spent
        except ValueError as error:
            raise PermanentProviderError(str(error)) from error
        quotas: list[Quota | None] = []
        grade = with_one_repair(
            lambda body: self._send(base_url, api_key, body, request.timeout_s, bound.key_env, quotas),
            message_body(request, criteria),
            lambda replies: build_grade(request, replies, criteria, bound.prices),
            functools.partial(repair_body, room=reply_room(request.model)),
            lambda replies: billed(request, replies, bound.prices),
        )
        grade.quota = quotas[-1]
        return grade

    @classmethod
    def max_output_tokens(cls, settings: dict[str, Any], model: str) -> int:
        thinking = THINKING_ALLOWANCE if claude_model(model).thinks else 0
        return reply_token_budget(prompt_criteria(settings), settings) + thinking

    @staticmethod
    def _send(
        base_url: str,
        api_key: str,
        body: dict,
        timeout_s: float,
        key_env: str = "ANTHROPIC_API_KEY",
        quotas: list | None = None,
    ) -> dict:
        import anthropic
        import httpx2

        try:
            # The client's generic post, as in openai.py: the SDK's auth, version header,
            # timeouts and status errors, without re-walking the request against its
            # TypedDicts or building pydantic models of the reply on every call.
            response = client_for(base_url, api_key).post(
                MESSAGES_PATH,
                cast_to=httpx2.Response,
                body=body,
                options={"timeout": timeout_s},
            )
        except anthropic.AnthropicError as error:
            raise translate(error, base_url, api_key, key_env) from error
        if quotas is not None:
            # The rate-limit headers come with every reply: what is left is learnt without another request.
            quotas.append(quota_from_headers(response.headers))
        return message_json(response)
