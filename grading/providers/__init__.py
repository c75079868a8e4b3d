"""Grading providers, registered by name and imported only when first used.

Importing this package stays cheap: the OpenAI SDK is loaded only by a process that grades
with it.
"""

from __future__ import annotations

import threading
from importlib import import_module

from grading.providers.base import (
    CriterionGrade,
    Exemplar,
    Grade,
    GradeRequest,
    PermanentProviderError,
    Provider,
    ProviderError,
    TransientProviderError,
)

__all__ = [
    "PROVIDERS",
    "CriterionGrade",
    "Exemplar",
    "Grade",
    "GradeRequest",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "TransientProviderError",
    "UnknownProvider",
    "available_providers",
    "get_provider",
]

PROVIDERS = {
    "builtin": "grading.providers.builtin.BuiltinProvider",
    "openai": "grading.providers.openai.OpenAIProvider",
}

_instances: dict[str, Provider] = {}
_lock = threading.Lock()


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the sentence in quotes.
        return self.args[0] if self.args else ""


def available_providers() -> list[str]:
    return sorted(PROVIDERS)


def get_provider(name: str) -> Provider:
    """The shared provider instance for `name`; providers are thread-safe, so one suffices."""
    provider = _instances.get(name)
    if provider is not None:
        return provider
    with _lock:
        if name not in _instances:
            _instances[name] = _load(name)
        return _instances[name]


def _load(name: str) -> Provider:
    try:
        dotted = PROVIDERS[name]
    except KeyError:
        choices = ", ".join(available_providers())
        raise UnknownProvider(
            f"There is no grading provider named “{name}”; choose one of: {choices}."
        ) from None
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(import_module(module_name), class_name)()
