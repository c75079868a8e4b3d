"""Provider connections: named endpoints, each of a provider kind, with its key's variable, limits and prices.

A connection is what a batch names as its provider (`"provider": "local"`, or `local:llama3` in
`models`), so every per-provider mechanism (call slots, circuits, request rates, estimates,
analytics) works per connection without knowing about them. The deployment declares them in the
PROVIDERS setting (JSON in the environment, or a file named by PROVIDERS_FILE):

    {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "max_concurrency": 2},
     "azure": {"kind": "openai", "base_url": "https://…/openai/v1", "key_env": "AZURE_OPENAI_KEY",
               "requests_per_minute": 600, "tokens_per_minute": 150000,
               "prices": {"gpt-4o": [2.5, 10]}}}

The OPENAI_* and ANTHROPIC_* settings make the `openai` and `anthropic` connections (a PROVIDERS
entry of the same name replaces them), and `builtin` is always there.

A key is never written here: a connection names the environment variable that holds it, read
when a call is made, so that no setting, page, API answer, log line or export ever holds the key.

Nothing here imports an SDK; Django's settings are read only by `configured()`, when asked.
"""

from __future__ import annotations

import json
import operator
import os
import re
from dataclasses import dataclass, field
from typing import Any

from grading.providers.base import PermanentProviderError, ProviderLimits
from grading.providers.remote import configured_prices, endpoint, is_loopback, shown_url

# The provider kinds a connection may be, with their endpoint when none is given.
DEFAULT_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "builtin": "",
}
# Calls in flight when a connection states no cap, as OPENAI_MAX_CONCURRENCY and
# ANTHROPIC_MAX_CONCURRENCY default: a tier-one account's comfortable share.
DEFAULT_CONCURRENCY = {"openai": 16, "anthropic": 8, "builtin": None}
# The most calls at once a cap may state. Each is a CallSlot row that the first claim under the
# cap writes, so a cap typed with the tokens-per-minute figure would have one claim write
# millions of rows; no provider account takes this many calls at once.
MAX_CONCURRENCY = 4096
FIELDS = (
    "kind",
    "base_url",
    "key_env",
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "prices",
    "batch_api",
)
# A connection's name is a job's `provider` (50 characters) and the prefix of `name:model`.
NAME = re.compile(r"[a-z][a-z0-9_-]{0,49}")
# Key variables are named in capitals, as every provider's documentation names them: a key pasted
# in place of the name (an Azure key is 32 hexadecimal characters, letters first) would otherwise
# pass for a variable and be shown wherever the variable is, in readiness sentences and the API.
VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
# No query or fragment: the SDKs append their paths after it (every call a 404), and a key
# written in it would be shown wherever the endpoint is.
URL = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?")
# A word of a variable's name longer than this with a digit in it is a key written in capitals.
KEY_LIKE_WORD = re.compile(r"(?=[A-Z0-9]*[0-9])[A-Z0-9]{16,}")


class BadConnection(ValueError):
    """A PROVIDERS entry that cannot be used, with a sentence naming the connection and the field."""


