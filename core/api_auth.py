"""POST /api/auth/token: username and password in, `{"token"}` out.

Clients then send `Authorization: Token <token>`; the browsable API and the
web pages use the session instead.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.settings import api_settings

from core.api_errors import FIELD_ERRORS
from core.api_support import StrictJSONParser, StrictSerializerMixin


class TokenRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"}, trim_whitespace=False)


class ObtainTokenView(ObtainAuthToken):
    # No session or token needed to ask for a token, and no CSRF check for it.
    authentication_classes: list = []
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES  # browsable too, not JSON only

    @extend_schema(
        summary="Exchange a username and password for an API token",
        request=TokenRequestSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()}), 400: FIELD_ERRORS},
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        TokenRequestSerializer(data=request.data).is_valid(raise_exception=True)
        return super().post(request, *args, **kwargs)
