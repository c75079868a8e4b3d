"""Batch representations and the input of batch endpoints."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied

from batches import eta
from batches.actions import allowed_in
from batches.models import BatchStatus, JobBatch
from batches.queue import places
from core.api_support import ObjectField, StrictSerializerMixin
from grading import economy_engine
from grading.circuits import outages
from grading.models import Document
from grading.naming import MAX_PATTERN, pattern_problem
from grading.serializers import GradingJobSerializer
from templates_app.models import BatchTemplate

MAX_TAGS = 20
MAX_IDS = 500


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True})
class TemplateReferenceField(serializers.Field):
    """A template given by id or slug, among those the user may see; represented by its id."""

    default_error_messages = {
        "invalid": "Give the template's id or slug.",
        "not_found": "No template “{value}” that you may use.",
    }

    def to_internal_value(self, data: Any) -> BatchTemplate:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        templates = BatchTemplate.objects.visible_to(self.context["request"].user)
        text = str(data).strip()[:100]
        if isinstance(data, int) or (text.isascii() and text.isdigit()):
            template = templates.filter(pk=int(text)).first() if 0 < int(text) < 2**63 else None
        elif "\x00" in text:
            template = None
        else:
            template = templates.filter(slug=text).first()
        if template is None:
            self.fail("not_found", value=text.replace("\x00", ""))
        return template

    def to_representation(self, value: BatchTemplate) -> int:
        return value.pk


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    queued = serializers.IntegerField()
    processing = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    percent = serializers.FloatField(help_text="Finished jobs (completed, failed or cancelled) in percent.")


def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, without repeats, in the order given."""
    return list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))