@dataclass(frozen=True)
class Connection:
    """One endpoint a batch may grade with: what the provider of its kind needs to call it.

    `key_setting` is set for the connections made from OPENAI_* and ANTHROPIC_* settings, whose
    key the settings module reads; a declared connection's key is read from `key_env` itself.
    """

    name: str
    kind: str
    base_url: str = ""
    key_env: str = ""
    max_concurrency: int | None = None
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    prices: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)
    # The endpoint offers its provider's batch API (economy delivery, grading/economy.py).
    batch_api: bool = False
    # Where the connection is declared, for people reading its description.
    source: str = field(default="", compare=False)
    key_setting: str = field(default="", compare=False)

    def api_key(self) -> str:
        """The key, looked up when a call is made and never kept."""
        if self.key_setting:
            from django.conf import settings

            return getattr(settings, self.key_setting, "") or ""
        return os.environ.get(self.key_env, "") if self.key_env else ""

    def endpoint(self) -> tuple[str, str]:
        """The base URL and the key to send; PermanentProviderError with what to set when there is none."""
        if self.needs_key and not self.key_env:
            raise PermanentProviderError(
                f"The connection “{self.name}” names no key for {self.shown_url}: give it a key_env, "
                "the environment variable that holds its key, in PROVIDERS."
            )
        return endpoint(self.base_url, self.api_key(), self.key_env, connection=self.name)

    def problem(self) -> str | None:
        """Why this connection cannot be called, in a sentence; None when it is ready."""
        if self.kind == "builtin":
            return None
        try:
            self.endpoint()
        except PermanentProviderError as error:
            return str(error)
        return None

    def limits(self) -> ProviderLimits:
        """The caps across all workers this connection states (None, 0: none)."""
        return ProviderLimits(
            self.max_concurrency,
            self.requests_per_minute or None,
            source=self.source,
            tokens_per_minute=self.tokens_per_minute,
        )

    @property
    def shown_url(self) -> str:
        return shown_url(self.base_url)

    @property
    def needs_key(self) -> bool:
        return self.kind != "builtin" and not is_loopback(self.base_url)


def parse_connections(raw: Any, where: str = "PROVIDERS") -> dict[str, Connection]:
    """The PROVIDERS value as connections; BadConnection naming the connection and field otherwise."""
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise BadConnection(
            f'{where} must be a JSON object of connections, such as {{"local": {{"kind": "openai", …}}}}.'
        )
    return {name: _connection(name, entry, where) for name, entry in raw.items()}


def _connection(name: str, entry: Any, where: str) -> Connection:
    def refuse(problem: str) -> BadConnection:
        return BadConnection(f"{where}: the connection “{name}” {problem}.")

    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise refuse(
            "needs a name of lower-case letters, digits, - and _, starting with a letter (50 at most)"
        )
    if name == "builtin":
        raise refuse("takes the offline grader's name, which is always there: choose another name")
    if not isinstance(entry, dict):
        raise refuse("must be a JSON object with at least a kind")
    if "key" in entry or "api_key" in entry:
        raise refuse(
            "holds a key: write the key in an environment variable and name that variable in key_env"
        )
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise refuse(f"has an unknown field “{unknown[0]}”; the fields are {', '.join(FIELDS)}")
    kind = entry.get("kind")
    if kind not in DEFAULT_URLS:
        raise refuse(f"has kind {json_text(kind)}; kind must be one of {', '.join(sorted(DEFAULT_URLS))}")
    base_url = entry.get("base_url") or DEFAULT_URLS[kind]
    if isinstance(base_url, str):
        base_url = base_url.strip()  # pasted with the spaces around it
    # The whole of it: a space inside (a host and path pasted apart) is no URL a client can call.
    if not isinstance(base_url, str) or (kind != "builtin" and not URL.fullmatch(base_url)):
        raise refuse(
            "has a base_url that is not an http:// or https:// URL without spaces, query or fragment "
            "(a key belongs in the variable key_env names)"
        )
    key_env = entry.get("key_env") or ""
    if not isinstance(key_env, str) or (key_env and not _names_a_variable(key_env)):
        raise refuse(
            "has a key_env that is not the name of an environment variable in capitals, such as "
            "AZURE_OPENAI_KEY: key_env names the variable that holds the key, never the key itself"
        )
    return Connection(
        name=name,
        kind=kind,
        base_url=base_url.rstrip("/"),
        key_env=key_env,
        max_concurrency=_whole(
            entry, "max_concurrency", 1, DEFAULT_CONCURRENCY[kind], refuse, maximum=MAX_CONCURRENCY
        ),
        requests_per_minute=_whole(entry, "requests_per_minute", 0, 0, refuse) or 0,
        tokens_per_minute=_whole(entry, "tokens_per_minute", 0, 0, refuse) or 0,
        prices=_prices(entry.get("prices"), refuse),
        batch_api=_batch_api(entry, kind, base_url.rstrip("/"), refuse),
        source=f"{where} (connection “{name}”)",
    )


