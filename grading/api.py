"""/api/jobs: read-only job endpoints, each job with its document summary and result;
/api/providers: the connections a batch may grade with, and whether each is ready.

A job is visible when its batch is visible to the user, whoever uploaded it;
a stand-alone job (in no batch) is visible to its owner alone. The connections are the
deployment's, the same for every signed-in user, and never show a key.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_errors import FIELD_ERRORS, LIST_ERRORS, READ_ERRORS
from core.api_permissions import ObjectPermission
from grading.filters import JobFilter
from grading.models import GradingJob
from grading.providers.readiness import connections_readiness
from grading.serializers import GradingJobSerializer, with_job_relations


def visible_jobs(user):
    return GradingJob.objects.visible_to(user)


@extend_schema_view(
    list=extend_schema(summary="Jobs you may view", responses={200: GradingJobSerializer, **LIST_ERRORS}),
    retrieve=extend_schema(
        summary="One job with its result", responses={200: GradingJobSerializer, **READ_ERRORS}
    ),
)
class GradingJobViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = GradingJobSerializer
    permission_classes = [IsAuthenticated, ObjectPermission]
    filterset_class = JobFilter
    queryset = GradingJob.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        if not self.request.user.is_authenticated:
            return GradingJob.objects.none()
        return with_job_relations(visible_jobs(self.request.user)).order_by("-created_at", "-id")


class ConnectionLimitsSerializer(serializers.Serializer):
    max_concurrency = serializers.IntegerField(
        allow_null=True, help_text="Calls in flight at most; null: no cap."
    )
    requests_per_minute = serializers.IntegerField(allow_null=True, help_text="Null: no request-rate limit.")
    tokens_per_minute = serializers.IntegerField(help_text="0: no token-rate limit.")


class ConnectionSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="What a batch names as its provider, or writes as name:model.")
    kind = serializers.CharField(help_text="openai, anthropic, builtin, or plug-in.")
    base_url = serializers.CharField(help_text="The endpoint, without any credentials in it.")
    key_env = serializers.CharField(
        help_text="The environment variable the key is read from (never the key)."
    )
    limits = ConnectionLimitsSerializer()
    ready = serializers.BooleanField()
    problem = serializers.CharField(allow_null=True, help_text="Why it is not ready, in a sentence.")
    reachable = serializers.BooleanField(
        allow_null=True, help_text="From a check at most a minute old; null when not checked."
    )


def connection_row(item) -> dict:
    return {
        "name": item.name,
        "kind": item.kind,
        "base_url": item.base_url,
        "key_env": item.key_env,
        "limits": {
            "max_concurrency": item.max_concurrency,
            "requests_per_minute": item.requests_per_minute,
            "tokens_per_minute": item.tokens_per_minute,
        },
        "ready": item.ready,
        "problem": item.problem,
        "reachable": item.reachable,
    }


CHECK_VALUES = {"1": True, "true": True, "0": False, "false": False, "": False}


class ProvidersView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The provider connections a batch may grade with, and whether each is ready",
        description=(
            "A connection is ready when its key is set (or its endpoint is on loopback); with check=1 "
            "its endpoint is also tried (a TCP connection, two seconds at most, kept for a minute). "
            "Starting a batch on a connection that is not ready for want of a key is refused (409)."
        ),
        parameters=[OpenApiParameter("check", bool, description="Also try each endpoint (kept a minute).")],
        responses={200: ConnectionSerializer(many=True), 400: FIELD_ERRORS, 401: READ_ERRORS[401]},
    )
    def get(self, request):
        raw = request.query_params.get("check", "").strip().lower()
        if raw not in CHECK_VALUES:
            raise ValidationError({"check": ["Write check=1 to try each endpoint, or leave it out."]})
        return Response([connection_row(item) for item in connections_readiness(CHECK_VALUES[raw])])
