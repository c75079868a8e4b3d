"""What graders do with results, over the API: analytics, estimates, export and review.

GET  /api/batches/{id}/analytics   figures computed in the database
GET  /api/batches/{id}/estimate    provider calls, tokens and cost of the remaining jobs
GET  /api/batches/{id}/export      the results ZIP, streamed (?format=csv: the gradebook alone)
POST /api/jobs/{id}/review         a reviewer's grade beside the AI's (DELETE withdraws it)

The rules are the rest of the API's: what the user may not view is a 404;
anyone who may view a batch may read its analytics, estimate and export;
reviewing changes a result, so it needs change permission (403 otherwise).
"""

from types import SimpleNamespace

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.analytics import batch_analytics
from batches.export import export_filename, stream_gradebook_csv, stream_zip
from batches.models import JobBatch
from core.api_errors import READ_ERRORS, WRITE_ERRORS, Conflict
from core.api_permissions import CHANGE_DENIED, can_change
from core.api_support import StrictSerializerMixin
from grading.api import visible_jobs
from grading.estimate import estimate_batch
from grading.models import GradingResult, ReviewError
from grading.serializers import GradingJobSerializer, with_job_relations

EXPORT_FORMATS = {"zip": "application/zip", "csv": "text/csv; charset=utf-8"}


def visible_batch(request, pk: int) -> JobBatch:
    batches = JobBatch.objects.visible_to(request.user).select_related("template", "owner")
    return get_object_or_404(batches, pk=pk)


# --- the shapes of the answers, for the OpenAPI schema --------------------------


class _Doc(serializers.Serializer):
    """Documentation only: these serializers describe responses and never validate input."""


class FailureKind(_Doc):
    kind = serializers.CharField(help_text="The error message up to its first “: ”.")
    count = serializers.IntegerField()


class JobFigures(_Doc):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    percent_done = serializers.FloatField()
    success_rate = serializers.FloatField(allow_null=True, help_text="completed / (completed + failed)")
    failure_reasons = FailureKind(many=True)


class ProcessingFigures(_Doc):
    timed_jobs = serializers.IntegerField(help_text="Jobs that ran (completed or failed) with a duration.")
    mean_ms = serializers.FloatField(allow_null=True)
    median_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True, help_text="Interpolated between the closest ranks.")
    wall_time_s = serializers.FloatField(allow_null=True, help_text="Batch start to end, or to now.")
    jobs_per_minute = serializers.FloatField(allow_null=True)


class Timeline(_Doc):
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    projected_completion_at = serializers.DateTimeField(
        allow_null=True, help_text="At the rate jobs have ended so far."
    )
    deadline_standing = serializers.ChoiceField(
        choices=["on_track", "at_risk", "late"], allow_null=True, help_text="None without a deadline."
    )
    seconds_to_deadline = serializers.FloatField(allow_null=True)


class ModelFigures(_Doc):
    provider = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    jobs = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="The model's jobs in every status: pending, queued, processing, completed, failed, cancelled.",
    )
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    mean_score_percent = serializers.FloatField(allow_null=True, help_text="The AI's scores.")
    mean_latency_ms = serializers.FloatField(allow_null=True, help_text="Mean provider call, of graded jobs.")
    mean_duration_ms = serializers.FloatField(
        allow_null=True,
        help_text="Mean time per job that ran (completed or failed), from its last claim to its end.",
    )
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = serializers.FloatField(help_text="US dollars.")
    reviewed = serializers.IntegerField()


class Bucket(_Doc):
    bucket = serializers.CharField(help_text="A ten-point range of the percentage, e.g. [70, 80).")
    count = serializers.IntegerField()


class ScoreFigures(_Doc):
    basis = serializers.CharField()
    graded = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    mean_percent = serializers.FloatField(allow_null=True)
    std_dev_percent = serializers.FloatField(allow_null=True)
    min_percent = serializers.FloatField(allow_null=True)
    max_percent = serializers.FloatField(allow_null=True)
    ai_mean_percent = serializers.FloatField(allow_null=True)
    histogram = Bucket(many=True)