def _names_a_variable(key_env: str) -> bool:
    return bool(VARIABLE.fullmatch(key_env)) and not any(
        KEY_LIKE_WORD.fullmatch(word) for word in key_env.split("_")
    )


def _batch_api(entry: dict, kind: str, base_url: str, refuse) -> bool:
    """Stated, or else whether the connection is its provider's own endpoint (local servers have none)."""
    if kind == "builtin":
        return False
    if "batch_api" not in entry:
        return base_url == DEFAULT_URLS[kind]
    if not isinstance(entry["batch_api"], bool):
        raise refuse(f"has batch_api {json_text(entry['batch_api'])}; it must be true or false")
    return entry["batch_api"]


def _whole(
    entry: dict, name: str, minimum: int, default: int | None, refuse, maximum: int | None = None
) -> int | None:
    if name not in entry:
        return default
    value = entry[name]
    if value is None and name == "max_concurrency":
        return None  # stated: no cap
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise refuse(f"has {name} {json_text(value)}; it must be a whole number of at least {minimum}")
    if maximum is not None and value > maximum:
        raise refuse(f"has {name} {json_text(value)}; it must be at most {maximum}")
    return value


def _prices(raw: Any, refuse) -> dict[str, tuple[float, ...]]:
    try:
        return configured_prices(raw or {})
    except ValueError:
        raise refuse(
            'has prices that are not like {"model": [input_per_million, output_per_million]}, '
            "each a dollar amount of 0 or more"
        ) from None


def json_text(value: Any) -> str:
    return json.dumps(value)


def from_settings(settings) -> dict[str, Connection]:
    """The connections the OPENAI_* and ANTHROPIC_* settings make, and `builtin`."""
    return {
        "openai": Connection(
            name="openai",
            kind="openai",
            base_url=(settings.OPENAI_BASE_URL or DEFAULT_URLS["openai"]).rstrip("/"),
            key_env="OPENAI_API_KEY",
            key_setting="OPENAI_API_KEY",
            # 0: not known, learnt from the provider (grading.learnt_limits).
            max_concurrency=settings.OPENAI_MAX_CONCURRENCY or None,
            requests_per_minute=settings.OPENAI_RPM or 0,
            tokens_per_minute=getattr(settings, "OPENAI_TPM", 0) or 0,
            batch_api=bool(getattr(settings, "OPENAI_BATCH_API", False)),
            source="settings OPENAI_BASE_URL, OPENAI_MAX_CONCURRENCY, OPENAI_RPM and OPENAI_TPM",
        ),
        "anthropic": Connection(
            name="anthropic",
            kind="anthropic",
            base_url=(settings.ANTHROPIC_BASE_URL or DEFAULT_URLS["anthropic"]).rstrip("/"),
            key_env="ANTHROPIC_API_KEY",
            key_setting="ANTHROPIC_API_KEY",
            # 0: not known, learnt from the provider (grading.learnt_limits).
            max_concurrency=settings.ANTHROPIC_MAX_CONCURRENCY or None,
            requests_per_minute=settings.ANTHROPIC_RPM or 0,
            tokens_per_minute=getattr(settings, "ANTHROPIC_TPM", 0) or 0,
            batch_api=bool(getattr(settings, "ANTHROPIC_BATCH_API", False)),
            source="settings ANTHROPIC_BASE_URL, ANTHROPIC_MAX_CONCURRENCY, ANTHROPIC_RPM and ANTHROPIC_TPM",
        ),
        "builtin": Connection(name="builtin", kind="builtin", source="always there: the offline grader"),
    }


