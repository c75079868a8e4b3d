"""The token endpoint's throttle counts in Redis when there is one, so every web process shares its limit.

Counted in each process's memory, gunicorn's four workers on each web machine
would each allow AUTH_TOKEN_RATE: 40 guesses a minute for one machine, not 10.
"""

import uuid

import pytest
import redis
from django.core.cache import caches
from rest_framework.test import APIClient

from tests.support.qcluster_nodes import REDIS_URL, require_redis
from tests.test_configuration import settings_load_value

pytestmark = pytest.mark.django_db


def ask(password: str, username: str = "olivia"):
    return APIClient(REMOTE_ADDR="203.0.113.7").post(
        "/api/auth/token", {"username": username, "password": password}, format="json"
    )


def throttles_at(settings, location: str, prefix: str) -> None:
    settings.AUTH_TOKEN_RATE = "10/min"
    settings.CACHES = {
        **settings.CACHES,
        "throttles": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }


@pytest.fixture
def shared_throttles(settings):
    """The throttles on the test Redis under a prefix of their own; only that prefix's keys are removed after."""
    require_redis()
    prefix = f"gp-test-throttles-{uuid.uuid4().hex[:8]}"
    throttles_at(settings, REDIS_URL, prefix)
    server = redis.from_url(REDIS_URL)
    yield server, prefix
    keys = list(server.scan_iter(match=f"{prefix}:*"))
    if keys:
        server.delete(*keys)


@pytest.mark.redis
def test_the_counts_are_kept_in_redis_where_another_web_process_reads_them(owner, shared_throttles):
    server, prefix = shared_throttles
    for attempt in range(10):
        assert ask("wrong", username=f"user{attempt}").status_code == 400

    # Another web process: a cache of its own, on the same Redis.
    caches["throttles"].close()
    del caches["throttles"]
    response = ask("pw-olivia")

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert any(server.scan_iter(match=f"{prefix}:*auth-token-address*"))


def test_with_its_cache_unreachable_the_token_endpoint_still_answers(owner, settings):
    throttles_at(settings, "redis://127.0.0.1:9/0", "unreachable")

    assert ask("pw-olivia").status_code == 200
    assert ask("wrong").status_code == 400


def test_a_redis_url_puts_the_throttles_in_that_redis():
    loaded = settings_load_value(
        "CACHES", DEBUG="1", REDIS_URL="redis://cache-host:6379/2", Q_CLUSTER_NAME="school"
    )

    assert "'BACKEND': 'django.core.cache.backends.redis.RedisCache'" in loaded
    assert "'LOCATION': 'redis://cache-host:6379/2'" in loaded
    assert "'KEY_PREFIX': 'school:throttles'" in loaded


def test_without_redis_the_throttles_count_in_the_process():
    loaded = settings_load_value("CACHES", DEBUG="1", REDIS_URL="")

    assert "RedisCache" not in loaded
