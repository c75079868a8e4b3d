"""Building blocks every API module shares: parsing, pagination and strict input.

The error contract promises that no input produces a 500. DRF already turns
most bad input into a 400; what is here closes the gaps it leaves: JSON nested
deeper than the parser's recursion limit, numbers that overflow to infinity,
NUL characters inside JSON values (PostgreSQL refuses to store them), and
fields the endpoint does not know.
"""

import codecs
import json
import math
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser

MAX_PAGE_SIZE = 200
MAX_JSON_DEPTH = 32
# Sent by the browsable API's HTML forms beside the serializer's fields.
FORM_KEYS = {"csrfmiddlewaretoken"}


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is too large")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(JSONParser):
    """JSON that is an object or array of bounded depth, with finite numbers only."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:
            # RecursionError: nesting beyond the interpreter's limit, which
            # json raises instead of a ValueError.
            raise ParseError(f"JSON parse error - {str(exc)[:200]}")
        if _depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level + 1)
    return level


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


class ObjectField(serializers.JSONField):
    """A JSON object (not a list or scalar) without NUL characters."""

    default_error_messages = {
        "not_object": "Expected a JSON object.",
        "nul": "Text may not contain NUL (\\x00) characters.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("not_object")
        if contains_nul(data):
            self.fail("nul")
        return data


class StrictSerializerMixin:
    """Refuse fields the endpoint does not know, instead of silently ignoring a typo.

    Read-only fields are tolerated, so a client may PUT back what it read.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in self.fields and key not in FORM_KEYS)
            if unknown:
                raise serializers.ValidationError({key[:100]: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


def paths_without_trailing_slash(endpoints: list[tuple]) -> list[tuple]:
    """drf-spectacular preprocessing hook: document `/api/batches`, not `/api/batches/`.

    The routes accept both (their regex ends in `/?`); the schema names the
    canonical form once.
    """
    seen, kept = set(), []
    for path, path_regex, method, callback in endpoints:
        path = path.rstrip("/") or "/"
        if (path, method) not in seen:
            seen.add((path, method))
            kept.append((path, path_regex, method, callback))
    return kept


def every_operation_answers_a_bad_query(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the 400 of a query parameter holding a NUL, on every operation.

    core/request_guards.py refuses such a query before any view runs, whatever
    the operation, with the API's error body; an operation whose view documents
    no 400 of its own would otherwise answer a status its schema does not name.
    """
    refused = {
        "description": "A query parameter holds a NUL character (code invalid_query).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for item in result.get("paths", {}).values():
        for operation in item.values():
            operation.setdefault("responses", {}).setdefault("400", refused)
    return result
