"""OpenAI's Batch API for the openai provider: a JSONL file of Chat Completions requests, half price.

The requests are the real-time path's own bodies (openai.completion_body), so a batch
request grades exactly as a call would, shared prefix and all; its reply is read by the
same build_grade and priced at the batch discount. The official SDK's methods are used:
`files.create` (purpose "batch"), `batches.create` (with the submission's marker as
metadata, which is how a reconcile finds a batch whose creation was never recorded),
`batches.retrieve`, `batches.list`, `batches.cancel` and `files.content` for the output
and error files. As elsewhere, the SDK is imported only by the calls that reach the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
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
    import openai

BATCH_ENDPOINT = "/v1/chat/completions"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
# A reconcile looks for its marker among this many of the most recent batches.
RECONCILE_LOOKBACK = 1000


class OpenAIBatches(ConnectionBatches):
    """The batch API half of OpenAIProvider (mixed into it)."""

    batch_max_requests = 50_000
    batch_max_bytes = 200 * 1024 * 1024

    # What the real-time path lends besides (OpenAIProvider states it): an error body's message.
    error_message: Callable[[Any], str]

    def batch_request(self, custom_id: str, request: GradeRequest) -> dict:
        criteria = request_criteria(request)
        return {
            "custom_id": custom_id,
            "method": "POST",
            "url": BATCH_ENDPOINT,
            "body": self.request_body(request, criteria),
        }

    def submit_batch(
        self, requests: list[dict], marker: str, on_upload: Callable[[str], None]
    ) -> RemoteBatch:
        data = "".join(json.dumps(item) + "\n" for item in requests).encode()
        uploaded = self.sdk_call(
            lambda client: client.files.create(file=(f"{marker}.jsonl", data), purpose="batch")
        )
        on_upload(uploaded.id)
        return self.create_batch_from_file(uploaded.id, marker)

    def create_batch_from_file(self, input_file_id: str, marker: str) -> RemoteBatch:
        created = self.sdk_call(
            lambda client: client.batches.create(
                input_file_id=input_file_id,
                endpoint=BATCH_ENDPOINT,
                completion_window="24h",
                metadata={"marker": marker},
            )
        )
        return remote(created)

    def find_batch(self, marker: str, **unused: Any) -> RemoteBatch | None:
        def look(client: openai.OpenAI) -> Any:
            for seen, batch in enumerate(client.batches.list(limit=100)):
                if (batch.metadata or {}).get("marker") == marker:
                    return batch
                if seen >= RECONCILE_LOOKBACK:
                    break
            return None

        found = self.sdk_call(look)
        return remote(found) if found is not None else None

    def poll_batch(self, external_id: str) -> RemoteBatch:
        return remote(self.sdk_call(lambda client: client.batches.retrieve(external_id)))

    def cancel_batch(self, external_id: str) -> RemoteBatch:
        return remote(self.sdk_call(lambda client: client.batches.cancel(external_id)))

    def batch_results(self, external_id: str, requests: Mapping[str, GradeRequest]) -> Iterator[BatchItem]:
        """Once the batch has ended: the output file's replies as grades, the error file's lines as errors."""
        batch = self.sdk_call(lambda client: client.batches.retrieve(external_id))
        if batch.status not in ENDED:
            return
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            text = self.sdk_call(lambda client, file_id=file_id: client.files.content(file_id).text)
            for custom_id, line, raw in result_entries(text):
                if line is None:
                    yield BatchItem(custom_id, error=unreadable_line(raw))
                else:
                    yield self._item(line, requests)

    def _item(self, line: dict, requests: Mapping[str, GradeRequest]) -> BatchItem:
        custom_id = str(line.get("custom_id"))
        error = line.get("error") if isinstance(line.get("error"), dict) else {}
        if error.get("code") == "batch_expired":
            return BatchItem(custom_id, expired=True)
        if error.get("code") == "batch_cancelled":
            return BatchItem(custom_id, cancelled=True)
        response = line.get("response") if isinstance(line.get("response"), dict) else {}
        status = response.get("status_code") if isinstance(response.get("status_code"), int) else 0
        body = response.get("body")
        if error or status != 200:
            given = body if isinstance(body, dict) else {}
            message = error.get("message") or self.error_message(given) or "the request failed"
            return BatchItem(custom_id, error=status_error(status or 500, str(message), {}))
        request = requests.get(custom_id)
        if request is None:
            return BatchItem(
                custom_id, error=PermanentProviderError("The batch returned an unknown request.")
            )
        try:
            grade = self.read_reply(request, batch_envelope(body), criteria_of(request.rubric))
        except ProviderError as problem:
            # No repair inside a provider batch: the engine tells a reply that does not fit
            # (the job's, tried again) from the provider's failure (ReplyMismatch or not).
            return BatchItem(custom_id, error=self.unread(problem, request, body))
        grade.cost = (grade.cost * Decimal(self.batch_discount)).quantize(COST_QUANTUM)
        return BatchItem(custom_id, grade=grade)


def batch_envelope(body: Any) -> dict:
    """The Chat Completion a result line carries with its 200; anything else is the provider's failure,
    as an HTTP 200 with an HTML page or an error object is on the real-time path (reply_envelope)."""
    if not isinstance(body, dict):
        raise TransientProviderError(
            f"The provider batch's result for it is not a JSON Chat Completion: {gist(str(body or ''))}."
        )
    if body.get("error") and not body.get("choices"):
        detail = body["error"].get("message") if isinstance(body["error"], dict) else body["error"]
        raise TransientProviderError(
            f"The provider batch's result for it is an error, not a Chat Completion: {gist(str(detail))}."
        )
    return body


def remote(batch: Any) -> RemoteBatch:
    counts = batch.request_counts
    finished = (counts.completed + counts.failed) if counts else 0
    return RemoteBatch(
        id=batch.id,
        status=batch.status,
        ended=batch.status in ENDED,
        finished=finished,
        total=counts.total if counts else 0,
        input_file_id=batch.input_file_id or "",
    )
