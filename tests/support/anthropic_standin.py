"""A real HTTP server on loopback that answers like Anthropic's Messages API (`POST /v1/messages`).

Tests point the `anthropic` provider at it to exercise the whole path (the official SDK,
sockets, pooling, the forced tool, prompt caching) without the network. It answers with a
`tool_use` block whose `input` follows the request's tool `input_schema` field by field
(scores from the schema's enum, quotes taken from the document between the markers), and a
`usage` block that counts the cached prefix (the tools and the system blocks up to the last
`cache_control` mark) as a cache write the first time the same model sees it and as a cache
read afterwards, as the API does.

It checks requests the way the API does where the provider could get them wrong: the
`anthropic-version` header, alternating roles, a `tool_result` for every `tool_use` of the
turn before, a forced tool that exists; and, for the models named in `forced_tool_refused`
and `sampling_refused`, a forced tool choice or a temperature is a 400, as on the newest
Claude models. Its misbehaviour is configurable: latency, 429 with Retry-After, 529
overloaded, random 500s, a concurrency cap, requests and tokens per minute (announced in the
`anthropic-ratelimit-*` headers, 429 past them: tests/support/rate_limits.py), a required key
(401 otherwise), forced statuses and malformed replies (`malformed_times` spoils only the
first few). It records every request.

Run it as a process:

    python -m tests.support.anthropic_standin --port 0 --latency 0.2

The first line on stdout is its base URL; `GET /stats` returns the counters as JSON and
`POST /config` (a JSON object of options) reconfigures it while it runs.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import random
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

from tests.support.batch_standin import BatchBook, BatchTiming, batch_options
from tests.support.llm_standin import (
    DOCUMENT_RE,
    HOLD_LIMIT_S,
    RecordedRequest,
    StandinHandler,
    graded_reply,
    leaver,
    send_scripted,
    spoil,
)
from tests.support.rate_limits import RateLimits, request_tokens

MESSAGES_PATH = "/v1/messages"
BATCHES_PATH = "/v1/messages/batches"
# The ways the Chat Completions stand-in spoils a reply's content, which apply to a tool's input alike.
SPOILED_INPUT = (True, "missing_criterion", "out_of_range", "over_max", "fabricated_quote")
MALFORMED_MODES = (
    False,
    True,
    "missing_criterion",
    "out_of_range",
    "over_max",
    "fabricated_quote",
    # Prose instead of a call to the tool (as a model given tool_choice auto may answer).
    "no_tool",
    # The criteria object handed over as a JSON string inside the tool input.
    "stringified",
    # Cut off at max_tokens in the middle of the tool call.
    "truncated",
)
ERROR_TYPES = {
    400: ("invalid_request_error", "The request is invalid."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this model."),
    404: ("not_found_error", "model: not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed your rate limit."),
    500: ("api_error", "Internal server error."),
    529: ("overloaded_error", "Overloaded"),
}
CHARS_PER_TOKEN = 4


@dataclass
class AnthropicConfig:
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    seed: int = 0
    error_rate: float = 0.0
    rate_limit_every: int = 0
    retry_after_s: float = 1.0
    retry_after_http_date: bool = False
    # Every n-th request answers 529 overloaded_error.
    overloaded_every: int = 0
    max_concurrency: int = 0
    fail_with_status: int | None = None
    malformed: bool | str = False
    # Spoil only the first this many replies (0: every one), then answer well: a model that slips once.
    malformed_times: int = 0
    # When set, a request carrying another key (x-api-key or a bearer token) is a 401.
    api_key: str = ""
    # Models that answer a forced tool choice (type "tool" or "any") with a 400.
    forced_tool_refused: list[str] = field(default_factory=list)
    # Models that answer a temperature (or top_p, top_k) with a 400.
    sampling_refused: list[str] = field(default_factory=list)
    # A cached prefix shorter than this is not cached (the API's minimum depends on the model).
    cache_min_tokens: int = 0
    cache_ttl_s: float = 300.0
    # Per-minute limits (0: none), announced in the anthropic-ratelimit-* headers and answered 429 past them.
    requests_per_minute: int = 0
    tokens_per_minute: int = 0

    def update(self, options: dict) -> None:
        known = {item.name for item in fields(self)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"Unknown stand-in options: {', '.join(sorted(unknown))}.")
        if options.get("malformed", False) not in MALFORMED_MODES:
            raise ValueError(f"malformed must be one of {MALFORMED_MODES}.")
        for name, value in options.items():
            setattr(self, name, value)


@dataclass
class Counters:
    requests: int = 0
    messages: int = 0
    server_errors: int = 0
    rate_limited: int = 0
    overloaded: int = 0
    over_cap: int = 0
    # 429s for the per-minute limits (requests or tokens), also counted in rate_limited.
    over_rate: int = 0
    tokens_used: int = 0
    unauthorized: int = 0
    forced_failures: int = 0
    invalid: int = 0
    malformed: int = 0
    cache_writes: int = 0
    cache_reads: int = 0
    in_flight: int = 0
    peak_concurrency: int = 0
    models: dict[str, int] = field(default_factory=dict)


class MessagesHandler(StandinHandler):
    """The Messages API's routes, plus the stand-in's own (/stats, /config, /reset)."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/stats":
            bodies = parse_qs(url.query).get("bodies") == ["1"]
            self.send_json(200, self.server.standin.stats(include_bodies=bodies))
        elif url.path.startswith(BATCHES_PATH):
            self.server.standin.batch_api.get(self, url.path)
        elif url.path == "/v1/models":
            self.send_json(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
        else:
            self.send_json(404, error_body("not_found_error", f"No route for GET {url.path}."))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_json()
        if path.startswith(BATCHES_PATH):
            self.server.standin.batch_api.post(self, path, body)
        elif path == MESSAGES_PATH:
            self.server.standin.handle_message(self, body)
        elif path == "/config":
            try:
                self.server.standin.configure(**(body or {}))
            except ValueError as error:
                self.send_json(400, error_body("invalid_request_error", str(error)))
                return
            self.send_json(200, asdict(self.server.standin.config))
        elif path == "/reset":
            self.server.standin.reset()
            self.send_json(200, {"reset": True})
        else:
            self.send_json(404, error_body("not_found_error", f"No route for POST {path}."))


class MessagesServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: AnthropicStandin) -> None:
        self.standin = standin
        super().__init__(address, MessagesHandler)


