"""What graders do with results, over the API: analytics, estimates, export and review.

GET  /api/batches/{id}/analytics   figures computed in the database
GET  /api/batches/{id}/estimate    provider calls, tokens and cost of the remaining jobs
GET  /api/batches/{id}/export      the results ZIP, streamed (?format=csv: the gradebook alone;
                                   canvas, moodle, classroom: a gradebook that LMS imports)
GET/POST /api/batches/{id}/roster  the batch's students and unmatched documents / a roster CSV
GET  /api/jobs/{id}/feedback.pdf   the feedback sheet of the job's student
POST /api/jobs/{id}/review         a reviewer's grade beside the AI's (DELETE withdraws it)

The rules are the rest of the API's: what the user may not view is a 404;
anyone who may view a batch may read its analytics, estimate and export;
reviewing changes a result, so it needs change permission (403 otherwise).
"""

from types import SimpleNamespace

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.analytics import batch_analytics
from batches.exceptions import InvalidTransition
from batches.export import (
    LMS_FORMATS,
    SCORE_BASES,
    export_filename,
    feedback_filename,
    job_feedback_sheet,
    stream_gradebook_csv,
    stream_lms_csv,
    stream_zip,
)
from batches.feedback import render_pdf
from batches.models import BatchStatus, JobBatch
from batches.students import parse_roster, replace_roster, roster_summary
from core.api_errors import ACTION_ERRORS, READ_ERRORS, WRITE_ERRORS, Conflict
from core.api_permissions import CHANGE_DENIED, can_change
from core.api_support import StrictSerializerMixin
from grading.api import visible_jobs
from grading.estimate import estimate_batch
from grading.models import GradingResult, ReviewError
from grading.serializers import GradingJobSerializer, with_job_relations

EXPORT_FORMATS = {
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
    **{kind: "text/csv; charset=utf-8" for kind in LMS_FORMATS},
}


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
        allow_null=True,
        help_text=(
            "At the rate jobs have ended so far; for economy jobs, their provider batches' expected "
            "completion (now plus the provider's window for jobs not yet submitted)."
        ),
    )
    projected_from = serializers.ChoiceField(
        choices=["rate", "provider_batch"], help_text="What the projected completion is worked out from."
    )
    deadline_standing = serializers.ChoiceField(
        choices=["on_track", "at_risk", "late"], allow_null=True, help_text="None without a deadline."
    )
    seconds_to_deadline = serializers.FloatField(allow_null=True)


class ModelFigures(_Doc):
    provider = serializers.CharField(allow_null=True, help_text="The connection the jobs graded through.")
    kind = serializers.CharField(
        allow_null=True,
        help_text="The connection's kind (openai, anthropic, builtin, plug-in); null if unknown.",
    )
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
    too_few_pairs = serializers.BooleanField(
        help_text="Fewer than 10 pairs: the figures move a lot with each one; read them with care."
    )


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
    provider = serializers.CharField(help_text="The connection the jobs grade through.")
    kind = serializers.CharField(
        allow_null=True,
        help_text="The connection's kind (openai, anthropic, builtin, plug-in); null if unknown.",
    )
    model = serializers.CharField()
    jobs = serializers.IntegerField()
    provider_calls = serializers.IntegerField(help_text="One per job when nothing needs a retry.")
    max_provider_calls = serializers.IntegerField(help_text="If every job used all its attempts.")
    input_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField(
        help_text="Of the input tokens, those expected from the provider's prompt cache (see cache_method)."
    )
    output_tokens = serializers.IntegerField()
    cost = serializers.FloatField(help_text="US dollars, in real time.")
    economy_cost = serializers.FloatField(
        help_text="US dollars through the provider's batch API (the same when it has none)."
    )
    delivery = serializers.DictField(help_text="chosen (realtime or economy) and the reason.")
    price_per_million_tokens = serializers.DictField(child=serializers.FloatField())
    priced = serializers.BooleanField(help_text="False when the model has no price (cost shows 0).")
    input_method = serializers.CharField(help_text="How input tokens were counted.")
    output_method = serializers.CharField(help_text="How output tokens were estimated.")
    cache_method = serializers.CharField(help_text="Which input tokens are assumed cached, and why.")
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
    delivery = serializers.DictField(
        help_text="The delivery rule, what it chooses now (realtime, economy or mixed) and why, "
        "and the cost each way: realtime_cost, economy_cost; economy_available (false when no "
        "connection of the batch has a batch API, and economy_cost is then the real-time price) and "
        "no_batch_api, the connections without one."
    )
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


