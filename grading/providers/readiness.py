"""Whether each connection can grade now: its key is set (or its endpoint is on loopback), and,
when someone asks, whether its endpoint answers.

The key check reads no network and runs wherever it is wanted (a page, a batch's start). The
reachability check opens a TCP connection to the endpoint's host and port with a short timeout
(nothing is sent, so no key travels) and is kept for a minute; it runs only when asked
(`GET /api/providers?check=1`), never because a page was viewed: pages show the last result.
A connection found unreachable is not refused at start, as a provider down for a moment is the
circuits' business (grading/circuits.py), but it is shown as not ready with the sentence.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from grading.providers import available_providers, connection_of, provider_class
from grading.providers.connections import Connection

REACH_TIMEOUT_S = 2.0
REACH_KEPT_S = 60.0

# base URL -> (monotonic time of the check, why it does not answer or None)
_reached: dict[str, tuple[float, str | None]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Readiness:
    """What a page or the API shows of one connection; never its key."""

    name: str
    kind: str
    base_url: str
    key_env: str
    max_concurrency: int | None
    requests_per_minute: int | None
    tokens_per_minute: int
    problem: str | None
    # True or False from a check at most a minute old; None when not checked (or nothing to reach).
    reachable: bool | None

    @property
    def ready(self) -> bool:
        return self.problem is None


class Connections(list[Readiness]):
    """The connections in order; a page opens their list when one of them is not ready."""

    @property
    def all_ready(self) -> bool:
        return all(item.ready for item in self)


def connections_readiness(check: bool = False) -> Connections:
    """Every name a batch may grade with, in order, with whether it is ready."""
    return Connections(readiness(name, check) for name in available_providers())


def readiness(name: str, check: bool = False) -> Readiness:
    connection = connection_of(name)
    if connection is None:  # a plug-in (EXTRA_PROVIDERS): it states its limits, nothing to reach
        limits = provider_class(name).limits()
        return Readiness(
            name, "plug-in", "", "", limits.max_concurrency, limits.requests_per_minute, 0, None, None
        )
    limits = provider_class(name).limits()
    problem = connection.problem()
    reachable = None
    if problem is None and connection.kind != "builtin":
        reachable, problem = reach(connection, check)
    return Readiness(
        name=name,
        kind=connection.kind,
        base_url=connection.shown_url,
        key_env=connection.key_env,
        max_concurrency=limits.max_concurrency,
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        problem=problem,
        reachable=reachable,
    )


def reach(connection: Connection, check: bool) -> tuple[bool | None, str | None]:
    """Whether the endpoint answers, and the sentence saying why not; (None, None) when not known.

    With `check`, a result older than a minute is checked again; without it, only a result
    still kept is given.
    """
    with _lock:
        kept = _reached.get(connection.base_url)
    if kept is None or time.monotonic() - kept[0] >= REACH_KEPT_S:
        if not check:
            return None, None
        kept = (time.monotonic(), _connect(connection.base_url))
        with _lock:
            _reached[connection.base_url] = kept
    reason = kept[1]
    if reason is None:
        return True, None
    return False, f"The connection “{connection.name}” does not answer at {connection.shown_url}: {reason}."


def _connect(base_url: str) -> str | None:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT_S):
            return None
    except TimeoutError:
        return f"no answer within {REACH_TIMEOUT_S:g} seconds"
    except (OSError, ValueError) as error:
        return (getattr(error, "strerror", None) or str(error)).rstrip(".").lower() or "connection failed"


def forget_reachability() -> None:
    """Drop every kept check (tests, and a deployment that just changed its connections)."""
    with _lock:
        _reached.clear()
