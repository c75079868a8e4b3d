"""Replies a test scripts into the stand-ins (`standin.script(...)`), as real models and gateways send them.

Each reply is a function of the request body that returns (status, content type, bytes): the
bytes go on the wire as they are, so a reply can hold what Python's json module would never
write (NaN, a key twice) or no JSON at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.support import anthropic_standin, llm_standin

Reply = Callable[[dict], tuple[int, str, bytes]]
# Where a raw JSON text goes into an envelope built with json.dumps.
SLOT = "@@raw-json@@"


def good_grade(body: dict) -> dict:
    """The grade a well-behaved model gives this request (as the stand-ins do): to spoil in a test."""
    if body.get("tools"):
        tool = anthropic_standin.chosen_tool(body) or body["tools"][0]
        return llm_standin.graded_reply(
            anthropic_standin.criteria_specs(tool), anthropic_standin.document_text(body)
        )
    return llm_standin.graded_reply(llm_standin.criteria_specs(body), llm_standin.document_text(body))


def raw(text: str, status: int = 200, content_type: str = "text/html; charset=utf-8") -> Reply:
    return lambda body: (status, content_type, text.encode())


def chat(
    content: str | Callable[[dict], str] | None = None,
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> Reply:
    """A Chat Completion whose message content is `content` (or a function of the good grade)."""

    def reply(body: dict) -> tuple[int, str, bytes]:
        completion = llm_standin.completion(body)
        choice = completion["choices"][0]
        text = content(good_grade(body)) if callable(content) else content
        choice["message"].update(content=text, refusal=refusal)
        choice["finish_reason"] = finish_reason
        return 200, "application/json", json.dumps(completion).encode()

    return reply


def tool_call(tool_input: str | Callable[[dict], str | dict], stop_reason: str = "tool_use") -> Reply:
    """A Message calling record_grade with this input: a dict, or raw JSON text put on the wire as it is."""

    def reply(body: dict) -> tuple[int, str, bytes]:
        given = tool_input(good_grade(body)) if callable(tool_input) else tool_input
        block = {"type": "tool_use", "id": "toolu_scripted", "name": "record_grade", "input": SLOT}
        return message(body, [block], stop_reason, given if isinstance(given, str) else json.dumps(given))

    return reply


def blocks(content: list[dict] | Callable[[dict], list[dict]], stop_reason: str = "end_turn") -> Reply:
    """A Message with these content blocks (or a function of the good grade): text instead of the tool call, say."""
    return lambda body: message(
        body, content(good_grade(body)) if callable(content) else content, stop_reason
    )


def message(body: dict, content: list[dict], stop_reason: str, raw_input: str = "") -> tuple[int, str, bytes]:
    envelope = {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or "claude-standin",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 50},
    }
    text = json.dumps(envelope).replace(json.dumps(SLOT), raw_input)
    return 200, "application/json", text.encode()
