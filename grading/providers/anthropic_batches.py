"""Anthropic's Message Batches for the anthropic provider: the same Messages requests, half price.

Each request's params are the real-time path's own body (anthropic.message_body: the
cached system block, the forced tool), and each result is read by the same build_grade,
priced at the batch discount (cache reads and writes keep their own rates on top).
The official SDK's methods are used: `messages.batches.create`, `retrieve`, `list`,
`results` (the results file once the batch has ended, taken as its raw text and read a
line at a time, as prompting.result_entries says why) and `cancel`.

Message Batches carry no metadata, so a batch whose creation was never recorded (the
submitter died during the call) is found by a reconcile among the batches created since
the submission was recorded that no other submission knows, with the same number of
requests; a wrong match would do no harm, since each result is recorded only against
the job and attempt its custom_id names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from grading.providers.base import (
    COST_QUANTUM,
    BatchItem,
    GradeRequest,
    PermanentProviderError,
    ProviderError,
    RemoteBatch,
    TransientProviderError,
    criteria_of,
)
from grading.providers.prompting import (
    ConnectionBatches,
    gist,
    request_criteria,
    result_entries,
    unreadable_line,
)
from grading.providers.remote import status_error

if TYPE_CHECKING:
    import anthropic

RECONCILE_LOOKBACK = 200
# An errored result's error type as the HTTP status a real-time call would have had.
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
BUSY = {529: "is overloaded"}


class AnthropicBatches(ConnectionBatches):
    """The batch API half of AnthropicProvider (mixed into it)."""

    batch_max_requests = 100_000
    batch_max_bytes = 256 * 1024 * 1024

    def batch_request(self, custom_id: str, request: GradeRequest) -> dict:
        criteria = request_criteria(request)
        return {"custom_id": custom_id, "params": self.request_body(request, criteria)}

    def submit_batch(
        self, requests: list[dict], marker: str, on_upload: Callable[[str], None]
    ) -> RemoteBatch:
        return remote(self.sdk_call(lambda client: client.messages.batches.create(requests=requests)))

    def find_batch(
        self,
        marker: str,
        *,
        input_file_id: str = "",
        since: datetime | None = None,
        size: int = 0,
        known: Collection[str] = (),
    ) -> RemoteBatch | None:
        def look(client: anthropic.Anthropic) -> Any:
            for seen, batch in enumerate(client.messages.batches.list(limit=100)):
                if since is not None and batch.created_at < since:
                    break
                counts = batch.request_counts
                total = (
                    counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
                )
                if batch.id not in known and total == size:
                    return batch
                if seen >= RECONCILE_LOOKBACK:
                    break
            return None

        found = self.sdk_call(look)
        return remote(found) if found is not None else None

    def poll_batch(self, external_id: str) -> RemoteBatch:
        return remote(self.sdk_call(lambda client: client.messages.batches.retrieve(external_id)))

    def cancel_batch(self, external_id: str) -> RemoteBatch:
        return remote(self.sdk_call(lambda client: client.messages.batches.cancel(external_id)))

    def batch_results(self, external_id: str, requests: Mapping[str, GradeRequest]) -> Iterator[BatchItem]:
        batch = self.sdk_call(lambda client: client.messages.batches.retrieve(external_id))
        if batch.processing_status != "ended":
            return
        # The results file as text, read a line at a time as a reply is (prompting.result_entries):
        # the SDK's own decoder stops at the first line that is not JSON, and keeps neither a key
        # given twice nor a NaN as the model wrote it.
        text = self.sdk_call(
            lambda client: (
                client.messages.batches.with_raw_response.results(external_id).http_response.read().decode()
            )
        )
        for custom_id, entry, raw in result_entries(text):
            if entry is None:
                yield BatchItem(custom_id, error=unreadable_line(raw))
            else:
                yield self._item(entry, requests)

    def _item(self, entry: dict, requests: Mapping[str, GradeRequest]) -> BatchItem:
        custom_id = str(entry.get("custom_id"))
        result = entry.get("result") if isinstance(entry.get("result"), dict) else {}
        kind = result.get("type")
        if kind == "expired":
            return BatchItem(custom_id, expired=True)
        if kind == "canceled":
            return BatchItem(custom_id, cancelled=True)
        if kind != "succeeded":
            detail = result.get("error") if isinstance(result.get("error"), dict) else {}
            detail = detail.get("error") if isinstance(detail.get("error"), dict) else detail
            status = ERROR_STATUSES.get(str(detail.get("type")), 500)
            message = str(detail.get("message") or "the request failed").rstrip(".")
            return BatchItem(custom_id, error=status_error(status, message, {}, busy=BUSY))
        request = requests.get(custom_id)
        if request is None:
            return BatchItem(
                custom_id, error=PermanentProviderError("The batch returned an unknown request.")
            )
        try:
            grade = self.read_reply(
                request, batch_message(result.get("message")), criteria_of(request.rubric)
            )
        except ProviderError as problem:
            # No repair inside a provider batch: the engine tells a reply that does not fit
            # (the job's, tried again) from the provider's failure (ReplyMismatch or not).
            return BatchItem(custom_id, error=self.unread(problem, request, result.get("message")))
        grade.cost = (grade.cost * Decimal(self.batch_discount)).quantize(COST_QUANTUM)
        return BatchItem(custom_id, grade=grade)


def batch_message(message: Any) -> dict:
    """The Message a succeeded result carries; anything else is the provider's failure."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise TransientProviderError(
            f"The provider batch's result for it is not a JSON Message: {gist(str(message or ''))}."
        )
    return message


def remote(batch: Any) -> RemoteBatch:
    counts = batch.request_counts
    finished = counts.succeeded + counts.errored + counts.canceled + counts.expired
    return RemoteBatch(
        id=batch.id,
        status=batch.processing_status,
        ended=batch.processing_status == "ended",
        finished=finished,
        total=finished + counts.processing,
    )
