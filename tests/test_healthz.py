"""/healthz: the database, the broker and a recently seen cluster, as JSON with 200 or 503."""

import json
import socket
import subprocess
import sys
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from health.models import Heartbeat
from health.tasks import heartbeat


def test_healthz_is_200_with_every_check_ok_once_a_worker_ran_the_heartbeat(client, db):
    before = timezone.now()
    heartbeat()
    response = client.get("/healthz")
    since = (timezone.now() - before).total_seconds()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {**body["checks"]["broker"], "ok": True, "type": "orm"}
    assert body["checks"]["cluster"]["ok"] is True
    # The age of the heartbeat just run, read between it and the answer (rounded to 0.1 s).
    assert 0 <= body["checks"]["cluster"]["heartbeat_age_s"] <= since + 0.05


def test_healthz_needs_no_sign_in_and_is_never_cached(client, db):
    heartbeat()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_no_cluster_ran_the_heartbeat_recently(client, db):
    Heartbeat.objects.create(node=socket.gethostname(), seen_at=timezone.now() - timedelta(minutes=10))
    response = client.get("/healthz")
    assert response.status_code == 503
    cluster = response.json()["checks"]["cluster"]
    assert cluster["ok"] is False
    assert cluster["heartbeat_age_s"] >= 600
    assert "No django-q2 cluster has been seen recently" in cluster["error"]
    assert response.json()["checks"]["database"]["ok"] is True


def test_healthz_is_503_when_no_cluster_was_ever_seen(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["cluster"]["last_heartbeat"] is None


def test_the_heartbeat_keeps_one_row_per_node(db):
    heartbeat()
    heartbeat()
    assert Heartbeat.objects.count() == 1


PROBE = """
import django
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(response.status_code)
print(response.content.decode())
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_is_503_when_the_database_is_unreachable():
    """A real process whose database is a PostgreSQL address nothing listens on."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "gradeproject.settings",
        "SECRET_KEY": "test-only-secret-key",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/gradeproject_unreachable",
        "LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.split("\n", 1)
    assert status == "503"
    report = json.loads(body)
    assert report["status"] == "unavailable"
    assert report["checks"]["database"] == {
        "ok": False,
        "error": "The database is unreachable (OperationalError).",
    }
    # The ORM broker lives in the same database, so it is down with it.
    assert report["checks"]["broker"]["ok"] is False
    assert report["checks"]["cluster"]["ok"] is False