class TagsField(serializers.ListField):
    child = serializers.CharField(max_length=50)

    def __init__(self, **kwargs: Any):
        super().__init__(max_length=MAX_TAGS, **kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        return clean_tags(super().to_internal_value(data))


class JobBatchSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    template = TemplateReferenceField(
        required=False, allow_null=True, help_text="The template's id or slug; its usage count rises."
    )
    template_slug = serializers.SlugField(
        source="template.slug", read_only=True, allow_null=True, default=None
    )
    owner = serializers.CharField(source="owner.username", read_only=True)
    priority = serializers.IntegerField(min_value=1, max_value=10, required=False, help_text="1 (low) to 10.")
    tags = TagsField(required=False)
    description = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    settings = ObjectField(
        required=False, help_text="Overrides of the template's settings, deep-merged over them."
    )
    deadline = serializers.DateTimeField(required=False, allow_null=True)
    student_pattern = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_PATTERN,
        help_text=(
            "How file names say who wrote each document: canvas, moodle, or a pattern such as "
            "{student_id}_{last}_{first}.* (placeholders {student_id}, {email}, {name}, {first}, "
            "{last}; * for any text). Blank: the template's job_structure.student_pattern."
        ),
    )
    progress = serializers.SerializerMethodField()
    effective_settings = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    archived_from = serializers.CharField(
        read_only=True,
        help_text="The finished state an archived batch left, which unarchiving returns it to; empty otherwise.",
    )
    waiting_for_provider = serializers.SerializerMethodField()
    provider_batches = serializers.SerializerMethodField()
    estimate = serializers.SerializerMethodField()
    calibration = serializers.JSONField(
        read_only=True,
        help_text="The last calibration to the teacher's scale (POST …/calibrate), empty before the first.",
    )

    class Meta:
        model = JobBatch
        fields = [
            "id",
            "name",
            "description",
            "status",
            "priority",
            "tags",
            "template",
            "template_slug",
            "settings",
            "effective_settings",
            "progress",
            "allowed_actions",
            "waiting_for_provider",
            "provider_batches",
            "estimate",
            "owner",
            "deadline",
            "student_pattern",
            "created_at",
            "started_at",
            "completed_at",
            "archived_at",
            "archived_from",
            "calibration",
        ]
        read_only_fields = [
            "status",
            "created_at",
            "started_at",
            "completed_at",
            "archived_at",
            "archived_from",
            "calibration",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "description": "While the provider of the batch's waiting jobs is down: which, why, since when.",
            "properties": {
                "provider": {"type": "string"},
                "reason": {"type": "string"},
                "since": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_waiting_for_provider(self, batch: JobBatch) -> dict[str, Any] | None:
        if batch.status not in BatchStatus.active():
            return None
        # The open circuits are read once per response, however many batches it lists.
        if "_outages" not in self.context:
            self.context["_outages"] = outages()
        return batch.waiting_for_provider(self.context["_outages"])

    @extend_schema_field(
        {
            "type": "array",
            "description": "Economy delivery: the provider batches its jobs were submitted in, oldest first.",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "provider": {"type": "string"},
                    "model": {"type": "string"},
                    "external_id": {"type": "string", "description": "The provider's id of the batch."},
                    "status": {
                        "type": "string",
                        "enum": ["preparing", "submitted", "cancelling", "ended", "failed"],
                    },
                    "provider_status": {
                        "type": "string",
                        "description": "The provider's own word, as last polled.",
                    },
                    "submitted": {"type": "integer", "description": "Requests (jobs) submitted."},
                    "finished": {"type": "integer", "description": "Requests the provider has finished."},
                    "submitted_at": {"type": "string", "format": "date-time", "nullable": True},
                    "expected_by": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
        }
    )
    def get_provider_batches(self, batch: JobBatch) -> list[dict[str, Any]]:
        # Read once per response for the whole page of batches, as the circuits are.
        known = self.context.setdefault("_provider_batches", {})
        if batch.pk not in known:
            page = getattr(self.parent, "instance", None) if self.parent is not None else None
            ids = [item.pk for item in page] if isinstance(page, list | tuple) else [batch.pk]
            found = economy_engine.progress(ids)
            known.update({pk: found.get(pk, []) for pk in {*ids, batch.pk}})
        return known[batch.pk]

    @extend_schema_field(
        {
            "type": "object",
            "description": "When the batch should finish and how that stands against its deadline.",
            "properties": {
                "estimated_finish": {
                    "type": "string",
                    "format": "date-time",
                    "nullable": True,
                    "description": (
                        "At the rate its jobs have ended so far (null before the first ends); for economy "
                        "jobs, their provider batches' expected completion (now plus the provider's window "
                        "for jobs not yet submitted); once finished, when it did."
                    ),
                },
                "source": {"type": "string", "enum": [eta.RATE, eta.PROVIDER_BATCH]},
                "deadline_standing": {
                    "type": "string",
                    "nullable": True,
                    "enum": ["on_track", "at_risk", "late", None],
                },
            },
        }
    )
    def get_estimate(self, batch: JobBatch) -> dict[str, Any]:
        found = self._estimate_of(batch)
        return {
            "estimated_finish": found.at.isoformat() if found.at else None,
            "source": found.source,
            "deadline_standing": found.standing,
        }

    def _estimate_of(self, batch: JobBatch) -> eta.Estimate:
        # The queue's entries carry the economy figures of every active batch: read once
        # per response for the whole page, as the circuits are.
        asked, entries = self.context.setdefault("_queue_places", (set(), {}))
        if batch.pk not in asked:
            page = getattr(self.parent, "instance", None) if self.parent is not None else None
            batches = [*page, batch] if isinstance(page, list | tuple) else [batch]
            asked.update(item.pk for item in batches)
            # Only active batches are in the queue: a page of finished ones skips its query.
            if any(item.status in BatchStatus.active() for item in batches):
                entries.update(places(None, batches))
        entry = entries.get(batch.pk)
        if entry is not None:
            return entry.estimate
        return eta.estimate_finish(batch, batch.known_progress())

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, batch: JobBatch) -> dict[str, Any]:
        # From the counts `with_progress()` annotated, else one aggregate query.
        return batch.known_progress()

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_effective_settings(self, batch: JobBatch) -> dict[str, Any]:
        return batch.effective_settings()

    def get_allowed_actions(self, batch: JobBatch) -> list[str]:
        return allowed_in(batch.status)

    def validate_student_pattern(self, pattern: str) -> str:
        problem = pattern_problem(pattern) if pattern else None
        if problem:
            raise serializers.ValidationError(f"{problem[0].upper()}{problem[1:]}.")
        return pattern

    def validate_deadline(self, deadline):
        """A deadline in the past is refused, unless it is the batch's own one sent back unchanged."""
        unchanged = self.instance is not None and deadline == self.instance.deadline
        if deadline is not None and deadline <= timezone.now() and not unchanged:
            raise serializers.ValidationError("The deadline is in the past; give a future date and time.")
        return deadline

    def create(self, validated_data: dict[str, Any]) -> JobBatch:
        return JobBatch.objects.create_from_template(owner=self.context["request"].user, **validated_data)

    def update(self, batch: JobBatch, validated_data: dict[str, Any]) -> JobBatch:
        return batch.edit(**validated_data)


class AddJobsSerializer(StrictSerializerMixin, serializers.Serializer):
    documents = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=MAX_IDS,
        help_text=(
            "Ids of documents of batches you may change, or of your own uploads not yet in any batch; "
            "one job each (per model in a comparison)."
        ),
    )

    def validate_documents(self, ids: list[int]) -> list[int]:
        return list(dict.fromkeys(ids))