def error_body(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_standin"}


class AnthropicStandin:
    """The server, its configuration and its records; usable as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options) -> None:
        self.host, self.port = host, port
        self.config = AnthropicConfig()
        options, timing = batch_options(options)
        self.config.update(options)
        self.batch_timing = BatchTiming()
        self.batch_timing.update(timing)
        self.batch_api = MessageBatchAPI(self)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._replies_go = threading.Event()
        self._replies_go.set()
        self._rng = random.Random(self.config.seed)
        self._counters = Counters()
        self.limits = RateLimits.of(self.config)
        # Cached prefixes by digest of (model, prefix): when each was last written or read.
        self._cache: dict[str, float] = {}
        self.requests: list[RecordedRequest] = []
        # Replies scripted by a test, each answering one message in turn.
        self._script: deque = deque()
        self._server: MessagesServer | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> Self:
        self._server = MessagesServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="anthropic-standin",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        self._replies_go.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """The base URL, as ANTHROPIC_BASE_URL takes it (the SDK adds /v1/messages)."""
        return f"http://{self.host}:{self.port}"

    def configure(self, **options) -> None:
        options, timing = batch_options(options)
        with self._lock:
            self.config.update(options)
            self.batch_timing.update(timing)
            if "seed" in options:
                self._rng = random.Random(self.config.seed)
            self.limits = self.limits.reconfigured(self.config, options)

    def reset(self) -> None:
        with self._lock:
            self._counters = Counters(in_flight=self._counters.in_flight)
            self.requests = []
            self._script.clear()
            self._cache = {}
            self._rng = random.Random(self.config.seed)
            # The per-minute limits are the provider's, not counters: what is spent stays spent.

    def stats(self, include_bodies: bool = False) -> dict:
        with self._lock:
            return self._stats(include_bodies)

    def _stats(self, include_bodies: bool = False) -> dict:
        stats = asdict(self._counters)
        stats["models"] = dict(self._counters.models)
        stats["timestamps"] = [item.received_at for item in self.requests]
        if include_bodies:
            stats["bodies"] = [item.body for item in self.requests]
        stats["config"] = asdict(self.config)
        stats["limits"] = self.limits.remaining()
        stats["batches_created"] = self.batch_api.book.created
        stats["batch_cancels"] = self.batch_api.book.cancels
        return stats

    def script(self, *replies: Callable[[dict], tuple[int, str, bytes]]) -> None:
        """Answer the next messages, one each, with these replies (tests/support/scripted.py), then as configured."""
        with self._lock:
            self._script.extend(replies)

    def hold_replies(self) -> None:
        """Messages admitted from now on stay in flight, unanswered, until release_replies()."""
        self._replies_go.clear()

    def release_replies(self) -> None:
        self._replies_go.set()

    def wait_until(self, condition: Callable[[dict], bool], timeout: float = 30.0) -> dict:
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self._stats()), timeout=timeout):
                raise AssertionError(f"The stand-in never got there in {timeout:g} s: {self._stats()}")
            return self._stats()

    # --- a request ---------------------------------------------------------------------

    def handle_message(self, handler: MessagesHandler, body: dict | None) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        record, verdict, delay = self._admit(headers, body)
        handler.leaving = leave = leaver(self._lock, self._counters_out, self._changed)
        status = 500
        try:
            status = self._respond(handler, headers, record, verdict, delay)
        finally:
            handler.leaving = None
            leave()
            with self._lock:
                record.finished_at = time.time()
                record.status = status
                self._changed.notify_all()

    def _counters_out(self) -> None:
        self._counters.in_flight -= 1

    def _admit(self, headers: dict, body: dict | None) -> tuple[RecordedRequest, str, float]:
        now = time.time()
        record = RecordedRequest("POST", MESSAGES_PATH, headers, body, now)
        with self._lock:
            counters, config = self._counters, self.config
            counters.requests += 1
            counters.in_flight += 1
            counters.peak_concurrency = max(counters.peak_concurrency, counters.in_flight)
            model = str((body or {}).get("model", ""))
            counters.models[model] = counters.models.get(model, 0) + 1
            self.requests.append(record)
            record.reserved = request_tokens(body, "max_tokens")
            verdict = self._verdict(counters, config, headers, record.reserved)
            if verdict in ("ok", "malformed") and self._script:
                record.scripted = self._script.popleft()
            delay = config.latency_s + self._rng.random() * config.latency_jitter_s
            self._changed.notify_all()
        return record, verdict, delay

    def _verdict(self, counters: Counters, config: AnthropicConfig, headers: dict, tokens: int) -> str:
        if config.api_key and sent_key(headers) != config.api_key:
            counters.unauthorized += 1
            return "unauthorized"
        if config.max_concurrency and counters.in_flight > config.max_concurrency:
            counters.over_cap += 1
            return "rate_limited"
        if self.limits.active and not self.limits.admit(tokens):
            counters.rate_limited += 1
            counters.over_rate += 1
            return "over_rate"
        if config.fail_with_status:
            counters.forced_failures += 1
            return "forced"
        if config.rate_limit_every and counters.requests % config.rate_limit_every == 0:
            counters.rate_limited += 1
            return "rate_limited"
        if config.overloaded_every and counters.requests % config.overloaded_every == 0:
            counters.overloaded += 1
            return "overloaded"
        if config.error_rate and self._rng.random() < config.error_rate:
            counters.server_errors += 1
            return "server_error"
        if config.malformed and (not config.malformed_times or counters.malformed < config.malformed_times):
            counters.malformed += 1
            return "malformed"
        counters.messages += 1
        return "ok"

    def _respond(
        self, handler: MessagesHandler, headers: dict, record: RecordedRequest, kind: str, delay: float
    ) -> int:
        body = record.body
        if kind == "unauthorized":
            return self._fail(handler, 401)
        if kind == "over_rate":
            wait = f"{max(self.limits.retry_after(record.reserved), 0.001):g}"
            return self._fail(handler, 429, {"retry-after": wait, **self.limits.anthropic_headers()})
        if kind == "rate_limited":
            return self._fail(
                handler, 429, {"retry-after": self._retry_after(), **self.limits.anthropic_headers()}
            )
        if kind == "overloaded":
            return self._fail(handler, 529)
        if kind == "forced":
            return self._fail(handler, int(self.config.fail_with_status))
        problem = request_problem(headers, body, self.config)
        if problem:
            with self._lock:
                self._counters.invalid += 1
            handler.send_json(400, error_body("invalid_request_error", problem))
            return 400
        self._replies_go.wait(timeout=HOLD_LIMIT_S)
        time.sleep(delay)
        if kind == "server_error":
            return self._fail(handler, 500)
        if record.scripted is not None:
            return send_scripted(handler, record.scripted, body)
        malformed = self.config.malformed if kind == "malformed" else False
        reply = self.message(body, malformed)
        used = sum(value for value in reply["usage"].values() if isinstance(value, int))
        self.limits.settle(record.reserved, used)
        with self._lock:
            self._counters.tokens_used += used
        handler.send_json(200, reply, self.limits.anthropic_headers())
        return 200

    def _retry_after(self) -> str:
        seconds = self.config.retry_after_s
        if self.config.retry_after_http_date:
            return email.utils.formatdate(time.time() + seconds, usegmt=True)
        return f"{seconds:g}"

    def _fail(self, handler: MessagesHandler, status: int, headers: dict | None = None) -> int:
        kind, message = ERROR_TYPES.get(status, ("api_error", f"Failing with HTTP {status} as configured."))
        handler.send_json(status, error_body(kind, message), headers)
        return status

    # --- the reply ---------------------------------------------------------------------

    def message(self, body: dict, malformed: bool | str = False) -> dict:
        """A Message calling the request's tool with an input that follows its schema, unless malformed."""
        text = document_text(body)
        tool = chosen_tool(body)
        content: list[dict]
        stop_reason = "tool_use"
        if tool is None or malformed == "no_tool":
            content = [{"type": "text", "text": "The essay is well argued; here is my assessment in prose."}]
            stop_reason = "end_turn"
        else:
            grade = graded_reply(criteria_specs(tool), text)
            if malformed in SPOILED_INPUT:
                grade = spoil(grade, malformed)
            if malformed == "stringified":
                grade["criteria"] = json.dumps(grade["criteria"])
            if malformed == "truncated":
                grade, stop_reason = {}, "max_tokens"
            digest = hashlib.sha256(f"{len(self.requests)}\0{text}".encode()).hexdigest()
            content = [
                {"type": "tool_use", "id": f"toolu_{digest[:24]}", "name": tool["name"], "input": grade}
            ]
        output_tokens = len(json.dumps(content)) // CHARS_PER_TOKEN
        if stop_reason == "max_tokens":
            output_tokens = int(body.get("max_tokens") or output_tokens)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return {
            "id": f"msg_{digest[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or "claude-standin",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {**self._input_usage(body), "output_tokens": output_tokens},
        }

    def _input_usage(self, body: dict) -> dict:
        """Input tokens, the cached prefix counted as a cache write the first time and a read afterwards."""
        prefix, rest = cached_prefix(body), uncached_part(body)
        prefix_tokens = tokens(prefix)
        usage = {
            "input_tokens": tokens(rest) if prefix else max(1, tokens(rest)),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if not prefix or prefix_tokens < self.config.cache_min_tokens:
            usage["input_tokens"] += prefix_tokens
            return usage
        key = hashlib.sha256(f"{body.get('model')}\0{prefix}".encode()).hexdigest()
        now = time.time()
        with self._lock:
            seen = self._cache.get(key)
            self._cache[key] = now
            if seen is not None and now - seen <= self.config.cache_ttl_s:
                self._counters.cache_reads += 1
                usage["cache_read_input_tokens"] = prefix_tokens
            else:
                self._counters.cache_writes += 1
                usage["cache_creation_input_tokens"] = prefix_tokens
        return usage


class MessageBatchAPI:
    """Anthropic's Message Batches endpoints for the stand-in (see batch_standin)."""

    def __init__(self, standin: AnthropicStandin):
        self.standin = standin
        self.book = BatchBook(standin.message)

    def refused(self, handler: MessagesHandler) -> bool:
        """A required key missing or wrong: 401, as the Messages endpoint answers."""
        key = self.standin.config.api_key
        if not key or sent_key(handler.headers) == key:
            return False
        handler.send_json(401, error_body("authentication_error", "invalid x-api-key"))
        return True

    def post(self, handler: MessagesHandler, path: str, body: dict | None) -> None:
        if self.refused(handler):
            return
        if path == BATCHES_PATH:
            requests = (body or {}).get("requests")
            if not isinstance(requests, list) or not requests:
                handler.send_json(
                    400, error_body("invalid_request_error", "requests: a non-empty list is required")
                )
                return
            pairs = [(str(item["custom_id"]), item["params"]) for item in requests]
            batch = self.book.create(pairs, self.standin.batch_timing, "msgbatch")
            handler.send_json(200, self.describe(batch))
            return
        batch = self.book.get(path.removeprefix(f"{BATCHES_PATH}/").removesuffix("/cancel"))
        if batch is None or not path.endswith("/cancel"):
            handler.send_json(404, error_body("not_found_error", f"No batch at {path}."))
            return
        self.book.cancel(batch)
        handler.send_json(200, self.describe(batch))

    def get(self, handler: MessagesHandler, path: str) -> None:
        if self.refused(handler):
            return
        if path == BATCHES_PATH:
            batches = sorted(self.book.batches.values(), key=lambda item: item.created_at, reverse=True)
            data = [self.describe(batch) for batch in batches]
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            handler.send_json(200, {"data": data, "has_more": False, "first_id": first, "last_id": last})
            return
        results = path.endswith("/results")
        batch = self.book.get(path.removeprefix(f"{BATCHES_PATH}/").removesuffix("/results"))
        if batch is None:
            handler.send_json(404, error_body("not_found_error", f"No batch at {path}."))
        elif not results:
            handler.send_json(200, self.describe(batch))
        elif not self.book.ended(batch):
            handler.send_json(404, error_body("not_found_error", "The batch has not ended: no results yet."))
        else:
            handler.send_bytes(200, self._results(batch), "application/binary")

    def describe(self, batch) -> dict:
        outcomes = self.book.outcomes(batch)
        ended = all(outcome != "pending" for outcome in outcomes)
        status = "ended" if ended else ("canceling" if batch.cancelled_at else "in_progress")
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": outcomes.count("pending"),
                "succeeded": outcomes.count("succeeded"),
                "errored": outcomes.count("errored"),
                "canceled": outcomes.count("cancelled"),
                "expired": outcomes.count("expired"),
            },
            "ended_at": _iso(time.time()) if ended else None,
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.window_ends_at),
            "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancelled_at) if batch.cancelled_at else None,
            "results_url": f"{self.standin.url}{BATCHES_PATH}/{batch.id}/results" if ended else None,
        }

    def _results(self, batch) -> bytes:
        lines = []
        for index, ((custom_id, _), outcome) in enumerate(
            zip(batch.requests, self.book.outcomes(batch), strict=True)
        ):
            if outcome == "succeeded":
                result = {"type": "succeeded", "message": self.book.reply(batch, index)}
            elif outcome == "errored":
                result = {"type": "errored", "error": error_body("api_error", "Internal server error")}
            else:
                result = {"type": "canceled" if outcome == "cancelled" else "expired"}
            lines.append(json.dumps({"custom_id": custom_id, "result": result}))
        return "".join(line + "\n" for line in self.book.lines("results", lines)).encode()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def sent_key(headers: dict) -> str:
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    return headers.get("authorization", "").removeprefix("Bearer ").strip()


