"""A real HTTP server on loopback that answers like an OpenAI Chat Completions endpoint.

Tests and benchmarks point the `openai` provider at it to exercise the whole path (SDK, sockets,
pooling, JSON schema) without the network. Its misbehaviour is configurable: latency, random
500s, 429s with Retry-After, a concurrency cap, requests and tokens per minute (announced in
OpenAI's `x-ratelimit-*` headers, 429 past them: tests/support/rate_limits.py), forced statuses
and malformed replies. It records every request so tests can assert on what was sent and how
many ran at once.

Run it as a process for benchmarks with worker processes:

    python -m tests.support.llm_standin --port 0 --latency 0.2 --max-concurrency 32

The first line on stdout is its base URL; `GET /stats` returns the counters as JSON and
`POST /config` (a JSON object of options) reconfigures it while it runs.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

from tests.support.batch_standin import BatchBook, BatchTiming, batch_options
from tests.support.rate_limits import RateLimits, request_tokens

COMPLETIONS_PATH = "/v1/chat/completions"
MALFORMED_MODES = (
    False,
    True,
    "missing_criterion",
    "out_of_range",
    "not_json",
    "code_fence",
    "truncated",
    "over_max",
    "fabricated_quote",
)
DOCUMENT_RE = re.compile(r"<document[^>]*>\n?(.*?)\n?</document>", re.DOTALL)
POINTS_RE = re.compile(r"from 0 to (\d+(?:\.\d+)?)")
# A held reply goes out after this long even if the test never releases it.
HOLD_LIMIT_S = 60.0


@dataclass
class StandinConfig:
    latency_s: float = 0.0
    # Uniform extra latency in [0, latency_jitter_s), from the seeded generator.
    latency_jitter_s: float = 0.0
    error_rate: float = 0.0
    seed: int = 0
    rate_limit_every: int = 0
    rate_limit_rate: float = 0.0
    retry_after_s: float = 1.0
    retry_after_http_date: bool = False
    max_concurrency: int = 0
    # "reject" answers 429 above the cap, as real providers do; "record" only counts violations.
    over_cap: str = "reject"
    fail_with_status: int | None = None
    # True (or "missing_criterion") drops a criterion; "out_of_range" scores 1000, "over_max" half a
    # point over the maximum, "not_json" answers prose, "code_fence" wraps the JSON in a Markdown
    # fence, "truncated" cuts the reply off at the token limit, "fabricated_quote" quotes words the
    # document does not hold.
    malformed: bool | str = False
    # Spoil only the first this many replies (0: every one), then answer well: a model that slips once.
    malformed_times: int = 0
    # Per-minute limits (0: none), announced in the x-ratelimit-* headers and answered 429 past them.
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    # Prompt caching as OpenAI does it: a prompt prefix (the system message) this long or longer,
    # seen before from the same model within cache_ttl_s, is reported as cached tokens.
    cache_min_tokens: int = 1024
    cache_ttl_s: float = 300.0

    def update(self, options: dict) -> None:
        known = {item.name for item in fields(self)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"Unknown stand-in options: {', '.join(sorted(unknown))}.")
        if options.get("over_cap", self.over_cap) not in ("reject", "record"):
            raise ValueError("over_cap must be “reject” or “record”.")
        if options.get("malformed", False) not in MALFORMED_MODES:
            raise ValueError(f"malformed must be one of {MALFORMED_MODES}.")
        for name, value in options.items():
            setattr(self, name, value)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    received_at: float
    finished_at: float | None = None
    status: int | None = None
    # Tokens the request reserved against a tokens-per-minute limit on arrival.
    reserved: int = 0
    # The scripted answer this request takes (LLMStandin.script): body -> (status, content type, bytes).
    scripted: Callable[[dict], tuple[int, str, bytes]] | None = field(default=None, repr=False)


@dataclass
class Counters:
    requests: int = 0
    completions: int = 0
    server_errors: int = 0
    rate_limited: int = 0
    # 429s for the per-minute limits (requests or tokens), also counted in rate_limited.
    over_rate: int = 0
    tokens_used: int = 0
    over_cap: int = 0
    forced_failures: int = 0
    malformed: int = 0
    in_flight: int = 0
    peak_concurrency: int = 0
    concurrency_violations: int = 0
    cached_tokens: int = 0
    first_request_at: float | None = None
    last_request_at: float | None = None
    models: dict[str, int] = field(default_factory=dict)


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open hundreds of connections at once; the default backlog of 5 would drop them.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: LLMStandin) -> None:
        self.standin = standin
        super().__init__(address, StandinHandler)


class StandinHandler(BaseHTTPRequestHandler):
    # Keep-alive, so the client's connection pool is exercised as with a real provider.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body
    # waits for the client's delayed ACK (about 40 ms on Linux) on every reply.
    disable_nagle_algorithm = True
    server: StandinServer

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/stats":
            bodies = parse_qs(url.query).get("bodies") == ["1"]
            self.send_json(200, self.server.standin.stats(include_bodies=bodies))
        elif url.path.startswith(("/v1/batches", "/v1/files/")):
            self.server.standin.batch_api.get(self, url.path)
        elif url.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": []})
        else:
            self.send_json(404, error_body(f"No route for GET {url.path}.", "not_found"))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/v1/files":
            self.server.standin.batch_api.upload(self)
            return
        body = self.read_json()
        if path.startswith("/v1/batches"):
            self.server.standin.batch_api.post(self, path, body)
        elif path == COMPLETIONS_PATH:
            self.server.standin.handle_completion(self, body)
        elif path == "/config":
            self.reconfigure(body)
        elif path == "/reset":
            self.server.standin.reset()
            self.send_json(200, {"reset": True})
        else:
            self.send_json(404, error_body(f"No route for POST {path}.", "not_found"))

    def reconfigure(self, body: dict | None) -> None:
        try:
            self.server.standin.configure(**(body or {}))
        except ValueError as error:
            self.send_json(400, error_body(str(error), "invalid_request_error"))
            return
        self.send_json(200, asdict(self.server.standin.config))

    def read_raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> dict | None:
        raw = self.read_raw()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    # Called once, just before a reply is written: the provider's slot is free from then
    # on, so a client that sends its next call the moment this reply arrives is within the cap.
    leaving: Callable[[], None] | None = None

    def send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        if self.leaving is not None:
            self.leaving()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout passed); a real server would not notice either.
            self.close_connection = True


def leaver(
    lock: threading.Lock, count_out: Callable[[], None], changed: threading.Condition
) -> Callable[[], None]:
    """Counts one admitted request out of flight (under the lock), once however often it is called."""
    left = False

    def leave() -> None:
        nonlocal left
        with lock:
            if not left:
                left = True
                count_out()
                changed.notify_all()

    return leave


def error_body(message: str, kind: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


FAILURE_MESSAGES = {
    400: ("The request is invalid.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "permission_error", None),
    404: ("The model does not exist.", "invalid_request_error", "model_not_found"),
    422: ("The request could not be processed.", "invalid_request_error", None),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
}


class LLMStandin:
    """The server, its configuration and its records; usable as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options) -> None:
        self.host, self.port = host, port
        self.config = StandinConfig()
        options, timing = batch_options(options)
        self.config.update(options)
        self.batch_timing = BatchTiming()
        self.batch_timing.update(timing)
        self.batch_api = OpenAIBatchAPI(self)
        self._lock = threading.Lock()
        # Notified under the lock whenever a completion is admitted or finishes.
        self._changed = threading.Condition(self._lock)
        # Cleared by hold_replies(): admitted completions wait, in flight, until it is set.
        self._replies_go = threading.Event()
        self._replies_go.set()
        self._rng = random.Random(self.config.seed)
        self._counters = Counters()
        self.limits = RateLimits.of(self.config)
        self.requests: list[RecordedRequest] = []
        # Replies scripted by a test, each answering one completion in turn.
        self._script: deque = deque()
        # Prompt prefixes seen, by model and prefix hash: when each was last used.
        self._cache: dict[str, float] = {}
        self._server: StandinServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> Self:
        self._server = StandinServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        # A short poll interval keeps stop() quick; tests start and stop a server each.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="llm-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._replies_go.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

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
            in_flight = self._counters.in_flight
            self._counters = Counters(in_flight=in_flight)
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
        stats["files_uploaded"] = self.batch_api.uploads
        stats["batch_steps_arrived"] = dict(self.batch_api.arrived)
        return stats

    def script(self, *replies: Callable[[dict], tuple[int, str, bytes]]) -> None:
        """Answer the next requests, one each, with these replies (tests/support/scripted.py), then as configured."""
        with self._lock:
            self._script.extend(replies)

    def hold_replies(self) -> None:
        """Completions admitted from now on stay in flight, unanswered, until release_replies().

        Requests refused at once (over the cap, rate limited, forced failures)
        are still answered at once. Lets a test line requests up side by side
        without relying on latency and timing.
        """
        self._replies_go.clear()

    def release_replies(self) -> None:
        self._replies_go.set()

    def wait_until(self, condition: Callable[[dict], bool], timeout: float = 30.0) -> dict:
        """Wait until condition(stats) holds, looking each time a completion arrives or ends."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self._stats()), timeout=timeout):
                raise AssertionError(f"The stand-in never got there in {timeout:g} s: {self._stats()}")
            return self._stats()

    def handle_completion(self, handler: StandinHandler, body: dict | None) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        record, verdict, delay = self._admit(headers, body)
        handler.leaving = leave = leaver(self._lock, self._counters_out, self._changed)
        status = 500
        try:
            status = self._respond(handler, record, verdict, delay)
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
        """Count the request in, and decide now (under the lock) how it will be answered."""
        now = time.time()
        record = RecordedRequest("POST", COMPLETIONS_PATH, headers, body, now)
        with self._lock:
            counters, config = self._counters, self.config
            counters.requests += 1
            counters.in_flight += 1
            counters.peak_concurrency = max(counters.peak_concurrency, counters.in_flight)
            counters.first_request_at = counters.first_request_at or now
            counters.last_request_at = now
            model = str((body or {}).get("model", ""))
            counters.models[model] = counters.models.get(model, 0) + 1
            self.requests.append(record)
            record.reserved = request_tokens(body, "max_completion_tokens")
            verdict = self._verdict(counters, config, record.reserved)
            if verdict in ("ok", "malformed") and self._script:
                record.scripted = self._script.popleft()
            delay = config.latency_s + self._rng.random() * config.latency_jitter_s
            self._changed.notify_all()
        return record, verdict, delay

    def _verdict(self, counters: Counters, config: StandinConfig, tokens: int) -> str:
        if config.max_concurrency and counters.in_flight > config.max_concurrency:
            counters.concurrency_violations += 1
            if config.over_cap == "reject":
                counters.over_cap += 1
                return "over_cap"
        if self.limits.active and not self.limits.admit(tokens):
            counters.rate_limited += 1
            counters.over_rate += 1
            return "over_rate"
        if config.fail_with_status:
            counters.forced_failures += 1
            return "forced"
        every = config.rate_limit_every
        limited = every and counters.requests % every == 0
        if limited or (config.rate_limit_rate and self._rng.random() < config.rate_limit_rate):
            counters.rate_limited += 1
            return "rate_limited"
        if config.error_rate and self._rng.random() < config.error_rate:
            counters.server_errors += 1
            return "server_error"
        if config.malformed and (not config.malformed_times or counters.malformed < config.malformed_times):
            counters.malformed += 1
            return "malformed"
        counters.completions += 1
        return "ok"

    def _respond(self, handler: StandinHandler, record: RecordedRequest, kind: str, delay: float) -> int:
        body = record.body
        if kind == "over_rate":
            return self._rate_limit(handler, self.limits.retry_after(record.reserved))
        if kind in ("over_cap", "rate_limited"):
            return self._rate_limit(handler)
        if kind == "forced":
            return self._fail(handler, int(self.config.fail_with_status))
        self._replies_go.wait(timeout=HOLD_LIMIT_S)
        time.sleep(delay)
        if kind == "server_error":
            handler.send_json(500, error_body("The server had an error.", "server_error"))
            return 500
        if not isinstance(body, dict) or not body.get("messages"):
            return self._fail(handler, 400)
        if record.scripted is not None:
            return send_scripted(handler, record.scripted, body)
        malformed = self.config.malformed if kind == "malformed" else False
        reply = completion(body, malformed)
        reply["usage"]["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens(body)}
        used = reply["usage"]["total_tokens"]
        self.limits.settle(record.reserved, used)
        with self._lock:
            self._counters.tokens_used += used
        handler.send_json(200, reply, self.limits.openai_headers())
        return 200

    def cached_tokens(self, body: dict) -> int:
        """The tokens of the request's prefix read from the cache: none the first time it is seen.

        As OpenAI reports them: the whole prefix once it is at least cache_min_tokens long,
        in steps of 128 tokens.
        """
        prefix = prompt_prefix(body)
        tokens = len(prefix) // 4
        if not prefix or tokens < max(self.config.cache_min_tokens, 1):
            return 0
        key = hashlib.sha256(f"{body.get('model')}\0{prefix}".encode()).hexdigest()
        now = time.time()
        with self._lock:
            seen = self._cache.get(key)
            self._cache[key] = now
            if seen is None or now - seen > self.config.cache_ttl_s:
                return 0
            cached = tokens - tokens % 128 if tokens >= 128 else tokens
            self._counters.cached_tokens += cached
            return cached

    def _rate_limit(self, handler: StandinHandler, wait: float | None = None) -> int:
        seconds = self.config.retry_after_s if wait is None else max(wait, 0.001)
        if self.config.retry_after_http_date:
            value = email.utils.formatdate(time.time() + seconds, usegmt=True)
        else:
            value = f"{seconds:g}"
        message, kind, code = FAILURE_MESSAGES[429]
        headers = {"Retry-After": value, **self.limits.openai_headers()}
        handler.send_json(429, error_body(message, kind, code), headers)
        return 429

    def _fail(self, handler: StandinHandler, status: int) -> int:
        default = (f"Failing with HTTP {status} as configured.", "server_error", None)
        message, kind, code = FAILURE_MESSAGES.get(status, default)
        handler.send_json(status, error_body(message, kind, code))
        return status


def send_scripted(
    handler: StandinHandler, reply: Callable[[dict], tuple[int, str, bytes]], body: dict
) -> int:
    status, content_type, data = reply(body)
    handler.send_bytes(status, data, content_type)
    return status


def batch_reply(standin: LLMStandin, body: dict) -> dict:
    """A Chat Completion for one request of a provider batch, cached tokens counted as in real time."""
    reply = completion(body)
    reply["usage"]["prompt_tokens_details"] = {"cached_tokens": standin.cached_tokens(body)}
    return reply


class OpenAIBatchAPI:
    """OpenAI's Files and Batches endpoints for the Chat Completions stand-in (see batch_standin)."""

    def __init__(self, standin: LLMStandin):
        self.standin = standin
        self.book = BatchBook(lambda body: batch_reply(standin, body))
        self._files_lock = threading.Lock()
        # Steps a test may hold ("upload", "create", "content"): a request that arrives waits, counted
        # in `arrived`, until released; what it does then is done even if its client has gone.
        self._go = {step: threading.Event() for step in ("upload", "create", "content")}
        for event in self._go.values():
            event.set()
        self.arrived = dict.fromkeys(self._go, 0)
        self.uploads = 0

    def hold(self, step: str) -> None:
        self._go[step].clear()

    def release(self, step: str) -> None:
        self._go[step].set()

    def _arrive(self, step: str) -> None:
        with self._files_lock:
            self.arrived[step] += 1
        self._go[step].wait(timeout=HOLD_LIMIT_S)

    def upload(self, handler: StandinHandler) -> None:
        raw = handler.read_raw()
        self._arrive("upload")
        message = BytesParser().parsebytes(
            f"Content-Type: {handler.headers.get('Content-Type')}\r\n\r\n".encode() + raw
        )
        parts = {part.get_param("name", header="content-disposition"): part for part in message.get_payload()}
        if "file" not in parts or parts.get("purpose") is None:
            handler.send_json(
                400, error_body("A file and its purpose are required.", "invalid_request_error")
            )
            return
        data = parts["file"].get_payload(decode=True)
        file_id = self.book.add_file(data)
        with self._files_lock:
            self.uploads += 1
        handler.send_json(
            200,
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": parts["file"].get_filename() or "batch.jsonl",
                "purpose": parts["purpose"].get_payload(decode=True).decode(),
                "status": "processed",
            },
        )

    def post(self, handler: StandinHandler, path: str, body: dict | None) -> None:
        if path == "/v1/batches":
            self.create(handler, body or {})
            return
        batch = self.book.get(path.removeprefix("/v1/batches/").removesuffix("/cancel"))
        if batch is None or not path.endswith("/cancel"):
            handler.send_json(404, error_body(f"No batch at {path}.", "invalid_request_error"))
            return
        self.book.cancel(batch)
        handler.send_json(200, self.describe(batch))

    def create(self, handler: StandinHandler, body: dict) -> None:
        self._arrive("create")
        data = self.book.files.get(str(body.get("input_file_id")))
        if data is None:
            handler.send_json(404, error_body("No such input file.", "invalid_request_error"))
            return
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        requests = [(str(line["custom_id"]), line["body"]) for line in lines]
        batch = self.book.create(
            requests,
            self.standin.batch_timing,
            "batch",
            metadata=body.get("metadata") or {},
            input_file_id=body["input_file_id"],
        )
        handler.send_json(200, self.describe(batch))

    def get(self, handler: StandinHandler, path: str) -> None:
        if path == "/v1/batches":
            batches = sorted(self.book.batches.values(), key=lambda item: item.created_at, reverse=True)
            data = [self.describe(batch) for batch in batches]
            handler.send_json(200, {"object": "list", "data": data, "has_more": False})
            return
        if path.startswith("/v1/files/") and path.endswith("/content"):
            self._arrive("content")
            data = self.book.files.get(path.removeprefix("/v1/files/").removesuffix("/content"))
            if data is None:
                handler.send_json(404, error_body("No such file.", "invalid_request_error"))
            else:
                handler.send_bytes(200, data)
            return
        batch = self.book.get(path.removeprefix("/v1/batches/"))
        if batch is None:
            handler.send_json(404, error_body(f"No batch at {path}.", "invalid_request_error"))
            return
        handler.send_json(200, self.describe(batch))

    def describe(self, batch) -> dict:
        now = time.time()
        outcomes = self.book.outcomes(batch, now)
        ended = all(outcome != "pending" for outcome in outcomes)
        with self._files_lock:
            if ended and not batch.files_written:
                self._write_files(batch, outcomes)
        if not ended:
            status = "cancelling" if batch.cancelled_at else "in_progress"
        elif batch.cancelled_at:
            status = "cancelled"
        elif "expired" in outcomes:
            status = "expired"
        else:
            status = "completed"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": COMPLETIONS_PATH,
            "errors": None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": batch.output_file_id or None,
            "error_file_id": batch.error_file_id or None,
            "created_at": int(batch.created_at),
            "expires_at": int(batch.window_ends_at),
            "cancelled_at": int(batch.cancelled_at) if batch.cancelled_at and ended else None,
            "request_counts": {
                "total": len(outcomes),
                "completed": outcomes.count("succeeded"),
                "failed": outcomes.count("errored") + outcomes.count("expired") + outcomes.count("cancelled"),
            },
            "metadata": batch.metadata,
        }

    def _write_files(self, batch, outcomes: list[str]) -> None:
        """The output file (succeeded requests) and the error file (the rest), once the batch has ended."""
        output, errors = [], []
        for index, ((custom_id, _), outcome) in enumerate(zip(batch.requests, outcomes, strict=True)):
            line: dict = {"id": f"batch_req_{index}", "custom_id": custom_id, "response": None, "error": None}
            if outcome == "succeeded":
                reply = self.book.reply(batch, index)
                line["response"] = {"status_code": 200, "request_id": f"req_{index}", "body": reply}
                output.append(line)
                continue
            if outcome == "errored":
                body = error_body("The server had an error processing the request.", "server_error")
                line["response"] = {"status_code": 500, "request_id": f"req_{index}", "body": body}
            else:
                code = "batch_expired" if outcome == "expired" else "batch_cancelled"
                line["error"] = {"code": code, "message": f"This request was not run: {outcome}."}
            errors.append(line)
        output_lines = self.book.lines("output", [json.dumps(line) for line in output])
        error_lines = self.book.lines("errors", [json.dumps(line) for line in errors])
        if output_lines or self.book.script is not None:
            batch.output_file_id = self.book.add_file("".join(line + "\n" for line in output_lines).encode())
        if error_lines:
            batch.error_file_id = self.book.add_file("".join(line + "\n" for line in error_lines).encode())
        batch.files_written = True


