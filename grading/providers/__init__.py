"""Grading providers, registered by name and imported only when first used.

Adding a provider is one module with a Provider subclass, which states its own limits,
prices, token counting and prompt overhead (see base.Provider), plus one entry in PROVIDERS.

A name a batch grades with is a connection (connections.py): `openai`, `anthropic` and `builtin`,
and each connection the deployment's PROVIDERS setting declares, such as `local` of kind openai.
The class registered for a declared connection is its kind's class bound to it (a subclass named
after the connection), so whatever asks `provider_class(name)` for limits, prices, tokens or
problems gets that connection's, and nothing outside this package tells connections apart.

Importing this package stays cheap: an SDK (OpenAI's, Anthropic's) is loaded only by a process
that grades with it; reading a provider's description imports its module but not the SDK.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import Any

from grading.providers import connections
from grading.providers.base import (
    BatchItem,
    Billed,
    CriterionGrade,
    Exemplar,
    Grade,
    GradeRequest,
    PermanentProviderError,
    Provider,
    ProviderError,
    ProviderLimits,
    Quota,
    RemoteBatch,
    Tokenizer,
    TransientProviderError,
)

__all__ = [
    "PROVIDERS",
    "BatchItem",
    "Billed",
    "CriterionGrade",
    "Exemplar",
    "Grade",
    "GradeRequest",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "ProviderLimits",
    "Quota",
    "RemoteBatch",
    "Tokenizer",
    "TransientProviderError",
    "UnknownProvider",
    "available_providers",
    "connection_of",
    "connection_label",
    "kind_of",
    "get_provider",
    "provider_class",
]

PROVIDERS = {
    "anthropic": "grading.providers.anthropic.AnthropicProvider",
    "builtin": "grading.providers.builtin.BuiltinProvider",
    "openai": "grading.providers.openai.OpenAIProvider",
}

# Classes by (name, dotted path), as a name's kind may change with the settings, and one instance
# per class. Limits are looked up on every claimed job, so the import (and the binding) is done once.
_classes: dict[tuple[str, str], type[Provider]] = {}
_instances: dict[type[Provider], Provider] = {}
_lock = threading.Lock()


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the sentence in quotes.
        return self.args[0] if self.args else ""


# The declared connections' names and classes, and the connections they were made from: the
# registry is read on every claimed job, and the connections change only with the settings.
_declared: tuple[Any, dict[str, str]] = (None, {})


def _registry() -> dict[str, str]:
    """Names and their classes: the built-in providers, EXTRA_PROVIDERS (plug-ins) and PROVIDERS' connections."""
    global _declared
    from django.conf import settings

    extra = getattr(settings, "EXTRA_PROVIDERS", None) or {}
    configured = connections.configured()
    made_from, declared = _declared
    if configured is not made_from:
        declared = {name: PROVIDERS[conn.kind] for name, conn in configured.items()}
        _declared = (configured, declared)
    return {**PROVIDERS, **extra, **declared}


def available_providers() -> list[str]:
    """Every name a batch may grade with: the built-in providers, plug-ins and connections."""
    return sorted(_registry())


def connection_of(name: str) -> connections.Connection | None:
    """The connection `name` grades through; None for a plug-in or a name no longer known."""
    return connections.get(name)


def kind_of(name: str) -> str:
    """What `name` is, for showing beside it: a connection's kind, `plug-in`, or "" when unknown."""
    connection = connections.get(name)
    if connection is not None:
        return connection.kind
    return "plug-in" if name in _registry() else ""


def connection_label(name: str) -> str:
    """The connection's name with its kind where the name does not say it: `local (openai)`."""
    kind = kind_of(name)
    return f"{name} ({kind})" if kind and kind != name else name


def get_provider(name: str) -> Provider:
    """The shared provider instance for `name`; providers are thread-safe, so one suffices."""
    cls = provider_class(name)
    provider = _instances.get(cls)
    if provider is not None:
        return provider
    with _lock:
        if cls not in _instances:
            _instances[cls] = cls()
        return _instances[cls]


def provider_class(name: str) -> type[Provider]:
    """The class registered as `name`, for what it states about itself; no instance is made.

    A connection other than its kind's own (`local` of kind openai) gets its kind's class bound
    to it: a subclass whose `name` is the connection's, which the class reads its endpoint,
    key, limits and prices by.
    """
    try:
        dotted = _registry()[name]
    except KeyError:
        choices = ", ".join(available_providers())
        raise UnknownProvider(
            f"There is no grading provider named “{name}”; choose one of: {choices}."
        ) from None
    cls = _classes.get((name, dotted))
    if cls is None:
        module_name, class_name = dotted.rsplit(".", 1)
        cls = getattr(import_module(module_name), class_name)
        if dotted in PROVIDERS.values() and cls.name != name:
            cls = type(f"{class_name}[{name}]", (cls,), {"name": name, "__module__": cls.__module__})
        _classes[(name, dotted)] = cls
    return cls