def request_problem(headers: dict, body: dict | None, config: AnthropicConfig) -> str | None:
    """Why the API would refuse this request (a 400), or None."""
    if not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "The request body is not valid JSON."
    if not body.get("model"):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Field required (a positive integer)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    problem = conversation_problem(messages)
    if problem:
        return problem
    tools = body.get("tools") or []
    names = [tool.get("name") for tool in tools if isinstance(tool, dict)]
    if any(
        not isinstance(tool, dict) or (tool.get("input_schema") or {}).get("type") != "object"
        for tool in tools
    ):
        return "tools: each tool needs a name and an input_schema of type object"
    choice = body.get("tool_choice") or {"type": "auto"}
    if choice.get("type") not in ("auto", "any", "tool", "none"):
        return f"tool_choice.type: unknown type {choice.get('type')!r}"
    if choice["type"] == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: no tool named {choice.get('name')!r} in tools"
    model = body["model"]
    if choice["type"] in ("tool", "any") and model in config.forced_tool_refused:
        return f"tool_choice: forced tool use is not supported for {model}; use tool_choice auto."
    sampling = [name for name in ("temperature", "top_p", "top_k") if name in body]
    if sampling and model in config.sampling_refused:
        return f"{sampling[0]}: sampling parameters are not supported for {model}."
    return None


