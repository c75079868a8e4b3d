"""The three things /healthz reports: the database, the task broker and a live cluster.

Each check returns a small dict with "ok" and what it saw. Failures are
logged in full and reported by kind only, since /healthz answers anyone.
"""

import time
from datetime import datetime
from typing import Any

from django.db import connections

from core import cluster

_failed = cluster.failed


def check_database() -> dict[str, Any]:
    started = time.monotonic()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failed("The database", exc)
    return {"ok": True, "vendor": connections["default"].vendor, "ms": _ms_since(started)}


def check_broker() -> dict[str, Any]:
    """Reach the queue itself: ping Redis, or count the ORM broker's queue table."""
    started = time.monotonic()
    try:
        broker = cluster.broker()
        broker.ping()
        queued = broker.queue_size()
    except Exception as exc:
        return _failed("The task broker", exc)
    return {"ok": True, "type": cluster.broker_type(), "queued": queued, "ms": _ms_since(started)}


def check_cluster(now=None) -> dict[str, Any]:
    """Has a django-q2 cluster been seen recently? See `core.cluster.check_cluster`."""
    return cluster.check_cluster(now)


def latest_heartbeat() -> datetime | None:
    """When a worker last ran the scheduled heartbeat task (registered with `core.cluster`)."""
    from health.models import Heartbeat

    return Heartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
