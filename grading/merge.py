from typing import Any


def deep_merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Merge settings layers left to right; later layers win.

    Nested dicts merge key by key; lists and scalars are replaced whole (a
    batch that sets its own rubric criteria replaces the template's list rather
    than appending to it).
    """
    return merge_into({}, *layers)


def merge_into(target: dict[str, Any], *layers: dict[str, Any] | None) -> dict[str, Any]:
    """deep_merge onto a dict the caller owns (a fresh merge result), sparing a second copy of it."""
    for layer in layers:
        if layer:
            _merge_into(target, layer)
    return target


def _merge_into(target: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = _copy(value)


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars).

    copy.deepcopy is generic (a memo, a dispatch per object) and was a large
    part of GET /api/batches, which merges every listed batch's settings;
    settings are JSON, so plain comprehensions do the same job faster
    (README, the visibility benchmark, has the figures).
    """
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
