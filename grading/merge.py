from copy import deepcopy
from typing import Any


def deep_merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Merge settings layers left to right; later layers win.

    Nested dicts merge key by key; lists and scalars are replaced whole (a
    batch that sets its own rubric criteria replaces the template's list rather
    than appending to it).
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            _merge_into(merged, layer)
    return merged


def _merge_into(target: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = deepcopy(value)