def _choice(request, name: str, choices, default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in choices:
        raise ValidationError({name: [f"Choose one of: {', '.join(choices)}."]})
    return value


# ?feedback= of the ZIP: whether it holds the students' feedback sheets.
FEEDBACK_CHOICES = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False}


class BatchExportView(APIView):
    content_negotiation_class = _FormatIsTheFileType

    @extend_schema(
        summary="Download the results: a ZIP streamed as it is written, a gradebook CSV, or an LMS gradebook",
        description=(
            "The ZIP holds README.txt, batch.json (metadata, settings, template, analytics), "
            "gradebook.csv (one row per document with its student, formula-like cells neutralised), "
            "jobs/<job name>-<id>/summary.json and result.json, and a feedback sheet per student "
            "(feedback/<student>.pdf). `csv` is gradebook.csv alone (UTF-8 with a BOM). `canvas`, "
            "`moodle` and `classroom` are gradebooks as those LMSs import them: one row per student, "
            "keyed by the student's id or e-mail. The file is named <batch-slug>-<UTC timestamp>.zip "
            "(or .csv, or .<format>.csv)."
        ),
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(EXPORT_FORMATS),
                default="zip",
                description="zip, csv, or the LMS gradebook: canvas, moodle, classroom",
            ),
            OpenApiParameter(
                "score",
                str,
                enum=list(SCORE_BASES),
                default="final",
                description=(
                    "final: the reviewer's score where there is one, else the AI's; reviewed: the "
                    "reviewer's alone; calibrated: the AI's calibrated score alone (blank where none)"
                ),
            ),
            OpenApiParameter(
                "feedback",
                str,
                enum=list(FEEDBACK_CHOICES),
                default="1",
                description=(
                    "zip: 0 leaves the students' feedback sheets (feedback/*.pdf) out, which makes "
                    "the export of a large class several times faster"
                ),
            ),
            OpenApiParameter(
                "assignment",
                str,
                description="The assignment's (grade item's) name in an LMS gradebook; the batch's name by default.",
            ),
            OpenApiParameter(
                "assignment_id",
                str,
                pattern=r"^[0-9]{1,18}$",
                description="Canvas: the assignment's id, so that Canvas fills that assignment's column.",
            ),
        ],
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The gradebook."),
            400: WRITE_ERRORS[400],
            **READ_ERRORS,
        },
    )
    def get(self, request, pk: int) -> StreamingHttpResponse:
        kind = _choice(request, "format", list(EXPORT_FORMATS), "zip")
        basis = _choice(request, "score", SCORE_BASES, "final")
        sheets = FEEDBACK_CHOICES[_choice(request, "feedback", list(FEEDBACK_CHOICES), "1")]
        assignment = request.query_params.get("assignment", "").replace("\x00", "")[:200]
        assignment_id = request.query_params.get("assignment_id", "")
        if assignment_id and not (
            assignment_id.isascii() and assignment_id.isdigit() and len(assignment_id) <= 18
        ):
            raise ValidationError({"assignment_id": ["Give the Canvas assignment's id: digits only."]})
        batch = visible_batch(request, pk)
        if kind == "zip":
            stream, name = stream_zip(batch, basis=basis, feedback=sheets), export_filename(batch, "zip")
        elif kind == "csv":
            stream, name = stream_gradebook_csv(batch, basis), export_filename(batch, "csv")
        else:
            stream = stream_lms_csv(batch, kind, basis, assignment, assignment_id)
            name = export_filename(batch, f"{kind}.csv")
        response = StreamingHttpResponse(stream, content_type=EXPORT_FORMATS[kind])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
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


