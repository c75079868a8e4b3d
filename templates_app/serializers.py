"""Batch template representation and validation."""

from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework import serializers

from core.api_support import ObjectField, StrictSerializerMixin
from grading.merge import deep_merge
from grading.schema import SettingsError, validate_job_structure, validate_settings
from templates_app.models import BatchTemplate


class BatchTemplateSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Unique; made from the name when left out."
    )
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True, default=None)
    description = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    default_settings = ObjectField(help_text="provider, model(s), temperature, instructions, rubric, …")
    processing_rules = ObjectField(
        required=False,
        help_text="max_attempts, backoff_base_s, backoff_max_s, concurrency, stagger_ms, timeout_s, "
        "requests_per_minute, auto_start, delivery (realtime, economy or auto: the provider's batch API "
        "at half price when the deadline allows)",
    )
    job_structure = ObjectField(
        required=False,
        help_text='{"naming": "{batch} – {filename}", "per_model": true, "student_pattern": "canvas"}; '
        "student_pattern reads who wrote each document from its file name: canvas, moodle, or a "
        "pattern such as {student_id}_{last}_{first}.*",
    )

    class Meta:
        model = BatchTemplate
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "category",
            "default_settings",
            "processing_rules",
            "job_structure",
            "is_public",
            "usage_count",
            "owner",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["usage_count", "created_at", "updated_at"]

    def validate_slug(self, slug: str) -> str:
        if slug.isdigit():
            # Batches name their template by id or slug: a numeric slug would be ambiguous.
            raise serializers.ValidationError("A slug cannot be only digits.")
        taken = BatchTemplate.objects.filter(slug=slug)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("Another template has this slug.")
        return slug

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        current = self.instance
        default_settings = data.get("default_settings", current.default_settings if current else {})
        processing_rules = data.get("processing_rules", current.processing_rules if current else {})
        job_structure = data.get("job_structure", current.job_structure if current else {})
        errors = settings_errors(default_settings, processing_rules, job_structure)
        if errors:
            raise serializers.ValidationError(errors)
        # A slug made here is only a first pick: create() takes the next free one if it is taken meanwhile.
        self.slug_made = current is None and not data.get("slug")
        if self.slug_made:
            data["slug"] = unique_slug(data["name"])
        return data

    def create(self, validated_data: dict[str, Any]) -> BatchTemplate:
        fields = {**validated_data, "owner": self.context["request"].user}
        if getattr(self, "slug_made", False):
            return BatchTemplate.objects.create_with_free_slug(**fields)
        with _slug_taken_meanwhile(fields["slug"]):
            return super().create(fields)

    def update(self, instance: BatchTemplate, validated_data: dict[str, Any]) -> BatchTemplate:
        with _slug_taken_meanwhile(validated_data.get("slug")):
            return super().update(instance, validated_data)


@contextmanager
def _slug_taken_meanwhile(slug: str | None):
    """The client's own slug, checked free by validate_slug, taken by another request since: a 400 on it."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        if slug and BatchTemplate.objects.filter(slug=slug).exists():
            raise serializers.ValidationError({"slug": ["Another template has this slug."]}) from None
        raise


def settings_errors(
    default_settings: dict[str, Any], processing_rules: dict[str, Any], job_structure: dict[str, Any]
) -> dict[str, dict[str, list[str]]]:
    """Field-level errors, each under the field the client sent it in."""
    errors: dict[str, dict[str, list[str]]] = {}
    try:
        validate_settings(deep_merge(default_settings, {"processing": processing_rules or {}}))
    except SettingsError as exc:
        for path, messages in exc.errors.items():
            if path.startswith("processing."):
                errors.setdefault("processing_rules", {})[path.removeprefix("processing.")] = messages
            else:
                errors.setdefault("default_settings", {})[path] = messages
    try:
        validate_job_structure(job_structure)
    except SettingsError as exc:
        errors["job_structure"] = exc.errors
    return errors


def unique_slug(name: str) -> str:
    return BatchTemplate.objects.unique_slug(name)


def save_template(request, data: dict[str, Any], template: BatchTemplate | None = None) -> BatchTemplate:
    """Create (or replace) a template from `data` under the API's rules: the web editor's one way in.

    Raises rest_framework's ValidationError with the serializer's field errors
    (settings errors keyed by dotted path under default_settings,
    processing_rules and job_structure), so a page can put each on its field.
    """
    serializer = BatchTemplateSerializer(template, data=data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.save()
