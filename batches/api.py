"""/api/batches: CRUD, transitions, jobs, document upload and bulk operations.

Thin by design: each endpoint validates its input, calls a JobBatch method
(which locks the row and enforces the state machine) and serialises the
result. Refusals surface as InvalidTransition, which the API's exception
handler turns into a 409.
"""

from contextlib import contextmanager

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from batches.actions import ACTIONS, BatchAction
from batches.bulk import EDIT_NEEDS, OPERATIONS, run_bulk
from batches.filters import BatchFilter, unless_archived_asked
from batches.models import JobBatch
from batches.review_queue import FILTERS, ORDERINGS, QueueQuery, QueueRefused, queue
from batches.serializers import (
    MAX_IDS,
    AddJobsSerializer,
    JobBatchSerializer,
    QueuedJobSerializer,
    TagsField,
    attachable_documents,
)
from batches.uploads import add_upload
from core.api_errors import ACTION_ERRORS, LIST_ERRORS, READ_ERRORS, WRITE_ERRORS
from core.api_permissions import ObjectPermission, requires
from core.api_sharing import SharingViewSetMixin
from core.api_support import StrictSerializerMixin
from grading.filters import JobFilter, filtered
from grading.models import GradingJob
from grading.serializers import DocumentSummarySerializer, GradingJobSerializer, with_job_relations


class BulkOperationSerializer(StrictSerializerMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(OPERATIONS))
    batch_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=MAX_IDS
    )
    priority = serializers.IntegerField(
        min_value=1, max_value=10, required=False, help_text="For set_priority."
    )
    tags = TagsField(required=False, help_text="For add_tags and remove_tags.")

    def validate(self, data: dict) -> dict:
        needs = EDIT_NEEDS.get(data["action"])
        if needs and needs not in data:
            raise ValidationError({needs: [f"Required for {data['action']}."]})
        data["batch_ids"] = list(dict.fromkeys(data["batch_ids"]))
        return data


BulkOutcome = inline_serializer(
    "BulkOutcome",
    {
        "id": serializers.IntegerField(),
        "ok": serializers.BooleanField(),
        "status": serializers.CharField(required=False, help_text="The batch's status afterwards."),
        "duplicate_id": serializers.IntegerField(required=False, help_text="The new batch, for duplicate."),
        "code": serializers.CharField(required=False, help_text="Why it failed, as a code."),
        "error": serializers.CharField(required=False, help_text="Why it failed, as a sentence."),
    },
)
BulkResult = inline_serializer(
    "BulkResult",
    {"action": serializers.CharField(), "results": BulkOutcome.__class__(many=True)},
)


class DocumentUploadSerializer(serializers.Serializer):
    """Describes the multipart body (schema and browsable form); batches.uploads reads the files."""

    files = serializers.ListField(child=serializers.FileField(), help_text="Documents, or ZIPs of them.")
    student_pattern = serializers.CharField(
        required=False,
        help_text="Read students from the file names by this pattern (canvas, moodle, or e.g. "
        "{student_id}_{last}_{first}.*); it becomes the batch's. Left out: the batch's own.",
    )
    skip_unsupported = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "true: leave out files of an unsupported type and empty documents (listed in `skipped`) "
            "instead of refusing the upload."
        ),
    )


SkippedFile = inline_serializer(
    "SkippedFile",
    {
        "file": serializers.CharField(help_text="The file, or “archive.zip: entry”."),
        "reason": serializers.CharField(help_text="“unsupported file type” or “no text to grade”."),
    },
)


AddedJobs = inline_serializer("AddedJobs", {"jobs": GradingJobSerializer(many=True)})
UploadResult = inline_serializer(
    "DocumentUploadResult",
    {
        "documents": DocumentSummarySerializer(many=True),
        "jobs": GradingJobSerializer(many=True),
        "started": serializers.BooleanField(help_text="True when the template's rules started the batch."),
        "skipped": SkippedFile.__class__(many=True, help_text="Files left out by skip_unsupported."),
        "batch": JobBatchSerializer(),
    },
)


@contextmanager
def _deleted_meanwhile_is_404(batch: JobBatch):
    """A batch another request deleted between our read and our row lock: a 404, as if never read."""
    try:
        yield
    except JobBatch.DoesNotExist:
        raise NotFound(f"Batch {batch.pk} was deleted meanwhile.") from None


def _action_route(batch_action: BatchAction):
    """POST /api/batches/{id}/<name>: one batch action of batches/actions.py.

    Answers the batch afterwards, or 201 with the new batch for an action that
    creates one; a refusal is the 409 of InvalidTransition. The route asks for
    the sharing level the action names.
    """
    creates = batch_action.creates

    def view(self, request, pk=None):
        batch = self.get_object()
        with _deleted_meanwhile_is_404(batch):
            outcome = batch_action.run(batch, request.user)
        if creates:
            return Response(self.represent(outcome.pk), status=status.HTTP_201_CREATED)
        body = self.represent(batch.pk)
        if batch_action.reports:
            body["report"] = getattr(outcome, "report", None) or {}
        return Response(body)

    view.__name__ = batch_action.name
    routed = action(
        detail=True,
        methods=["post"],
        url_path=batch_action.name,
        url_name=batch_action.name,
        permission_classes=[IsAuthenticated, requires(batch_action.level)],
    )(view)
    answer = _reported(batch_action.name) if batch_action.reports else JobBatchSerializer
    responses = {201 if creates else 200: answer, **ACTION_ERRORS}
    return extend_schema(summary=batch_action.summary, request=None, responses=responses)(routed)


