from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.serializers import IntegerField
from rest_framework.views import APIView

from batches.models import JobBatch
from core.api_errors import LIST_ERRORS, READ_ERRORS, WRITE_ERRORS
from notifications.models import (
    BatchWebhook,
    DeliveryAttempt,
    Notification,
    NotificationPreference,
    batch_id_from,
)
from notifications.serializers import (
    NotificationGroupSerializer,
    NotificationSerializer,
    PreferenceGridSerializer,
    PreferencesSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)

BATCH_PARAMETER = OpenApiParameter(
    "batch", OpenApiTypes.INT, description="Only the notices of this batch (all of them, one by one)."
)
GROUP_PARAMETER = OpenApiParameter(
    "group",
    OpenApiTypes.STR,
    enum=["batch"],
    description="`batch`: one entry per batch, its newest notice, with `earlier` and `unread_in_group`.",
)
READ_GROUP_PARAMETER = OpenApiParameter(
    "group",
    OpenApiTypes.STR,
    enum=["batch"],
    description="`batch`: mark this notice and the earlier ones of its batch read (the group it heads).",
)


# The error responses each operation can give, so the schema (and the fuzz run
# that holds responses to it) knows them: see core.api_errors.
@extend_schema_view(
    list=extend_schema(
        parameters=[GROUP_PARAMETER, BATCH_PARAMETER],
        responses={200: NotificationSerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(responses={200: NotificationSerializer, **READ_ERRORS}),
    # A bad `group` or `batch` is a 400 here too, as on the list.
    read=extend_schema(
        request=None,
        parameters=[READ_GROUP_PARAMETER],
        responses={200: NotificationSerializer, **LIST_ERRORS},
    ),
    read_all=extend_schema(
        request=None,
        parameters=[BATCH_PARAMETER],
        responses={200: inline_serializer("MarkedRead", {"marked_read": IntegerField()}), **LIST_ERRORS},
    ),
)
class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    """The signed-in user's in-app notifications, newest first.

    ?unread=true for the unread ones; ?group=batch for one entry per batch (its
    newest notice, with the number of earlier ones); ?batch=<id> for one batch's.
    """

    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        notifications = Notification.objects.in_app_for(self.request.user)
        if self.request.query_params.get("unread", "").lower() in ("1", "true", "yes"):
            notifications = notifications.unread()
        if self.action in ("list", "read_all") and (batch_id := self._batch_param()) is not None:
            notifications = notifications.of_batch(batch_id)
        if self.action == "list" and self._grouped():
            notifications = notifications.latest_per_batch()
        return notifications

    def get_serializer_class(self):
        if self.action == "list" and self._grouped():
            return NotificationGroupSerializer
        return super().get_serializer_class()

    def _grouped(self) -> bool:
        group = self.request.query_params.get("group")
        if group in (None, ""):
            return False
        if group != "batch":
            raise ValidationError({"group": ["Group by `batch`, or leave `group` out for every notice."]})
        return True

    def _batch_param(self) -> int | None:
        try:
            return batch_id_from(self.request.query_params.get("batch"))
        except ValueError as error:
            raise ValidationError({"batch": [str(error)]}) from None

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        response["X-Unread-Count"] = str(Notification.objects.in_app_for(request.user).unread().count())
        return response

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        if self._grouped():
            notification.mark_group_read()
        else:
            notification.mark_read()
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=inline_serializer("MarkedRead", {"marked_read": IntegerField()}))
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"marked_read": self.get_queryset().mark_read()})


@extend_schema_view(
    get=extend_schema(responses={200: PreferenceGridSerializer, **READ_ERRORS}),
    put=extend_schema(
        request=PreferenceGridSerializer, responses={200: PreferenceGridSerializer, **WRITE_ERRORS}
    ),
    patch=extend_schema(
        request=PreferenceGridSerializer, responses={200: PreferenceGridSerializer, **WRITE_ERRORS}
    ),
)
class PreferencesView(APIView):
    """GET the user's channel x event grid; PUT or PATCH part or all of it."""

    def get(self, request):
        return Response(self._grid(request.user))

    def put(self, request):
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        NotificationPreference.objects.set_grid(request.user, serializer.validated_data)
        return Response(self._grid(request.user))

    patch = put

    @staticmethod
    def _grid(user):
        return NotificationPreference.objects.grid_for([user])[user.pk]


@extend_schema_view(
    list=extend_schema(responses={200: WebhookSerializer(many=True), **LIST_ERRORS}),
    create=extend_schema(responses={201: WebhookSerializer, **WRITE_ERRORS}),
    retrieve=extend_schema(responses={200: WebhookSerializer, **READ_ERRORS}),
    update=extend_schema(responses={200: WebhookSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: WebhookSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS}),
    deliveries=extend_schema(responses={200: WebhookDeliverySerializer(many=True), **LIST_ERRORS}),
    rotate_secret=extend_schema(request=None, responses={200: WebhookSerializer, **WRITE_ERRORS}),
)
class BatchWebhookViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A batch's webhooks, managed by its owner; others who may see the batch are refused."""

    serializer_class = WebhookSerializer
    queryset = BatchWebhook.objects.none()  # for the schema; requests use get_queryset

    def batch(self) -> JobBatch:
        if not hasattr(self, "_batch"):
            self._batch = get_object_or_404(
                JobBatch.objects.visible_to(self.request.user), pk=self.kwargs["batch_id"]
            )
            if not (self._batch.owner_id == self.request.user.pk or self.request.user.is_superuser):
                raise PermissionDenied("Only the batch's owner can manage its webhooks.")
        return self._batch

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return BatchWebhook.objects.filter(batch=self.batch())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "batch_id" in self.kwargs and not getattr(self, "swagger_fake_view", False):
            context["batch"] = self.batch()
        return context

    def perform_create(self, serializer):
        serializer.save(batch=self.batch(), created_by=self.request.user)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, batch_id=None, pk=None):
        """The webhook's deliveries, newest first, each with its attempts."""
        webhook = self.get_object()
        deliveries = webhook.notifications.prefetch_related(
            Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number"))
        )
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, batch_id=None, pk=None):
        from notifications.models import new_secret

        webhook = self.get_object()
        webhook.secret = new_secret()
        webhook.save(update_fields=["secret"])
        return Response(self.get_serializer(webhook).data, status=status.HTTP_200_OK)