# --- students ---------------------------------------------------------------------------


class RosterStudent(_Doc):
    id = serializers.IntegerField()
    student_id = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    section = serializers.CharField(allow_blank=True)
    on_roster = serializers.BooleanField(help_text="False for a student read from a file name.")
    documents = serializers.IntegerField(help_text="The batch's documents matched to this student.")


class UnmatchedDocument(_Doc):
    document_id = serializers.IntegerField()
    file_name = serializers.CharField()
    reason = serializers.CharField(help_text="Why no student was found for it.")


class Roster(_Doc):
    student_pattern = serializers.CharField(
        allow_blank=True, help_text="The pattern file names are read by: the batch's, else its template's."
    )
    has_roster = serializers.BooleanField()
    students = RosterStudent(many=True)
    unmatched_count = serializers.IntegerField(help_text="Documents with no student.")
    unmatched = UnmatchedDocument(many=True, help_text="The first 200 of them, by name.")


class RosterUpload(serializers.Serializer):
    file = serializers.FileField(
        help_text="A CSV with a header row: id, name, email (and optionally section); comma, semicolon "
        "or tab separated; UTF-8 (Windows-1252 is read too)."
    )


class RosterUploadResult(Roster):
    matched = serializers.IntegerField(help_text="Documents matched to a roster row.")


class BatchRosterView(APIView):
    """The batch's students: GET lists them and the unmatched documents; POST replaces them with a roster."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="The batch's students and the documents no student was found for",
        responses={200: Roster, **READ_ERRORS},
    )
    def get(self, request, pk: int) -> Response:
        return Response(roster_summary(visible_batch(request, pk)))

    @extend_schema(
        summary="Upload the class roster (CSV: id, name, email): it becomes the batch's students",
        description=(
            "Replaces the batch's students (those read from file names too) and matches every "
            "document again: by the id, e-mail or name its file name gives (the student pattern), or, "
            "without a pattern, by a roster id or e-mail found in the file name. A roster with any "
            "problem is refused whole, each problem listed. Needs change permission."
        ),
        request={"multipart/form-data": RosterUpload},
        responses={201: RosterUploadResult, **ACTION_ERRORS},
    )
    def post(self, request, pk: int) -> Response:
        batch = visible_batch(request, pk)
        if not can_change(request.user, batch):
            raise PermissionDenied(CHANGE_DENIED)
        if batch.status == BatchStatus.ARCHIVED:
            raise InvalidTransition("roster", batch.status, "An archived batch cannot be changed.")
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError(
                {"file": ["Attach the roster as a CSV file in the multipart field “file”."]}
            )
        rows = parse_roster(upload.read(2 * 1024 * 1024 + 1))
        counts = replace_roster(batch, rows)
        return Response({**roster_summary(batch), "matched": counts["matched"]}, status=201)


class JobFeedbackView(APIView):
    content_negotiation_class = _FormatIsTheFileType

    @extend_schema(
        summary="The feedback sheet (PDF) of the job's student, for the student to read",
        description=(
            "The final score of each of the student's documents in the batch, each criterion with its "
            "level, feedback and quoted evidence, and the reviewer's comments. A job whose document "
            "has no student gets its document's sheet. 409 while nothing is graded."
        ),
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
            409: OpenApiResponse(description="Nothing graded yet."),
            **READ_ERRORS,
        },
    )
    def get(self, request, pk: int) -> HttpResponse:
        jobs = visible_jobs(request.user).select_related("batch", "batch__template", "document", "student")
        job = get_object_or_404(jobs, pk=pk)
        sheet = job_feedback_sheet(job)
        if sheet is None:
            raise Conflict("Nothing of this student's work is graded yet.")
        response = HttpResponse(render_pdf(sheet), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{feedback_filename(job)}"'
        return response
