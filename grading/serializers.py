"""Read representations of documents, jobs and their results."""

from rest_framework import serializers

from grading.models import REVIEW_FIELDS, Document, GradingJob, GradingResult


class DocumentSummarySerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name", read_only=True)

    class Meta:
        model = Document
        fields = ["id", "name", "content_type", "size", "sha256", "extraction_error", "created_at"]
        read_only_fields = fields


class GradingResultSerializer(serializers.ModelSerializer):
    final_score = serializers.FloatField(read_only=True)
    percent = serializers.FloatField(read_only=True)
    is_reviewed = serializers.BooleanField(read_only=True)
    is_calibrated = serializers.BooleanField(
        read_only=True, help_text="`score` and `criteria` are calibrated to the teacher's scale."
    )
    reviewer = serializers.CharField(
        source="reviewer.username", read_only=True, allow_null=True, default=None
    )
    cost = serializers.DecimalField(max_digits=12, decimal_places=6, coerce_to_string=False, read_only=True)

    class Meta:
        model = GradingResult
        fields = [
            "provider",
            "model",
            "score",
            "max_score",
            "final_score",
            "percent",
            "criteria",
            "is_calibrated",
            "raw_score",
            "raw_criteria",
            "feedback",
            "input_tokens",
            "output_tokens",
            "cost",
            "latency_ms",
            "created_at",
            "is_reviewed",
            *REVIEW_FIELDS,
        ]
        read_only_fields = fields


class JobStudentSerializer(serializers.Serializer):
    """Who wrote the job's document, in its batch (batches.students.Student)."""

    id = serializers.IntegerField(read_only=True)
    student_id = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    on_roster = serializers.BooleanField(read_only=True)


class GradingJobSerializer(serializers.ModelSerializer):
    document = DocumentSummarySerializer(read_only=True)
    student = JobStudentSerializer(
        read_only=True, allow_null=True, help_text="Null while no student is known for the document."
    )
    # None until the job has a result (a missing reverse one-to-one reads as None).
    result = GradingResultSerializer(read_only=True, allow_null=True)
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = GradingJob
        fields = [
            "id",
            "name",
            "batch",
            "document",
            "student",
            "owner",
            "provider",
            "model",
            "status",
            "attempts",
            "max_attempts",
            "last_error",
            "next_attempt_at",
            "created_at",
            "started_at",
            "completed_at",
            "duration_ms",
            "result",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "started_at": {
                "help_text": "When the graded attempt's call could start (after any stagger or pacing wait); "
                "null until an attempt ends, so a job a worker holds but has not finished is not "
                "shown as started. `completed_at - started_at` is `duration_ms`."
            },
            "duration_ms": {
                "help_text": "From `started_at` to `completed_at`: the grading, without the wait."
            },
        }


def with_job_relations(queryset):
    """What a job's representation reads, in the same query as the jobs."""
    return queryset.select_related("document", "student", "owner", "result", "result__reviewer")