class CriterionFigures(_Doc):
    key = serializers.CharField()
    name = serializers.CharField()
    max_score = serializers.FloatField()
    graded = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    std_dev = serializers.FloatField(allow_null=True)
    mean_percent = serializers.FloatField(allow_null=True)
    ai_mean = serializers.FloatField(allow_null=True)


class AgreementFigures(_Doc):
    pairs = serializers.IntegerField()
    quadratic_weighted_kappa = serializers.FloatField(
        allow_null=True, help_text="On ten-point percentage buckets; null when undefined."
    )
    exact = serializers.FloatField(allow_null=True, help_text="Share of pairs in the same bucket.")
    adjacent = serializers.FloatField(allow_null=True, help_text="Share within one bucket.")
    mean_abs_difference = serializers.FloatField(allow_null=True, help_text="Percentage points.")


class ModelPair(AgreementFigures):
    models = serializers.ListField(child=serializers.CharField())
    documents = serializers.IntegerField()
    mean_percent = serializers.ListField(child=serializers.FloatField())


class CriterionAgreement(AgreementFigures):
    key = serializers.CharField()


class HumanAgreement(_Doc):
    basis = serializers.CharField()
    overall = AgreementFigures()
    criteria = CriterionAgreement(many=True)


class Analytics(_Doc):
    batch = serializers.IntegerField()
    generated_at = serializers.DateTimeField()
    jobs = JobFigures()
    processing = ProcessingFigures()
    timeline = Timeline()
    by_model = ModelFigures(many=True)
    scores = ScoreFigures()
    criteria = CriterionFigures(many=True)
    model_comparison = ModelPair(many=True)
    ai_human_agreement = HumanAgreement()
    calibrated = serializers.BooleanField(
        help_text="The AI's scores in these figures are calibrated to the teacher's scale (POST …/calibrate)."
    )


class ModelEstimate(_Doc):
    provider = serializers.CharField()
    model = serializers.CharField()
    jobs = serializers.IntegerField()
    provider_calls = serializers.IntegerField(help_text="One per job when nothing needs a retry.")
    max_provider_calls = serializers.IntegerField(help_text="If every job used all its attempts.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = serializers.FloatField(help_text="US dollars.")
    price_per_million_tokens = serializers.DictField(child=serializers.FloatField())
    priced = serializers.BooleanField(help_text="False when the model has no price (cost shows 0).")
    input_method = serializers.CharField(help_text="How input tokens were counted.")
    output_method = serializers.CharField(help_text="How output tokens were estimated.")
    price_method = serializers.CharField(help_text="Where the price comes from, or why there is none.")


class Estimate(_Doc):
    scope = serializers.CharField()
    jobs = serializers.IntegerField()
    provider_calls = serializers.IntegerField()
    max_provider_calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = serializers.FloatField()
    currency = serializers.CharField()
    by_model = ModelEstimate(many=True)
    spent_so_far = serializers.DictField()


# --- input -------------------------------------------------------------------------


class ReviewCriterionSerializer(StrictSerializerMixin, serializers.Serializer):
    key = serializers.CharField(max_length=60)
    score = serializers.FloatField(min_value=0)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ReviewSerializer(StrictSerializerMixin, serializers.Serializer):
    score = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="The reviewer's total; may be left out when every criterion is scored (their sum).",
    )
    criteria = ReviewCriterionSerializer(
        many=True, required=False, help_text="Scores for some or all of the rubric's criteria."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    exemplar = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Use this review as an exemplar: the grader learns the teacher's scale from it.",
    )


# --- views -------------------------------------------------------------------------


class BatchAnalyticsView(APIView):
    @extend_schema(
        summary="How the batch went: counts, timing, scores, criteria, model and AI–human agreement",
        description=(
            "Computed in the database with a fixed number of queries. Score distribution and criteria "
            "use the reviewer's score where a job was reviewed; per-model figures and model comparison "
            "use the AI's. Agreement figures bin percentages into ten-point buckets."
        ),
        responses={200: Analytics, **READ_ERRORS},
    )
    def get(self, request, pk: int) -> Response:
        return Response(batch_analytics(visible_batch(request, pk)))


