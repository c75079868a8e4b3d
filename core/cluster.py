"""The django-q2 cluster as the engine and the checks see it: the broker, the live nodes, their workers.

With Redis every cluster publishes its status there every half second with a
3-second expiry, so the list of live nodes is exact. With the ORM broker those
statistics stay inside each cluster's own process; the proof that a cluster
runs is then the heartbeat a scheduled task writes, which the `health` app
keeps and registers here (`register_heartbeat_source`), so that the engine and
its commands can ask without importing the app above them.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

_heartbeat_source: Callable[[], datetime | None] | None = None


def register_heartbeat_source(source: Callable[[], datetime | None]) -> None:
    """Name the function that answers when a worker last ran the heartbeat task."""
    global _heartbeat_source
    _heartbeat_source = source


def broker_type() -> str:
    return "redis" if settings.REDIS_URL else "orm"


def broker():
    from django_q.brokers import get_broker

    found = get_broker()
    if broker_type() == "redis":
        import redis

        # A health probe must answer quickly even when Redis does not.
        found.connection = redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return found


def live_nodes() -> list[dict[str, Any]]:
    from django_q.conf import Conf
    from django_q.status import Stat

    return [
        {
            "host": stat.host,
            "cluster": str(stat.cluster_id),
            "status": str(stat.status),
            "workers": len(stat.workers),
        }
        for stat in Stat.get_all(broker=broker())
        if str(stat.status) != str(Conf.STOPPED)
    ]


def live_worker_count() -> int:
    """Worker processes across every live cluster node, at least this node's own.

    With Redis each node publishes its workers there, so work can be spread
    over all the nodes; the ORM broker publishes nothing another process can
    read, so only this node's configured count is known.
    """
    own = settings.Q_CLUSTER["workers"]
    if broker_type() != "redis":
        return own
    try:
        nodes = live_nodes()
    except Exception as exc:
        logger.warning("could not count the live workers: %s", exc)
        return own
    return max(sum(node["workers"] for node in nodes), own)


def check_cluster(now: datetime | None = None) -> dict[str, Any]:
    """Has a django-q2 cluster been seen recently? "ok", and what was seen."""
    report = _heartbeat(now or timezone.now())
    if broker_type() == "redis":
        try:
            report["nodes"] = live_nodes()
        except Exception as exc:
            return {**report, **failed("The cluster status", exc)}
        report["ok"] = bool(report["nodes"])
    heartbeat_error = report.pop("heartbeat_error", None)
    if not report["ok"]:
        report["error"] = heartbeat_error or (
            "No django-q2 cluster has been seen recently; start one with manage.py qcluster."
        )
    return report


def failed(what: str, exc: Exception) -> dict[str, Any]:
    """A check's failure: logged in full, reported by kind only (health answers anyone)."""
    logger.error("health check: %s failed: %s", what, exc)
    return {"ok": False, "error": f"{what} is unreachable ({type(exc).__name__})."}


def _heartbeat(now: datetime) -> dict[str, Any]:
    report: dict[str, Any] = {"max_age_s": settings.HEALTH_HEARTBEAT_MAX_AGE_S}
    try:
        latest = _heartbeat_source() if _heartbeat_source else None
    except Exception as exc:
        return {
            **report,
            "last_heartbeat": None,
            "ok": False,
            "heartbeat_error": failed("The heartbeat", exc)["error"],
        }
    report["last_heartbeat"] = latest.isoformat() if latest else None
    report["heartbeat_age_s"] = round((now - latest).total_seconds(), 1) if latest else None
    report["ok"] = latest is not None and now - latest <= timedelta(seconds=report["max_age_s"])
    return report
