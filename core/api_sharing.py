"""Sharing endpoints, the same for batches and templates.

    GET  /api/<objects>/{id}/permissions   who holds what: the owner, users and groups
    POST /api/<objects>/{id}/share         {"user": name} or {"group": name}, {"permission": level}
    POST /api/<objects>/{id}/unshare       the same body; takes that level and every higher one away
                                           (no "permission": every level)

Only the owner and holders of `manage` may use them: others who can view the
object get 403, those who cannot view it 404 (the viewset's visible queryset
does not find it). The rules themselves live in core.permissions.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from core import permissions as sharing
from core.api_errors import FIELD_ERRORS, FORBIDDEN, NOT_FOUND, NOT_SIGNED_IN
from core.api_support import StrictSerializerMixin

SHARE_DENIED = (
    "Only the owner and those it is shared with at 'manage' may see or change who it is shared with."
)


class CanShare(BasePermission):
    message = SHARE_DENIED

    def has_object_permission(self, request, view, obj) -> bool:
        return sharing.can_share(request.user, obj)


class ShareRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    user = serializers.CharField(required=False, max_length=150, help_text="A username.")
    group = serializers.CharField(required=False, max_length=150, help_text="A group name.")
    permission = serializers.ChoiceField(
        choices=sharing.Level.choices,
        help_text="view < change < manage; each includes the lower ones. Manage allows re-sharing.",
    )

    def validate(self, data: dict) -> dict:
        # One message under one field, whatever is missing: a client fixes one thing at a time.
        if "user" in data and "group" in data:
            raise ValidationError({"group": ['Give either "user" or "group", not both.']})
        if "user" not in data and "group" not in data:
            raise ValidationError({"user": ['Give either "user" (a username) or "group" (a group name).']})
        if "user" in data:
            found = get_user_model().objects.filter(username=data["user"]).first()
            if found is None:
                raise ValidationError({"user": [f"No user “{data['user']}”."]})
        else:
            found = Group.objects.filter(name=data["group"]).first()
            if found is None:
                raise ValidationError({"group": [f"No group “{data['group']}”."]})
        data["principal"] = found
        return data


class UnshareRequestSerializer(ShareRequestSerializer):
    permission = serializers.ChoiceField(
        choices=sharing.Level.choices,
        default=sharing.Level.VIEW,
        help_text="The level taken away, with every higher one; `view`, the default, takes every level.",
    )


Grant = inline_serializer(
    "Grant",
    {
        "user": serializers.CharField(required=False),
        "group": serializers.CharField(required=False),
        "permission": serializers.ChoiceField(
            choices=sharing.Level.choices, help_text="The highest level held."
        ),
        "permissions": serializers.ListField(child=serializers.CharField(), help_text="Every level held."),
    },
)
Sharing = inline_serializer(
    "Sharing",
    {
        "owner": serializers.CharField(allow_null=True, help_text="Always has full control."),
        "users": Grant.__class__(many=True),
        "groups": Grant.__class__(many=True),
    },
)
SHARING_ERRORS = {401: NOT_SIGNED_IN, 403: FORBIDDEN, 404: NOT_FOUND}


class SharingViewSetMixin:
    """Adds permissions/share/unshare to a viewset whose get_object() finds only visible objects."""

    @extend_schema(
        summary="Who it is shared with, and at which level",
        request=None,
        responses={200: Sharing, **SHARING_ERRORS},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="permissions",
        url_name="permissions",
        permission_classes=[IsAuthenticated, CanShare],
        serializer_class=ShareRequestSerializer,
    )
    def sharing_list(self, request, pk=None) -> Response:
        return Response(sharing.permissions_of(self.get_object()).as_dict())

    @extend_schema(
        summary="Share with a user or a group at a level (and every lower one)",
        request=ShareRequestSerializer,
        responses={200: Sharing, 400: FIELD_ERRORS, **SHARING_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="share",
        url_name="share",
        permission_classes=[IsAuthenticated, CanShare],
        serializer_class=ShareRequestSerializer,
    )
    def share_with(self, request, pk=None) -> Response:
        return self._change_sharing(request, sharing.share)

    @extend_schema(
        summary="Take a level (and every higher one) away from a user or a group",
        description="Unsharing `view` removes every level. The owner cannot be unshared.",
        request=UnshareRequestSerializer,
        responses={200: Sharing, 400: FIELD_ERRORS, **SHARING_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="unshare",
        url_name="unshare",
        permission_classes=[IsAuthenticated, CanShare],
        serializer_class=UnshareRequestSerializer,
    )
    def unshare_from(self, request, pk=None) -> Response:
        return self._change_sharing(request, sharing.unshare, UnshareRequestSerializer)

    def _change_sharing(self, request, change, serializer=ShareRequestSerializer) -> Response:
        obj = self.get_object()
        body = serializer(data=request.data)
        body.is_valid(raise_exception=True)
        who = body.validated_data
        try:
            change(obj, who["principal"], who["permission"])
        except sharing.SharingError as exc:
            raise ValidationError({"user": [str(exc)]})
        return Response(sharing.permissions_of(obj).as_dict())
