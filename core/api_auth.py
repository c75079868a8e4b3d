"""POST /api/auth/token: username and password in, `{"token"}` out; and who may keep trying.

Clients then send `Authorization: Token <token>`; the browsable API and the
web pages use the session instead.

Guessing passwords is bounded twice. DRF throttles the token endpoint per
client address and per username (AUTH_TOKEN_RATE, 10/min by default), answering
429 `{"detail", "code": "throttled"}`. django-axes counts failed sign-ins, on
this endpoint and the sign-in page alike (it hooks Django's `authenticate`):
after LOGIN_FAILURE_LIMIT wrong passwords for one username from one address,
the next failure locks that pair out for LOGIN_COOLOFF, even with the right
password: here a 429 `{"detail", "code": "locked_out"}`, on the sign-in page a
429 page. And failed sign-ins from one address, whatever the usernames, are
bounded by SIGN_IN_ADDRESS_RATE on all of them (core/sign_in_limit.py): past
it, a 429 `{"detail", "code": "throttled"}` before the password is checked.
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from redis.exceptions import RedisError
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, Throttled, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from core.api_errors import FIELD_ERRORS, ErrorSerializer
from core.api_support import StrictJSONParser, StrictSerializerMixin
from core.client_address import client_ip
from core.sign_in_limit import limited_sentence, retry_after, seconds_to_wait

logger = logging.getLogger(__name__)


class _TokenThrottle(SimpleRateThrottle):
    """A rate from settings.AUTH_TOKEN_RATE, read when a request comes (None: no throttle).

    Counted in the `throttles` cache, Redis when there is one, so that every web
    process shares the count. Were that cache unreachable, the request is let
    through: signing in must not fail with the cache, and django-axes, which
    counts failures in the database, still locks a guessed username.
    """

    def __init__(self) -> None:
        self.cache = caches["throttles"]
        super().__init__()

    def get_rate(self) -> str | None:
        return settings.AUTH_TOKEN_RATE

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (OSError, RedisError) as exc:
            logger.warning("The token throttle's cache is unreachable; request let through: %s", exc)
            return True

    def get_ident(self, request) -> str:
        return client_ip(request)


class TokenAddressThrottle(_TokenThrottle):
    scope = "auth-token-address"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenUsernameThrottle(_TokenThrottle):
    """Per username, whatever the address: guesses spread over many addresses still add up."""

    scope = "auth-token-username"

    def get_cache_key(self, request, view) -> str | None:
        data = request.data
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username:
            return None  # the request is refused as invalid anyway
        ident = hashlib.sha256(username.casefold().encode(errors="replace")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressLimited(Throttled):
    """Too many failed sign-ins from the client's address (core/sign_in_limit.py)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(detail=limited_sentence(seconds))
        self.wait = retry_after(seconds)  # the Retry-After header


class LockedOut(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


def lockout_minutes() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return max(1, round(cooloff.total_seconds() / 60)) if isinstance(cooloff, timedelta) else 0


def lockout_sentence() -> str:
    return (
        f"Too many failed sign-ins for this username from this address; "
        f"signing in is locked for {lockout_minutes()} minutes, even with the right password."
    )


def lockout_page(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' response when the sign-in page (or the admin's) is locked: a 429 page."""
    from axes.helpers import get_client_username

    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,  # the attempt that locked it counts
        "minutes": lockout_minutes(),
    }
    return render(request, "registration/locked_out.html", context, status=429)


class TokenRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"}, trim_whitespace=False)


THROTTLED = OpenApiResponse(
    ErrorSerializer,
    description=(
        "Too many requests, or too many failed sign-ins from this address (`throttled`), "
        "or signing in is locked after too many failures (`locked_out`)."
    ),
)


class ObtainTokenView(ObtainAuthToken):
    # No session or token needed to ask for a token, and no CSRF check for it.
    authentication_classes: list = []
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES  # browsable too, not JSON only
    throttle_classes = [TokenAddressThrottle, TokenUsernameThrottle]

    def check_throttles(self, request) -> None:
        # Before the request is parsed, and so before any password is checked.
        seconds = seconds_to_wait(request)
        if seconds is not None:
            raise AddressLimited(seconds)
        super().check_throttles(request)

    @extend_schema(
        summary="Exchange a username and password for an API token",
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            400: FIELD_ERRORS,
            429: THROTTLED,
        },
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        TokenRequestSerializer(data=request.data).is_valid(raise_exception=True)
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # django-axes flags the request it was handed by `authenticate`: this one.
            if getattr(request, "axes_locked_out", False):
                raise LockedOut(lockout_sentence())
            raise