def completion(body: dict, malformed: bool | str = False) -> dict:
    """A Chat Completion whose content satisfies the request's JSON schema, unless malformed."""
    text = document_text(body)
    reply = spoil(graded_reply(criteria_specs(body), text), malformed)
    content = json.dumps(reply)
    finish_reason = "stop"
    if malformed == "not_json":
        content = "Here is my grade: "
    elif malformed == "code_fence":
        content = f"```json\n{content}\n```"
    elif malformed == "truncated":
        content, finish_reason = content[: len(content) // 2], "length"
    prompt_chars = sum(len(str(message.get("content", ""))) for message in body["messages"])
    usage = {
        "prompt_tokens": max(1, prompt_chars // 4),
        "completion_tokens": len(content) // 4,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {
        "id": f"chatcmpl-{digest[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "standin",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def prompt_prefix(body: dict) -> str:
    """The messages before the first user message: what every job of a batch shares."""
    prefix = []
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            break
        prefix.append(str(message.get("content", "")))
    return "\n".join(prefix)


def document_text(body: dict) -> str:
    """The graded document: between the <document> markers of the first user message (a repair adds more)."""
    users = [message for message in body["messages"] if message.get("role") == "user"]
    content = users[0].get("content", "") if users else ""
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    found = DOCUMENT_RE.search(str(content))
    return found.group(1) if found else str(content)


def criteria_specs(body: dict) -> dict[str, dict]:
    """Each criterion key in the request's schema, with the schema of its answer."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    criteria = (schema.get("properties") or {}).get("criteria") or {}
    return dict((criteria.get("properties") or {}).items())


def score_maximum(score: dict) -> float:
    if "enum" in score:
        return float(max(score["enum"]))
    if "maximum" in score:
        return float(score["maximum"])
    found = POINTS_RE.search(score.get("description", ""))
    return float(found.group(1)) if found else 10.0


def graded_reply(specs: dict[str, dict], text: str) -> dict:
    """An answer for every criterion, field by field in the schema's order, drawn from the document's hash."""
    criteria = {}
    for key, spec in specs.items():
        # Scores come from the document's hash: the same text always gets the same grade.
        digest = hashlib.sha256(f"{key}\0{text}".encode()).digest()
        share = 0.4 + 0.6 * int.from_bytes(digest[:4], "big") / 2**32
        answer = {}
        for name, field_spec in (spec.get("properties") or {}).items():
            answer[name] = field_value(name, field_spec, share, key, text)
        criteria[key] = answer
    words = len(text.split())
    return {"criteria": criteria, "feedback": f"Graded a document of {words} words."}


def field_value(name: str, spec: dict, share: float, key: str, text: str):
    if name == "score":
        maximum = score_maximum(spec)
        if "enum" in spec:
            allowed = sorted(spec["enum"])
            return min(allowed, key=lambda value: abs(value - share * maximum))
        integral = spec.get("type") == "integer"
        return round(share * maximum) if integral else round(share * maximum * 2) / 2
    if spec.get("type") == "array":
        return quotes_from(text)
    return f"Scored {share:.2f} of the way for {key}."


def quotes_from(text: str) -> list[str]:
    """The first words of the document's first two sentences: quotes that are really in it."""
    sentences = [part.strip() for part in re.split(r"(?<=[.!?])\s+", text) if part.strip()]
    return [" ".join(sentence.split()[:6]) for sentence in sentences[:2]]


def spoil(reply: dict, malformed: bool | str) -> dict:
    criteria = reply["criteria"]
    if not malformed or not criteria or malformed in ("not_json", "code_fence", "truncated"):
        return reply
    first = next(iter(criteria))
    if malformed == "out_of_range":
        criteria[first]["score"] = 1_000
    elif malformed == "over_max":
        criteria[first]["score"] = criteria[first]["score"] + 0.5
    elif malformed == "fabricated_quote":
        criteria[first]["evidence"] = ["a sentence the student never wrote about quantum gravity"]
    else:
        criteria.pop(first)
    return reply


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve Chat Completions on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, dest="latency_s")
    parser.add_argument("--latency-jitter", type=float, default=0.0, dest="latency_jitter_s")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate-limit-every", type=int, default=0)
    parser.add_argument("--rate-limit-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0, dest="retry_after_s")
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--requests-per-minute", type=int, default=0)
    parser.add_argument("--tokens-per-minute", type=int, default=0)
    parser.add_argument("--over-cap", choices=("reject", "record"), default="reject")
    parser.add_argument("--fail-with-status", type=int, default=None)
    parser.add_argument("--malformed", choices=MALFORMED_MODES[2:], default=False)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = vars(parse_args(sys.argv[1:] if argv is None else argv))
    host, port = options.pop("host"), options.pop("port")
    standin = LLMStandin(host, port, **options).start()
    print(standin.url, flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    standin.stop()


if __name__ == "__main__":
    main()
