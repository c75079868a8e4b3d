"""The three things /healthz reports: the database, the task broker and a live cluster.

Each check returns a small dict with "ok" and what it saw. Failures are
logged in full and reported by kind only, since /healthz answers anyone.
"""

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def _failed(what: str, exc: Exception) -> dict[str, Any]:
    logger.error("health check: %s failed: %s", what, exc)
    return {"ok": False, "error": f"{what} is unreachable ({type(exc).__name__})."}


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
        broker = _broker()
        broker.ping()
        queued = broker.queue_size()
    except Exception as exc:
        return _failed("The task broker", exc)
    return {"ok": True, "type": _broker_type(), "queued": queued, "ms": _ms_since(started)}


def check_cluster(now=None) -> dict[str, Any]:
    """Has a django-q2 cluster been seen recently?

    With Redis, every cluster publishes its status there every half second
    with a 3-second expiry, so the list of live nodes is exact. With the ORM
    broker those statistics stay in each cluster's own process, so the answer
    is the heartbeat row a scheduled task writes every minute.
    """
    report = _heartbeat(now or timezone.now())
    if _broker_type() == "redis":
        try:
            report["nodes"] = _live_nodes()
        except Exception as exc:
            return {**report, **_failed("The cluster status", exc)}
        report["ok"] = bool(report["nodes"])
    heartbeat_error = report.pop("heartbeat_error", None)
    if not report["ok"]:
        report["error"] = heartbeat_error or (
            "No django-q2 cluster has been seen recently; start one with manage.py qcluster."
        )
    return report


def _heartbeat(now) -> dict[str, Any]:
    from health.models import Heartbeat

    report: dict[str, Any] = {"max_age_s": settings.HEALTH_HEARTBEAT_MAX_AGE_S}
    try:
        latest = Heartbeat.objects.order_by("-seen_at").first()
    except Exception as exc:
        failed = _failed("The heartbeat", exc)
        return {**report, "last_heartbeat": None, "ok": False, "heartbeat_error": failed["error"]}
    report["last_heartbeat"] = latest.seen_at.isoformat() if latest else None
    report["heartbeat_age_s"] = round((now - latest.seen_at).total_seconds(), 1) if latest else None
    report["ok"] = latest is not None and now - latest.seen_at <= timedelta(seconds=report["max_age_s"])
    return report


def live_worker_count() -> int:
    """Worker processes across every live cluster node, at least this node's own.

    With Redis each node publishes its workers there, so work can be spread
    over all the nodes; the ORM broker publishes nothing another process can
    read, so only this node's configured count is known.
    """
    own = settings.Q_CLUSTER["workers"]
    if _broker_type() != "redis":
        return own
    try:
        nodes = _live_nodes()
    except Exception as exc:
        logger.warning("could not count the live workers: %s", exc)
        return own
    return max(sum(node["workers"] for node in nodes), own)


def _broker():
    from django_q.brokers import get_broker

    broker = get_broker()
    if _broker_type() == "redis":
        import redis

        # A health probe must answer quickly even when Redis does not.
        broker.connection = redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return broker


def _broker_type() -> str:
    return "redis" if settings.REDIS_URL else "orm"


def _live_nodes() -> list[dict[str, Any]]:
    from django_q.conf import Conf
    from django_q.status import Stat

    return [
        {
            "host": stat.host,
            "cluster": str(stat.cluster_id),
            "status": str(stat.status),
            "workers": len(stat.workers),
        }
        for stat in Stat.get_all(broker=_broker())
        if str(stat.status) != str(Conf.STOPPED)
    ]


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
