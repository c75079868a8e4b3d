"""POST /api/auth/token: a username and password buy a token; the token signs requests in."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


def test_a_token_is_issued_for_a_good_password_and_signs_requests_in(owner):
    make_batch(owner)
    client = APIClient()
    response = client.post("/api/auth/token", {"username": "olivia", "password": "pw-olivia"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/batches").json()["count"] == 1
    again = APIClient().post("/api/auth/token", {"username": "olivia", "password": "pw-olivia"})
    assert again.json()["token"] == token


@pytest.mark.parametrize(
    "body",
    [
        {"username": "olivia", "password": "wrong"},
        {"username": "nobody", "password": "pw-olivia"},
        {"username": "olivia"},
        {},
        {"username": "oli\x00via", "password": "pw-olivia"},
        {"username": "olivia", "password": "pw-olivia", "otp": "123"},
    ],
)
def test_bad_credentials_get_a_400_and_no_token(owner, body):
    response = APIClient().post("/api/auth/token", body, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


def test_a_bad_token_is_a_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/batches")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_session_signs_the_browsable_api_in(owner, client):
    client.force_login(owner)
    assert client.get("/api/batches").status_code == 200


# --- guessing: DRF's throttle and django-axes' lockout ---------------------------------


@pytest.fixture
def throttled(settings):
    """The token endpoint's throttle at its default rate, its counts in a fresh cache of this process.

    Never the Redis a REDIS_URL may name: clearing a Redis cache empties its whole database.
    """
    from django.core.cache import caches

    settings.AUTH_TOKEN_RATE = "10/min"
    settings.CACHES = {
        **settings.CACHES,
        "throttles": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "test-throttles",
        },
    }
    caches["throttles"].clear()
    yield
    caches["throttles"].clear()


@pytest.fixture
def lockout(settings):
    """django-axes on, as in production (the test settings switch it off)."""
    settings.AXES_ENABLED = True
    assert (settings.LOGIN_FAILURE_LIMIT, settings.AXES_FAILURE_LIMIT) == (10, 11)


def ask(password: str, username: str = "olivia", address: str = "127.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/auth/token", {"username": username, "password": password}, format="json"
    )


def test_the_11th_request_a_minute_from_one_address_is_throttled(owner, throttled):
    for attempt in range(10):
        assert ask("wrong", username=f"user{attempt}").status_code == 400
    response = ask("pw-olivia")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert ask("pw-olivia", address="10.1.2.3").status_code == 200  # another address is not held back


def test_the_11th_request_a_minute_for_one_username_is_throttled_whatever_the_address(owner, throttled):
    for attempt in range(10):
        assert ask("wrong", address=f"192.0.2.{attempt + 1}").status_code == 400
    response = ask("pw-olivia", address="192.0.2.200")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"


def test_a_forged_forwarded_for_header_does_not_escape_the_throttle(owner, throttled):
    for attempt in range(10):
        client = APIClient(HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}")
        assert client.post("/api/auth/token", {"username": f"u{attempt}", "password": "x"}).status_code == 400
    forged = APIClient(HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert forged.post("/api/auth/token", {"username": "other", "password": "x"}).status_code == 429


def test_the_11th_wrong_password_locks_the_username_out_even_with_the_right_one(owner, lockout):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.db.models import F

    for _ in range(10):
        assert ask("wrong").status_code == 400
    locked = ask("wrong")
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out"
    assert "locked for 15 minutes" in locked.json()["detail"]
    right = ask("pw-olivia")
    assert right.status_code == 429
    assert right.json()["code"] == "locked_out"
    assert ask("pw-colin", username="colin").status_code == 400  # another username is not locked
    # Fifteen minutes later the lock has cooled off.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert ask("pw-olivia").status_code == 200


def test_a_429_is_documented_for_the_token_endpoint(owner):
    schema = APIClient().get("/api/schema?format=json").json()
    assert "429" in schema["paths"]["/api/auth/token"]["post"]["responses"]
