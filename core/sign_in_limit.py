"""A limit on failed sign-ins per client address, whatever the usernames tried.

django-axes locks one username from one address. An address trying one or two
passwords against hundreds of usernames (password spraying) stays under that
lock for every pair, so SIGN_IN_ADDRESS_RATE (30 failed sign-ins per 10
minutes by default) bounds the failures from one address on the sign-in page,
the admin's and the token endpoint together. Past it, those answer 429 without
checking the password: a refusal says nothing about whether it was right.

Failures are counted where Django's `authenticate` reports one
(`user_login_failed`), in the `throttles` cache: Redis when REDIS_URL is set,
so that every web process counts against the one limit. A success resets
nothing: someone with an account of their own could otherwise clear the count
by signing in between guesses.
"""

import logging
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

from core.client_address import client_network
from core.env import parse_window_rate

logger = logging.getLogger(__name__)

# The views whose POST checks a password: Django's sign-in view and the admin's.
SIGN_IN_VIEWS = {"login", "admin:login"}

clock: Callable[[], float] = time.time  # tests move it instead of sleeping


def _window_key(network: str, window: int, index: int) -> str:
    return f"sign-in-failures:{window}:{network}:{index}"


def count_failure(request: HttpRequest) -> None:
    """One more failed sign-in from the request's address."""
    rate = parse_window_rate(settings.SIGN_IN_ADDRESS_RATE)
    if rate is None:
        return
    window = rate[1]
    key = _window_key(client_network(request), window, int(clock() // window))
    cache = caches["throttles"]
    try:
        # A counter per fixed window, incremented in place so that processes
        # counting at once lose no failure. It is read as the previous window
        # all through the next one, so it lives for two.
        cache.add(key, 0, timeout=2 * window + 60)
        cache.incr(key)
    except (OSError, RedisError, ValueError) as exc:
        logger.warning("The sign-in limit could not count a failure (its cache unreachable?): %s", exc)


def seconds_to_wait(request: HttpRequest) -> float | None:
    """How long the request's address must wait to sign in again; None when it may now."""
    rate = parse_window_rate(settings.SIGN_IN_ADDRESS_RATE)
    if rate is None:
        return None
    limit, window = rate
    network = client_network(request)
    index, elapsed = divmod(clock(), window)
    current, previous = _window_key(network, window, int(index)), _window_key(network, window, int(index) - 1)
    try:
        counts = caches["throttles"].get_many([current, previous])
    except (OSError, RedisError) as exc:
        # Signing in must not fail with the cache; django-axes still locks a guessed username.
        logger.warning("The sign-in limit's cache is unreachable; sign-in let through: %s", exc)
        return None
    return wait_for(limit, window, counts.get(previous, 0), counts.get(current, 0), elapsed / window)


def wait_for(limit: int, window: int, previous: int, current: int, elapsed: float) -> float | None:
    """Seconds until fewer than `limit` failures fall in the last `window` seconds, if no more come.

    The failures in the last window are estimated from two fixed windows: this
    one's, and the previous one's weighted by the part of it still inside (1 -
    elapsed). Fixed windows alone would let twice the limit through around
    their boundary.
    """
    if previous * (1 - elapsed) + current < limit:
        return None
    if current < limit:
        # The previous window's share falls under the limit later in this one.
        return (1 - (limit - current) / previous - elapsed) * window
    # This window's failures alone reach the limit: into the next, until their share falls under it.
    return (1 - elapsed + 1 - limit / current) * window


def wait_minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def retry_after(seconds: float) -> int:
    # Strictly after the moment the estimate reaches the limit again, at which it is still refused.
    return math.floor(seconds) + 1


def limited_sentence(seconds: float) -> str:
    minutes = wait_minutes(seconds)
    return (
        f"Too many failed sign-ins from this address; signing in from it is paused. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def limited_page(request: HttpRequest, seconds: float) -> HttpResponse:
    response = render(
        request, "registration/address_limited.html", {"minutes": wait_minutes(seconds)}, status=429
    )
    response["Retry-After"] = str(retry_after(seconds))
    return response


def count_failed_sign_in(sender, credentials=None, request=None, **kwargs) -> None:
    """Receives `user_login_failed`; a failure with no request (a shell, a command) has no address."""
    if request is not None:
        count_failure(request)


class SignInAddressLimitMiddleware:
    """A sign-in POST from an address over the limit gets the 429 page; its form never checks the password."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if request.method != "POST" or request.resolver_match.view_name not in SIGN_IN_VIEWS:
            return None
        seconds = seconds_to_wait(request)
        return None if seconds is None else limited_page(request, seconds)