class BatchEstimateView(APIView):
    @extend_schema(
        summary="Provider calls, tokens and cost of the jobs not yet finished",
        description=(
            "Before the start, every job. Input tokens are counted with an offline tokenizer where "
            "one fits the model, otherwise as characters / 4; each model's figures say which."
        ),
        responses={200: Estimate, **READ_ERRORS},
    )
    def get(self, request, pk: int) -> Response:
        return Response(estimate_batch(visible_batch(request, pk)))


class _FormatIsTheFileType(DefaultContentNegotiation):
    """?format= chooses the export's file type here, not a DRF renderer, so errors stay JSON."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class BatchExportView(APIView):
    content_negotiation_class = _FormatIsTheFileType

    @extend_schema(
        summary="Download the results: a ZIP streamed as it is written, or the gradebook CSV alone",
        description=(
            "The ZIP holds README.txt, batch.json (metadata, settings, template, analytics), "
            "gradebook.csv (one row per document, formula-like cells neutralised) and "
            "jobs/<job name>-<id>/summary.json and result.json. The file is named "
            "<batch-slug>-<UTC timestamp>.zip (or .csv)."
        ),
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(EXPORT_FORMATS), default="zip", description="zip or csv"
            )
        ],
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The gradebook."),
            400: WRITE_ERRORS[400],
            **READ_ERRORS,
        },
    )
    def get(self, request, pk: int) -> StreamingHttpResponse:
        kind = request.query_params.get("format", "zip")
        if kind not in EXPORT_FORMATS:
            raise ValidationError({"format": [f"Choose one of: {', '.join(EXPORT_FORMATS)}."]})
        batch = visible_batch(request, pk)
        stream = stream_zip(batch) if kind == "zip" else stream_gradebook_csv(batch)
        response = StreamingHttpResponse(stream, content_type=EXPORT_FORMATS[kind])
        response["Content-Disposition"] = f'attachment; filename="{export_filename(batch, kind)}"'
        # Proxies must pass the chunks on as they come, not buffer the whole archive.
        response["X-Accel-Buffering"] = "no"
        return response


class JobReviewView(APIView):
    def reviewable_result(self, request, pk: int) -> GradingResult:
        job = get_object_or_404(visible_jobs(request.user).select_related("batch"), pk=pk)
        # Reviewing changes the batch's gradebook: it needs change on the batch, whoever
        # uploaded the job. A job in no batch is its owner's alone.
        if not can_change(request.user, job.batch if job.batch_id else job):
            raise PermissionDenied(CHANGE_DENIED)
        try:
            return GradingResult.objects.select_related("job").get(job=job)
        except GradingResult.DoesNotExist:
            raise Conflict(f"The job is {job.status} and has no result to review yet.")

    def represent(self, pk: int) -> dict:
        return GradingJobSerializer(with_job_relations(visible_jobs(self.request.user)).get(pk=pk)).data

    @extend_schema(
        summary="Record a reviewer's grade beside the AI's, which is kept",
        description=(
            "Per-criterion scores are checked against the job's rubric. Exports and analytics then "
            "use the reviewed score as final. Reviewing again replaces the earlier review."
        ),
        request=ReviewSerializer,
        responses={
            200: GradingJobSerializer,
            409: OpenApiResponse(description="No result yet."),
            **WRITE_ERRORS,
        },
    )
    def post(self, request, pk: int) -> Response:
        result = self.reviewable_result(request, pk)
        review = ReviewSerializer(data=request.data)
        review.is_valid(raise_exception=True)
        data = review.validated_data
        try:
            result.record_review(
                request.user,
                data.get("score"),
                data.get("criteria"),
                data.get("comment", ""),
                exemplar=data.get("exemplar", False),
            )
        except ReviewError as error:
            raise ValidationError({error.field: [str(error)]})
        return Response(self.represent(pk))

    @extend_schema(
        summary="Withdraw the review: the AI's score is final again",
        request=None,
        responses={
            200: GradingJobSerializer,
            409: OpenApiResponse(description="No result yet."),
            **WRITE_ERRORS,
        },
    )
    def delete(self, request, pk: int) -> Response:
        self.reviewable_result(request, pk).clear_review()
        return Response(self.represent(pk))