# The settings the connections were last made from, and the connections: they are looked up on
# every claimed job and every call, and making them again each time made a limits lookup several
# times slower (README, Benchmarks, has the figures). Tests replace settings, so the settings are compared on each lookup,
# from where Django's LazySettings keeps each setting it has read (its own __dict__, from which a
# changed or overridden setting is dropped): a setting missing there is read again, the slow way.
SETTINGS_READ = (
    "PROVIDERS",
    "OPENAI_BASE_URL",
    "OPENAI_MAX_CONCURRENCY",
    "OPENAI_RPM",
    "OPENAI_TPM",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MAX_CONCURRENCY",
    "ANTHROPIC_RPM",
    "ANTHROPIC_TPM",
    "OPENAI_BATCH_API",
    "ANTHROPIC_BATCH_API",
)
_read = operator.itemgetter(*SETTINGS_READ)
_made: tuple[tuple, dict[str, Connection]] = ((), {})


def configured() -> dict[str, Connection]:
    """Every connection of this deployment by name: OPENAI_*/ANTHROPIC_*, builtin, then PROVIDERS over them."""
    global _made
    from django.conf import settings as django_settings

    made_from, made = _made
    try:
        values = _read(vars(django_settings))
    except KeyError:  # not read since it was set: read it again below
        values = None
    if values is None or values != made_from:
        values = tuple(getattr(django_settings, name, None) for name in SETTINGS_READ)
        if values != made_from:
            made = {**from_settings(django_settings), **parse_connections(values[0] or {})}
            _made = (values, made)
    return made


def get(name: str) -> Connection | None:
    return configured().get(name)


def bound_connection(name: str, kind: str) -> Connection:
    """The connection a provider class of `kind` is bound to by its name.

    A name no longer configured (a class kept from before the settings changed) gets its kind's
    endpoint with no key and the kind's default limits, so that it states something and fails
    with a sentence rather than an AttributeError.
    """
    found = configured().get(name)
    if found is not None and found.kind == kind:
        return found
    return Connection(
        name=name,
        kind=kind,
        base_url=DEFAULT_URLS[kind],
        max_concurrency=DEFAULT_CONCURRENCY[kind],
        source=f"none: no connection “{name}” is configured",
    )


def load_setting(raw_json: str, file_path: str) -> dict:
    """The PROVIDERS setting from its JSON or its file, checked; ValueError with one sentence otherwise."""
    where = "PROVIDERS"
    if file_path and not raw_json:
        where = f"PROVIDERS_FILE ({file_path})"
        try:
            # utf-8-sig: editors on Windows save JSON with a byte order mark, which json refuses.
            with open(file_path, encoding="utf-8-sig") as handle:
                raw_json = handle.read()
        except OSError as error:
            raise BadConnection(
                f"PROVIDERS_FILE names {file_path}, which cannot be read: {error.strerror}."
            ) from None
        except UnicodeDecodeError:
            raise BadConnection(
                f"PROVIDERS_FILE names {file_path}, which is not UTF-8 text: save it as UTF-8."
            ) from None
    if not raw_json.strip():
        return {}
    try:
        value = json.loads(raw_json, object_pairs_hook=_Written)
    except json.JSONDecodeError as error:
        raise BadConnection(
            f"{where} must be JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    _refuse_repeats(value, where)
    parse_connections(value, where)
    return json.loads(raw_json)


class _Written(dict):
    """A JSON object that remembers the names written in it more than once.

    json.loads keeps the last of a repeated name without a word, so a connection declared twice
    (pasted from two places) would grade through whichever came last."""

    def __init__(self, pairs: list[tuple[str, Any]]):
        super().__init__(pairs)
        names = [name for name, _ in pairs]
        self.repeated = sorted({name for name in names if names.count(name) > 1})


def _refuse_repeats(value: Any, where: str) -> None:
    if not isinstance(value, _Written):
        return
    if value.repeated:
        raise BadConnection(
            f"{where}: the connection “{value.repeated[0]}” is declared twice; keep one entry for it."
        )
    for name, entry in value.items():
        if isinstance(entry, _Written) and entry.repeated:
            raise BadConnection(
                f"{where}: the connection “{name}” states {entry.repeated[0]} twice; keep one."
            )
