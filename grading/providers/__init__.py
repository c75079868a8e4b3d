"""Grading providers, registered by name and imported only when first used.

Adding a provider is one module with a Provider subclass, which states its own limits,
prices, token counting and prompt overhead (see base.Provider), plus one entry in PROVIDERS.

Importing this package stays cheap: an SDK (OpenAI's, Anthropic's) is loaded only by a process
that grades with it; reading a provider's description imports its module but not the SDK.
"""

from __future__ import annotations

import threading
from importlib import import_module

from grading.providers.base import (
    BatchItem,
    CriterionGrade,
    Exemplar,
    Grade,
    GradeRequest,
    PermanentProviderError,
    Provider,
    ProviderError,
    ProviderLimits,
    RemoteBatch,
    Tokenizer,
    TransientProviderError,
)

__all__ = [
    "PROVIDERS",
    "BatchItem",
    "CriterionGrade",
    "Exemplar",
    "Grade",
    "GradeRequest",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "ProviderLimits",
    "RemoteBatch",
    "Tokenizer",
    "TransientProviderError",
    "UnknownProvider",
    "available_providers",
    "get_provider",
    "provider_class",
]

PROVIDERS = {
    "anthropic": "grading.providers.anthropic.AnthropicProvider",
    "builtin": "grading.providers.builtin.BuiltinProvider",
    "openai": "grading.providers.openai.OpenAIProvider",
}

_instances: dict[str, Provider] = {}
# Classes by dotted path: limits are looked up on every claimed job, so the import is done once.
_classes: dict[str, type[Provider]] = {}
_lock = threading.Lock()


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the sentence in quotes.
        return self.args[0] if self.args else ""


def _registry() -> dict[str, str]:
    """The built-in providers and the deployment's EXTRA_PROVIDERS (plug-ins)."""
    from django.conf import settings

    extra = getattr(settings, "EXTRA_PROVIDERS", None) or {}
    return {**PROVIDERS, **extra} if extra else PROVIDERS


def available_providers() -> list[str]:
    return sorted(_registry())


def get_provider(name: str) -> Provider:
    """The shared provider instance for `name`; providers are thread-safe, so one suffices."""
    provider = _instances.get(name)
    if provider is not None:
        return provider
    with _lock:
        if name not in _instances:
            _instances[name] = provider_class(name)()
        return _instances[name]


def provider_class(name: str) -> type[Provider]:
    """The class registered as `name`, for what it states about itself; no instance is made."""
    try:
        dotted = _registry()[name]
    except KeyError:
        choices = ", ".join(available_providers())
        raise UnknownProvider(
            f"There is no grading provider named “{name}”; choose one of: {choices}."
        ) from None
    cls = _classes.get(dotted)
    if cls is None:
        module_name, class_name = dotted.rsplit(".", 1)
        cls = _classes[dotted] = getattr(import_module(module_name), class_name)
    return cls
