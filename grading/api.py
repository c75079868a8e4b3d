"""/api/jobs: read-only job endpoints, each job with its document summary and result.

A job is visible when its batch is visible to the user, whoever uploaded it;
a stand-alone job (in no batch) is visible to its owner alone.
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from core.api_errors import LIST_ERRORS, READ_ERRORS
from core.api_permissions import ObjectPermission
from grading.filters import JobFilter
from grading.models import GradingJob
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