def conversation_problem(messages: list) -> str | None:
    """Roles alternate from a user turn, and every tool_use is answered by a tool_result in the next turn."""
    expected = "user"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != expected:
            return f"messages.{index}.role: roles must alternate, starting with user"
        expected = "assistant" if expected == "user" else "user"
        calls = {block.get("id") for block in blocks(message) if block.get("type") == "tool_use"}
        if not calls:
            continue
        after = messages[index + 1] if index + 1 < len(messages) else None
        answered = {
            block.get("tool_use_id") for block in blocks(after or {}) if block.get("type") == "tool_result"
        }
        if not calls <= answered:
            return (
                f"messages.{index + 1}: tool_use ids were found without tool_result blocks immediately after"
            )
    return None


def blocks(message: dict) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def chosen_tool(body: dict) -> dict | None:
    """The tool the model calls: the forced one, else the first offered (unless tools are off)."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next(tool for tool in tools if tool.get("name") == choice.get("name"))
    return tools[0]


def criteria_specs(tool: dict) -> dict[str, dict]:
    """Each criterion key in the tool's input schema, with the schema of its answer."""
    criteria = ((tool.get("input_schema") or {}).get("properties") or {}).get("criteria") or {}
    return dict((criteria.get("properties") or {}).items())


def document_text(body: dict) -> str:
    """The graded document: between the <document> markers of the first user message."""
    first = next((message for message in body["messages"] if message.get("role") == "user"), {})
    content = " ".join(block.get("text", "") for block in blocks(first) if block.get("type") == "text")
    found = DOCUMENT_RE.search(content)
    return found.group(1) if found else content


