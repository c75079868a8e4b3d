"""The batch APIs of the stand-ins: provider batches that finish, fail and expire on a time scale.

Both stand-ins (llm_standin for OpenAI's Files and Batches, anthropic_standin for Message
Batches) keep their provider batches in a BatchBook. Time is scaled: `hour_s` real seconds
stand for one hour of the provider's, so the 24-hour window passes in `24 * hour_s`
seconds. A batch's requests finish one after another over `hours`; every
`error_every`-th request fails (HTTP 500 in its result) and every `expire_every`-th is never
run and expires when the window ends; `hold` keeps every request pending (until the window
ends, or a cancel). The stand-ins take these as options `batch_hour_s`, `batch_hours`,
`batch_error_every`, `batch_expire_every` and `batch_hold`. A cancel ends the pending requests as cancelled; what finished before it
is kept. Each request is answered once, when first seen finished, by the stand-in's own
reply for that request (so prompt caching counts as for real-time calls).

A test may script the result files as a provider could write them (`BatchBook.script`): a
function of the file's kind ("output" or "errors" for OpenAI, "results" for Anthropic) and its
lines as written, returning the lines to serve instead (a line not JSON, a custom_id twice or
unknown, a line left out, an HTML body); OpenAI's output file is then written even when empty.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PENDING, SUCCEEDED, ERRORED, EXPIRED, CANCELLED = "pending", "succeeded", "errored", "expired", "cancelled"
WINDOW_HOURS = 24


@dataclass
class BatchTiming:
    """Shared by every batch of a stand-in, so that a test may change it while batches run
    (a stand-in's options `batch_hour_s`, `batch_hours`, `batch_error_every`, `batch_expire_every`,
    `batch_hold`)."""

    hour_s: float = 0.05
    # How long the provider takes over a batch's requests, in its hours.
    hours: float = 2.0
    error_every: int = 0
    expire_every: int = 0
    hold: bool = False

    def update(self, options: dict) -> None:
        for name, value in options.items():
            setattr(self, name.removeprefix("batch_"), value)


BATCH_OPTIONS = {"batch_hour_s", "batch_hours", "batch_error_every", "batch_expire_every", "batch_hold"}


def batch_options(options: dict) -> tuple[dict, dict]:
    """The options for the stand-in itself, and those for its batches."""
    ours = {name: value for name, value in options.items() if name in BATCH_OPTIONS}
    return {name: value for name, value in options.items() if name not in ours}, ours


@dataclass
class StoredBatch:
    id: str
    created_at: float
    # (custom_id, request body)
    requests: list[tuple[str, dict]]
    timing: BatchTiming
    metadata: dict = field(default_factory=dict)
    input_file_id: str = ""
    cancelled_at: float | None = None
    # Replies by index, made once each.
    replies: dict[int, dict] = field(default_factory=dict)
    output_file_id: str = ""
    error_file_id: str = ""
    files_written: bool = False

    @property
    def window_ends_at(self) -> float:
        return self.created_at + WINDOW_HOURS * self.timing.hour_s


class BatchBook:
    """Files and provider batches, with each request's outcome a function of the clock."""

    def __init__(self, answer: Callable[[dict], dict]):
        self._answer = answer
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, StoredBatch] = {}
        self.created = 0
        self.cancels = 0
        self.script: Callable[[str, list[str]], list[str]] | None = None

    def lines(self, kind: str, lines: list[str]) -> list[str]:
        """A result file's lines as served: as written, or as the test's script rewrites them."""
        return self.script(kind, lines) if self.script is not None else lines

    def add_file(self, data: bytes, prefix: str = "file") -> str:
        file_id = f"{prefix}-{secrets.token_hex(8)}"
        with self._lock:
            self.files[file_id] = data
        return file_id

    def create(
        self, requests: list[tuple[str, dict]], timing: BatchTiming, prefix: str, **fields
    ) -> StoredBatch:
        batch = StoredBatch(f"{prefix}_{secrets.token_hex(8)}", time.time(), requests, timing, **fields)
        with self._lock:
            self.batches[batch.id] = batch
            self.created += 1
        return batch

    def get(self, batch_id: str) -> StoredBatch | None:
        with self._lock:
            return self.batches.get(batch_id)

    def cancel(self, batch: StoredBatch) -> None:
        with self._lock:
            if batch.cancelled_at is None and not self._ended(batch, time.time()):
                batch.cancelled_at = time.time()
                self.cancels += 1

    def outcomes(self, batch: StoredBatch, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return [self._outcome(batch, index, now) for index in range(len(batch.requests))]

    def ended(self, batch: StoredBatch, now: float | None = None) -> bool:
        return self._ended(batch, time.time() if now is None else now)

    def _ended(self, batch: StoredBatch, now: float) -> bool:
        return all(self._outcome(batch, index, now) != PENDING for index in range(len(batch.requests)))

    def _outcome(self, batch: StoredBatch, index: int, now: float) -> str:
        timing, number = batch.timing, index + 1
        done_at = batch.created_at + timing.hours * timing.hour_s * number / len(batch.requests)
        never = timing.hold or (timing.expire_every and number % timing.expire_every == 0)
        stop = batch.cancelled_at
        if not never and done_at <= now and (stop is None or done_at <= stop):
            return ERRORED if timing.error_every and number % timing.error_every == 0 else SUCCEEDED
        if stop is not None and stop <= now:
            return CANCELLED
        if now >= batch.window_ends_at:
            return EXPIRED
        return PENDING

    def reply(self, batch: StoredBatch, index: int) -> dict:
        """The stand-in's answer to one request, made the first time it is asked for."""
        with self._lock:
            made = batch.replies.get(index)
        if made is None:
            made = self._answer(batch.requests[index][1])
            with self._lock:
                made = batch.replies.setdefault(index, made)
        return made
