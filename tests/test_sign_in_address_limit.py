"""Failed sign-ins from one address are bounded whatever the usernames: password spraying is slowed.

django-axes locks one username from one address; an address trying a password
or two against hundreds of usernames stays under it for every pair.
SIGN_IN_ADDRESS_RATE bounds the failures from one address on the sign-in page,
the admin's and the token endpoint together.
"""

import uuid

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from rest_framework.test import APIClient

from core import sign_in_limit
from core.env import env_window_rate, parse_window_rate
from tests.test_configuration import settings_load_value

pytestmark = pytest.mark.django_db

SPRAYER = "203.0.113.7"
TEACHER = "198.51.100.4"
# The start of a 10-minute window (a multiple of 600 seconds).
WINDOW_START = 1_800_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    moved = Clock(WINDOW_START)
    monkeypatch.setattr(sign_in_limit, "clock", moved)
    return moved


@pytest.fixture
def limited(settings, clock):
    """30 failed sign-ins per 10 minutes per address, counted in a fresh cache of this process.

    Never the Redis a REDIS_URL may name: clearing a Redis cache empties its whole database.
    """
    settings.SIGN_IN_ADDRESS_RATE = "30/10m"
    settings.CACHES = {
        **settings.CACHES,
        "throttles": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-sign-in-limit-{uuid.uuid4().hex}",
        },
    }
    counts = caches["throttles"]
    yield
    counts.clear()


def sign_in(
    username: str, password: str = "Spring2026!", address: str = SPRAYER, page: str = "/accounts/login/"
):
    return Client(REMOTE_ADDR=address).post(page, {"username": username, "password": password})


def ask_token(username: str, password: str = "Spring2026!", address: str = SPRAYER):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/auth/token", {"username": username, "password": password}, format="json"
    )


def spray(count: int, address: str = SPRAYER, page: str = "/accounts/login/", start: int = 0) -> None:
    for number in range(start, start + count):
        response = sign_in(f"pupil{number}", address=address, page=page)
        assert response.status_code == 200, number
        assert "correct username and password" in response.content.decode()


def assert_refused(response, minutes: int = 10) -> None:
    html = response.content.decode()
    assert response.status_code == 429
    assert "Too many sign-in attempts" in html
    assert f"Try again in {minutes} minute{'s' if minutes != 1 else ''}." in html
    assert '<link rel="stylesheet"' in html  # the app's own page, not a bare error
    assert int(response["Retry-After"]) > 0


def test_spraying_usernames_from_one_address_is_refused_after_the_limit_while_another_address_signs_in(
    owner, limited
):
    spray(30)

    assert_refused(sign_in("pupil30"))
    assert_refused(sign_in("pupil31", page="/admin/login/"))
    teacher = Client(REMOTE_ADDR=TEACHER)
    response = teacher.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.status_code == 302
    assert teacher.get("/batches").status_code == 200


def test_over_the_limit_the_password_is_not_checked_so_the_right_one_is_refused_alike(owner, limited):
    checked = []

    def record(sender, **kwargs):
        checked.append(sender)

    spray(30)
    user_logged_in.connect(record)
    user_login_failed.connect(record)
    try:
        right = Client(REMOTE_ADDR=SPRAYER)
        right_answer = right.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"})
        wrong_answer = sign_in("olivia", "not-her-password")
    finally:
        user_logged_in.disconnect(record)
        user_login_failed.disconnect(record)

    assert checked == []
    assert right_answer.status_code == wrong_answer.status_code == 429
    assert right_answer.content == wrong_answer.content
    assert right.get("/batches").status_code == 302  # not signed in


def test_failures_on_the_admin_page_count_for_the_sign_in_page(owner, limited):
    spray(30, page="/admin/login/")

    assert_refused(sign_in("olivia", "pw-olivia"))


def test_failures_on_the_token_endpoint_count_and_past_the_limit_it_refuses_even_the_right_password(
    owner, limited
):
    spray(20)
    for number in range(20, 30):
        assert ask_token(f"pupil{number}").status_code == 400

    response = ask_token("olivia", "pw-olivia")

    assert response.status_code == 429
    assert response.json() == {
        "detail": "Too many failed sign-ins from this address; signing in from it is paused. "
        "Try again in 10 minutes.",
        "code": "throttled",
    }
    assert response["Retry-After"] == "601"
    assert_refused(sign_in("olivia", "pw-olivia"))


def test_a_successful_sign_in_from_the_address_does_not_reset_its_count(owner, limited):
    spray(29)
    assert sign_in("olivia", "pw-olivia").status_code == 302
    spray(1, start=29)

    assert_refused(sign_in("pupil30"))


def test_the_refusal_ends_once_the_failures_have_left_the_last_ten_minutes(owner, limited, clock):
    spray(30)
    clock.now += 599
    assert_refused(sign_in("olivia", "pw-olivia"), minutes=1)

    clock.now += 2

    assert sign_in("olivia", "pw-olivia").status_code == 302