def _reported(name: str) -> type[serializers.Serializer]:
    """The batch, with the `report` of what the action did (e.g. retry's re-queued and skipped jobs)."""
    return type(
        f"{name.title()}Result",
        (JobBatchSerializer,),
        {
            "report": serializers.DictField(
                read_only=True,
                help_text=(
                    "What the action did: `requeued` (a count), `skipped_count`, `skipped` (the first "
                    "100 jobs left alone, each {id, name, document, reason}) and, when any were "
                    "skipped, `message`, a sentence."
                ),
            ),
            "Meta": type(
                "Meta", (JobBatchSerializer.Meta,), {"fields": [*JobBatchSerializer.Meta.fields, "report"]}
            ),
        },
    )


# One route per batch action, generated from the table; JobBatchViewSet inherits them.
BatchActionRoutes = type("BatchActionRoutes", (), {a.name: _action_route(a) for a in ACTIONS})


@extend_schema_view(
    list=extend_schema(summary="Batches you may view", responses={200: JobBatchSerializer, **LIST_ERRORS}),
    retrieve=extend_schema(
        summary="One batch with its progress", responses={200: JobBatchSerializer, **READ_ERRORS}
    ),
    create=extend_schema(
        summary="Create a draft batch from a template (id or slug)",
        responses={201: JobBatchSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace a batch's editable fields",
        description="Settings and template only while draft or paused; other fields until archived.",
        responses={200: JobBatchSerializer, **ACTION_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some of a batch's fields",
        description="Settings and template only while draft or paused; other fields until archived.",
        responses={200: JobBatchSerializer, **ACTION_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a batch (refused while jobs are queued or in flight)",
        responses={204: None, **ACTION_ERRORS},
    ),
)
class JobBatchViewSet(SharingViewSetMixin, BatchActionRoutes, viewsets.ModelViewSet):
    serializer_class = JobBatchSerializer
    permission_classes = [IsAuthenticated, ObjectPermission]
    filterset_class = BatchFilter
    queryset = JobBatch.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        return (
            JobBatch.objects.visible_to(self.request.user)
            .with_progress()
            .select_related("template", "owner")
            .order_by("-created_at", "-id")
        )

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        # The list leaves archived batches out unless its status filter asks for them.
        statuses = [part for item in self.request.query_params.getlist("status") for part in item.split(",")]
        return unless_archived_asked(queryset, [part.strip() for part in statuses if part.strip()])

    def represent(self, pk: int) -> dict:
        return JobBatchSerializer(self.get_queryset().get(pk=pk), context=self.get_serializer_context()).data

    def create(self, request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        batch = serializer.save()
        return Response(self.represent(batch.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs) -> Response:
        batch = self.get_object()
        serializer = self.get_serializer(batch, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(self.represent(batch.pk))

    def perform_destroy(self, batch: JobBatch) -> None:
        with _deleted_meanwhile_is_404(batch):
            batch.delete_batch()

    # The batch actions' routes (start, pause, …) come from BatchActionRoutes.

    # --- jobs ---------------------------------------------------------------

    @extend_schema(
        methods=["get"],
        summary="The batch's jobs, with their results, filtered and sorted as the review queue",
        description=(
            "`show` (repeat or comma-separate; all must hold): `not_reviewed` (graded, no review yet), "
            "`failed`, `low_confidence` (each job's `confidence.reasons` say why). `ordering`: `score` or "
            "`-score` (the final score in % of the maximum), `status` (failed first), `spread` or `-spread` "
            "(how far the models that graded the document differ); jobs without the value last, upload "
            "order otherwise. An unknown value is a 400 naming it."
        ),
        parameters=[
            OpenApiParameter("show", str, many=True, enum=list(FILTERS)),
            OpenApiParameter("ordering", str, enum=[key for key in ORDERINGS if key]),
        ],
        # 400: a query parameter holding a NUL (core.request_guards).
        responses={200: QueuedJobSerializer(many=True), **LIST_ERRORS},
    )
    @extend_schema(
        methods=["post"],
        summary="Add jobs for documents already uploaded (one per document, or per model)",
        description=(
            "Needs change on this batch and, for each document, change on a batch that holds it, or "
            "being its uploader while it is in no batch yet. A document you may not view is a 404, one "
            "you may view but not change a 403, each naming the documents; either way nothing is added."
        ),
        request=AddJobsSerializer,
        responses={201: AddedJobs, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None, serializer_class=AddJobsSerializer)
    def jobs(self, request, pk=None) -> Response:
        batch = self.get_object()
        if request.method == "POST":
            adding = AddJobsSerializer(data=request.data, context=self.get_serializer_context())
            adding.is_valid(raise_exception=True)
            documents = attachable_documents(request.user, adding.validated_data["documents"])
            jobs = batch.add_documents(documents, owner=request.user)
            created = with_job_relations(GradingJob.objects.filter(pk__in=[job.pk for job in jobs]))
            return Response(
                {"jobs": GradingJobSerializer(created, many=True).data}, status=status.HTTP_201_CREATED
            )
        try:
            query = QueueQuery.from_params(request.query_params)
        except QueueRefused as exc:
            raise ValidationError({exc.param: [str(exc)]})
        jobs = filtered(JobFilter, request, GradingJob.objects.in_batch(batch))
        # The review queue decides order and membership; the page's jobs are then read in full.
        page = self.paginate_queryset(queue(batch, query, among=set(jobs.values_list("pk", flat=True))))
        found = {
            job.pk: job
            for job in with_job_relations(GradingJob.objects.filter(pk__in=[e.job_id for e in page]))
        }
        for entry in page:
            found[entry.job_id].review = entry
        return self.get_paginated_response(
            QueuedJobSerializer([found[e.job_id] for e in page], many=True).data
        )

    @extend_schema(
        summary="Take a job out of the batch (kept as a stand-alone job of the batch's owner)",
        parameters=[OpenApiParameter("job_id", int, OpenApiParameter.PATH)],
        request=None,
        responses={204: None, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["delete"], url_path=r"jobs/(?P<job_id>[0-9]+)", url_name="remove-job")
    def remove_job(self, request, pk=None, job_id=None) -> Response:
        batch = self.get_object()
        job = get_object_or_404(GradingJob.objects.in_batch(batch), pk=_bounded_id(job_id))
        batch.remove_job(job)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- upload -------------------------------------------------------------

    @extend_schema(
        summary="Upload documents (many files, or one ZIP): one document and one job per file",
        description=(
            "Multipart field `files`, repeated. Bounded by MAX_DOCUMENT_MB per file, MAX_FILES_PER_UPLOAD "
            "documents, MAX_UPLOAD_MB in all, MAX_ZIP_RATIO for ZIP entries and the parts of .docx files, "
            "and MAX_DOCUMENT_CHARS of text per document; a refused upload stores nothing (400 naming each "
            "file). Starts the batch when its processing rules say auto_start."
        ),
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: UploadResult, **ACTION_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[MultiPartParser],
        serializer_class=DocumentUploadSerializer,
    )
    def documents(self, request, pk=None) -> Response:
        batch = self.get_object()
        added = add_upload(
            batch,
            request.user,
            lambda: request.FILES.getlist("files"),
            request.META.get("CONTENT_LENGTH"),
            student_pattern=lambda: request.POST.get("student_pattern"),
            # Read with the files, after the cheap refusals: reading it parses the body.
            skip_unsupported=lambda: _skip_unsupported(request),
        )
        created = with_job_relations(GradingJob.objects.filter(pk__in=[job.pk for job in added.jobs]))
        body = {
            "documents": DocumentSummarySerializer(added.documents, many=True).data,
            "jobs": GradingJobSerializer(created, many=True).data,
            "started": added.started,
            "skipped": [{"file": item.file, "reason": item.reason} for item in added.skipped],
            "batch": self.represent(batch.pk),
        }
        return Response(body, status=status.HTTP_201_CREATED)

    # --- bulk ---------------------------------------------------------------

    @extend_schema(
        summary="One action over many batches (at most 500), with one outcome per batch",
        request=BulkOperationSerializer,
        responses={200: BulkResult, 400: LIST_ERRORS[400], 401: LIST_ERRORS[401]},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="bulk-operations",
        url_name="bulk-operations",
        serializer_class=BulkOperationSerializer,
    )
    def bulk_operations(self, request) -> Response:
        operation = BulkOperationSerializer(data=request.data)
        operation.is_valid(raise_exception=True)
        params = dict(operation.validated_data)
        action_name, ids = params.pop("action"), params.pop("batch_ids")
        results = run_bulk(request.user, action_name, ids, **params)
        return Response({"action": action_name, "results": results})


def _skip_unsupported(request) -> bool:
    """The upload's skip_unsupported field; a value that is no boolean is a 400 on it."""
    field = DocumentUploadSerializer().fields["skip_unsupported"]
    value = request.data.get("skip_unsupported")
    if value in (None, ""):
        return False
    try:
        return field.to_internal_value(value)
    except ValidationError as exc:
        raise ValidationError({"skip_unsupported": exc.detail}) from None


def _bounded_id(value: str) -> int:
    number = int(value)
    if not 0 < number < 2**63:
        raise NotFound()
    return number