def _named(documents: list[Document]) -> str:
    shown = ", ".join(f"{doc.pk} (“{doc.original_name}”)" for doc in documents[:20])
    return shown + (f" and {len(documents) - 20} more" if len(documents) > 20 else "")


def attachable_documents(user, ids: list[int]) -> list[Document]:
    """The documents, in order, if the user may attach them all to a batch; else NotFound or PermissionDenied.

    Attaching copies a document into another batch, where it outlives any
    share of its source, so it needs change on a batch that holds it (or a
    loose job of one's own), or being its uploader while no job grades it
    yet: `Document.objects.changeable_by`. One the user may not view is a
    404, one they may view but not change a 403, each naming the documents;
    either way nothing is attached.
    """
    visible = {doc.pk: doc for doc in Document.objects.visible_to(user).filter(pk__in=ids)}
    missing = [str(pk) for pk in ids if pk not in visible]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise NotFound(f"No document with id {shown} that you may view.")
    changeable = set(Document.objects.changeable_by(user).filter(pk__in=ids).values_list("pk", flat=True))
    refused = [visible[pk] for pk in ids if pk not in changeable]
    if refused:
        raise PermissionDenied(
            f"You may view document {_named(refused)} but not attach it elsewhere: attach documents of "
            "batches you may change, or your own uploads not yet in a batch."
        )
    return [visible[pk] for pk in ids]


class ConfidenceSerializer(serializers.Serializer):
    low = serializers.BooleanField(help_text="The review queue's “low confidence”: see `reasons`.")
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why the AI's grade deserves a second look, as sentences."
    )
    spread = serializers.FloatField(
        allow_null=True,
        help_text="Points of the maximum between the document's highest and lowest model grade "
        "(null with fewer than two grades of the document).",
    )


class QueuedJobSerializer(GradingJobSerializer):
    """A job of the batch's review queue: the job, and why its grade may need a look."""

    confidence = serializers.SerializerMethodField()

    class Meta(GradingJobSerializer.Meta):
        fields = [*GradingJobSerializer.Meta.fields, "confidence"]
        read_only_fields = fields

    @extend_schema_field(ConfidenceSerializer)
    def get_confidence(self, job) -> dict[str, Any]:
        entry = getattr(job, "review", None)
        if entry is None:
            return {"low": False, "reasons": [], "spread": None}
        spread = None if entry.spread is None else round(entry.spread, 2)
        return {"low": entry.low_confidence, "reasons": entry.reasons, "spread": spread}
