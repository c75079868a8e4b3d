"""Small readers for environment variables that fail loudly on a bad value.

A typo in a deployment's environment should stop the process at start-up with
a sentence naming the variable, not surface later as odd behaviour.
"""

import json
import os
import re
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}.")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}.")
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json(name: str, default: dict) -> dict:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} must be JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object.")
    return value


def parse_database_url(url: str, conn_max_age: int) -> dict:
    """Turn postgres://user:pass@host:port/name or sqlite:///path into DATABASES['default']."""
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL names no database (postgres://host/NAME).")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": conn_max_age > 0,
            "OPTIONS": options,
        }
    if parts.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as dj-database-url reads them.
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ImproperlyConfigured("DATABASE_URL for SQLite must look like sqlite:///path/to/file.")
        return sqlite_database(path, conn_max_age)
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported; use postgres:// or sqlite:///."
    )


def sqlite_database(path: str, conn_max_age: int) -> dict:
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on the busy timeout instead of failing halfway
    # through a transaction with "database is locked".
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "CONN_MAX_AGE": conn_max_age,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """'30d', '12h' or '90m' as a timedelta; ValueError with a sentence otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text or "")
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number followed by d, h or m, such as 30d, 12h or 90m."
        )
    amount, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(amount)})


def env_duration(name: str, default: str) -> timedelta:
    raw = os.environ.get(name)
    try:
        return parse_duration(default if raw is None or raw.strip() == "" else raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


_RATE = re.compile(r"\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*")


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate such as '10/min' (or 'off' for none), checked at start-up."""
    raw = os.environ.get(name)
    value = (default if raw is None else raw).strip()
    if value.lower() in ("off", "none", "0", ""):
        return None
    match = _RATE.fullmatch(value)
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 10/min (per s, min, h or day) or off, got {value!r}."
        )
    return f"{int(match.group(1))}/{match.group(2)}"


_WINDOW = re.compile(
    r"\s*(\d+)\s*/\s*(\d*)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|h|days?|d)\s*", re.IGNORECASE
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window_rate(text: str) -> tuple[int, int] | None:
    """'30/10m' as (30, 600): that many per that many seconds; 'off' as None; ValueError otherwise.

    Unlike a DRF rate, the period may be several units long (10m, 2h), and the unit
    alone means one of it (30/h).
    """
    value = (text or "").strip()
    if value.lower() in ("off", "none", "0", ""):
        return None
    match = _WINDOW.fullmatch(value)
    count, amount = (int(match.group(1)), int(match.group(2) or 1)) if match else (0, 0)
    if count < 1 or amount < 1:
        raise ValueError(f"{value!r} is not a rate; write a count per period, such as 30/10m, 100/h or off.")
    return count, amount * _UNIT_SECONDS[match.group(3)[0].lower()]


def env_window_rate(name: str, default: str) -> str | None:
    """A count per period such as '30/10m' (or 'off' for none), checked at start-up and written out plainly."""
    raw = os.environ.get(name)
    value = default if raw is None else raw
    try:
        parsed = parse_window_rate(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None
    if parsed is None:
        return None
    count, seconds = parsed
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{count}/{seconds // size}{unit}"
    return f"{count}/{seconds}s"
