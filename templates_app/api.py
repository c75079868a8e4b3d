"""/api/batch-templates: CRUD over the templates the user may view.

Public templates are visible to every signed-in user; changing one needs its
owner or a share at `change` (the pre-built ones have no owner, so only
superusers change them); deleting one, its owner. Sharing endpoints:
core.api_sharing.
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from core.api_errors import CONFLICT, LIST_ERRORS, READ_ERRORS, WRITE_ERRORS, Conflict
from core.api_permissions import ObjectPermission
from core.api_sharing import SharingViewSetMixin
from templates_app.filters import BatchTemplateFilter
from templates_app.models import BatchTemplate
from templates_app.serializers import BatchTemplateSerializer


@extend_schema_view(
    list=extend_schema(
        summary="Templates you may use", responses={200: BatchTemplateSerializer, **LIST_ERRORS}
    ),
    retrieve=extend_schema(summary="One template", responses={200: BatchTemplateSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Create a template", responses={201: BatchTemplateSerializer, **WRITE_ERRORS}
    ),
    update=extend_schema(
        summary="Replace a template", responses={200: BatchTemplateSerializer, **WRITE_ERRORS}
    ),
    partial_update=extend_schema(
        summary="Change some of a template's fields", responses={200: BatchTemplateSerializer, **WRITE_ERRORS}
    ),
    destroy=extend_schema(
        summary="Delete a template (refused while batches that are not archived use it)",
        responses={204: None, 409: CONFLICT, **WRITE_ERRORS},
    ),
)
class BatchTemplateViewSet(SharingViewSetMixin, viewsets.ModelViewSet):
    serializer_class = BatchTemplateSerializer
    permission_classes = [IsAuthenticated, ObjectPermission]
    queryset = BatchTemplate.objects.none()  # for the schema; requests use get_queryset()
    filterset_class = BatchTemplateFilter

    def get_queryset(self):
        return (
            BatchTemplate.objects.visible_to(self.request.user).select_related("owner").order_by("name", "id")
        )

    def perform_destroy(self, template: BatchTemplate) -> None:
        refusal = template.deletion_refusal()
        if refusal:
            raise Conflict(refusal, code="template_in_use")
        template.delete()
