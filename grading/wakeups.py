"""Telling every worker at once, on PostgreSQL: a batch was cancelled, or work was queued.

A cancel must stop the calls that runners hold ready, and a started batch should
wake every standing runner on every node. Both are sent with NOTIFY inside the
transaction that causes them (so they arrive only once it commits) and heard by one
listener thread per worker process, on a connection of its own. The runners also
look in the database every poll (grading.runner), so a missed notification (a
listener reconnecting, or SQLite, which has none) costs a poll interval, nothing more.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection

logger = logging.getLogger(__name__)

CHANNEL = "gradeproject_engine"
# Batches cancelled since this process started listening: no call of theirs may start.
stopped_batches: set[int] = set()
_on_work: list[Callable[[int], None]] = []
_listener: threading.Thread | None = None
_lock = threading.Lock()


def _notify(payload: str) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])


def announce_stopped(batch_id: int) -> None:
    """In the transaction that cancels the batch: every runner hears of it when it commits."""
    _notify(f"stop:{batch_id}")


def announce_work(peers: int = 0) -> None:
    """Work was queued: every standing runner wakes (peers: how many runners the work can keep busy, less one)."""
    _notify(f"work:{peers}")


def listen(on_work: Callable[[int], None]) -> bool:
    """Start this process's listener (once) and call on_work(peers) on each work notification.

    False on a database without notifications (SQLite): the callers poll instead.
    """
    global _listener
    if connection.vendor != "postgresql":
        return False
    with _lock:
        _on_work.append(on_work)
        if _listener is None:
            _listener = threading.Thread(target=_listen_forever, name="engine-listener", daemon=True)
            _listener.start()
    return True


def _connect():
    import psycopg

    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        autocommit=True,
        connect_timeout=5,
    )


def _listen_forever() -> None:
    while True:
        try:
            with _connect() as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                while True:
                    for note in conn.notifies(timeout=5.0):
                        _heard(note.payload)
        except Exception as error:  # a lost connection is retried; polling covers the gap
            logger.info("The engine's listener lost its connection (%s); reconnecting.", error)
            time.sleep(1.0)


def _heard(payload: str) -> None:
    kind, _, value = payload.partition(":")
    if kind == "stop" and value.isdigit():
        stopped_batches.add(int(value))
    elif kind == "work":
        peers = int(value) if value.isdigit() else 0
        for callback in list(_on_work):
            try:
                callback(peers)
            except Exception:
                logger.exception("A work notification's receiver failed.")