def system_blocks(body: dict) -> list[dict]:
    system = body.get("system")
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    return [block for block in system or [] if isinstance(block, dict)]


def cached_prefix(body: dict) -> str:
    """The tools and the system blocks up to the last one marked cache_control; empty when none is."""
    marked = [index for index, block in enumerate(system_blocks(body)) if block.get("cache_control")]
    if not marked:
        return ""
    kept = system_blocks(body)[: marked[-1] + 1]
    return json.dumps(body.get("tools") or [], sort_keys=True) + "".join(
        block.get("text", "") for block in kept
    )


def uncached_part(body: dict) -> str:
    marked = [index for index, block in enumerate(system_blocks(body)) if block.get("cache_control")]
    rest = system_blocks(body)[marked[-1] + 1 :] if marked else system_blocks(body)
    text = "".join(block.get("text", "") for block in rest)
    if not marked:
        text = json.dumps(body.get("tools") or [], sort_keys=True) + text
    return text + json.dumps(body.get("messages") or [])


def tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the Messages API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, dest="latency_s")
    parser.add_argument("--requests-per-minute", type=int, default=0)
    parser.add_argument("--tokens-per-minute", type=int, default=0)
    parser.add_argument("--latency-jitter", type=float, default=0.0, dest="latency_jitter_s")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate-limit-every", type=int, default=0)
    parser.add_argument("--overloaded-every", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1.0, dest="retry_after_s")
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--fail-with-status", type=int, default=None)
    parser.add_argument("--malformed", choices=MALFORMED_MODES[2:], default=False)
    parser.add_argument("--api-key", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = vars(parse_args(sys.argv[1:] if argv is None else argv))
    host, port = options.pop("host"), options.pop("port")
    standin = AnthropicStandin(host, port, **options).start()
    print(standin.url, flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    standin.stop()


if __name__ == "__main__":
    main()