def test_a_new_fixed_window_does_not_start_a_fresh_count(owner, limited, clock):
    # Counts are kept per fixed 10 minutes; 30 at the end of one, and the next
    # one's first seconds still see them (counting only its own would allow 30 more).
    clock.now += 590
    spray(30)
    clock.now += 20
    spray(1, start=30)

    assert_refused(sign_in("olivia", "pw-olivia"), minutes=1)


def test_addresses_in_one_ipv6_64_share_a_count_and_another_64_does_not(owner, limited):
    for number in range(30):
        assert sign_in(f"pupil{number}", address=f"2001:db8:1:2::{number + 1:x}").status_code == 200

    assert_refused(sign_in("pupil30", address="2001:db8:1:2:ffff::1"))
    assert sign_in("olivia", "pw-olivia", address="2001:db8:1:3::1").status_code == 302


def test_a_forged_forwarded_for_header_does_not_escape_the_limit(owner, limited):
    for number in range(30):
        forged = Client(REMOTE_ADDR=SPRAYER, HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
        assert (
            forged.post("/accounts/login/", {"username": f"pupil{number}", "password": "x"}).status_code
            == 200
        )

    again = Client(REMOTE_ADDR=SPRAYER, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert again.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"}).status_code == 429


def test_behind_a_trusted_proxy_each_client_the_proxy_saw_has_its_own_count(owner, limited, settings):
    settings.NUM_PROXIES = 1
    proxy = "10.0.0.2"
    for number in range(30):
        sprayer = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=SPRAYER)
        assert (
            sprayer.post("/accounts/login/", {"username": f"pupil{number}", "password": "x"}).status_code
            == 200
        )

    refused = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=SPRAYER)
    assert refused.post("/accounts/login/", {"username": "pupil30", "password": "x"}).status_code == 429
    teacher = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=TEACHER)
    assert (
        teacher.post("/accounts/login/", {"username": "olivia", "password": "pw-olivia"}).status_code == 302
    )


def test_the_default_leaves_a_class_s_typos_alone(limited, settings):
    settings.SIGN_IN_ADDRESS_RATE = settings_load_value("SIGN_IN_ADDRESS_RATE", DEBUG="1").strip("'")
    assert settings.SIGN_IN_ADDRESS_RATE == "30/10m"
    # A class of 30 behind the school's one address: every second pupil mistypes
    # once, every fifth twice more; the teacher once too.
    User.objects.create_user("teacher", password="pw-teacher")
    assert sign_in("teacher", "pw-teachr").status_code == 200
    for number in range(30):
        User.objects.create_user(f"pupil{number}", password=f"pw-pupil{number}")
    for number in range(30):
        typos = (1 if number % 2 == 0 else 0) + (2 if number % 5 == 0 else 0)
        for _ in range(typos):
            assert sign_in(f"pupil{number}", f"pw-pupli{number}").status_code == 200
        assert sign_in(f"pupil{number}", f"pw-pupil{number}").status_code == 302, number
    assert sign_in("teacher", "pw-teacher").status_code == 302


def test_switched_off_nothing_is_refused(owner, limited, settings):
    settings.SIGN_IN_ADDRESS_RATE = None
    spray(40)

    assert sign_in("olivia", "pw-olivia").status_code == 302


def test_with_its_cache_unreachable_signing_in_still_works(owner, limited, settings):
    settings.CACHES = {
        **settings.CACHES,
        "throttles": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }

    assert sign_in("olivia", "wrong").status_code == 200
    assert sign_in("olivia", "pw-olivia").status_code == 302


@pytest.mark.parametrize(
    ("raw", "stored", "parsed"),
    [
        ("30/10m", "30/10m", (30, 600)),
        ("100/h", "100/1h", (100, 3600)),
        (" 50 / 15 minutes ", "50/15m", (50, 900)),
        ("1000/1day", "1000/1d", (1000, 86400)),
        ("20/90s", "20/90s", (20, 90)),
        ("off", None, None),
    ],
)
def test_a_rate_per_address_is_read_written_plainly_or_switched_off(monkeypatch, raw, stored, parsed):
    monkeypatch.setenv("SIGN_IN_ADDRESS_RATE", raw)

    assert env_window_rate("SIGN_IN_ADDRESS_RATE", "30/10m") == stored
    assert parse_window_rate(stored) == parsed


@pytest.mark.parametrize("raw", ["30", "30/0m", "0/10m", "30/10x", "ten/m", "30/-1m"])
def test_a_bad_rate_per_address_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("SIGN_IN_ADDRESS_RATE", raw)

    with pytest.raises(ImproperlyConfigured, match="SIGN_IN_ADDRESS_RATE: .* such as 30/10m"):
        env_window_rate("SIGN_IN_ADDRESS_RATE", "30/10m")
