"""Exemplars of a template, and calibrating a batch to the teacher's scale.

- `GET/POST /api/batch-templates/{id}/exemplars`, `DELETE …/exemplars/{eid}`: a
  template's exemplar set, documents with the teacher's grade that every batch
  of the template is graded with. Viewing needs view on the template; adding
  and removing, change.
- `POST /api/batches/{id}/calibrate`: fit the batch's calibration from its
  exemplars and re-score its results, with no provider call (change on the batch).

They live in `batches` because an exemplar document goes through the same
upload checks as a batch's documents (`batches/uploads.py`).
"""

import json

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.api_results import visible_batch
from batches.uploads import UploadRefused, read_upload
from core.api_errors import CONFLICT, READ_ERRORS, WRITE_ERRORS
from core.api_permissions import CHANGE_DENIED, can_change
from core.api_support import StrictJSONParser
from grading.documents import store_document
from grading.models import Document, Exemplar, ReviewError, clean_review_criteria
from grading.schema import SettingsError, validate_settings
from templates_app.models import BatchTemplate


class ExemplarSerializer(serializers.ModelSerializer):
    document = serializers.IntegerField(source="document_id", read_only=True)
    name = serializers.CharField(source="document.original_name", read_only=True)
    words = serializers.IntegerField(source="document.word_count", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Exemplar
        fields = ["id", "document", "name", "words", "score", "criteria", "owner", "created_at"]
        read_only_fields = fields


class ExemplarInput(serializers.Serializer):
    """An exemplar: a file (multipart) or a document you may view, with the teacher's grade."""

    file = serializers.FileField(required=False, help_text="A .txt, .md, .pdf or .docx document.")
    document = serializers.IntegerField(required=False, help_text="Or an uploaded document's id.")
    score = serializers.FloatField(min_value=0, help_text="The teacher's total on the rubric's scale.")
    criteria = serializers.JSONField(
        required=False, help_text='The teacher\'s criterion scores, {"key": score}; any subset.'
    )


def template_for(request, pk: int, *, change: bool) -> BatchTemplate:
    template = get_object_or_404(BatchTemplate.objects.visible_to(request.user), pk=pk)
    if change and not can_change(request.user, template):
        raise PermissionDenied(CHANGE_DENIED)
    return template


def rubric_points(template: BatchTemplate) -> dict[str, float]:
    try:
        rubric = validate_settings(template.settings_layer()).rubric
    except SettingsError:
        raise ValidationError({"template": ["The template's settings are invalid; fix its rubric first."]})
    return {criterion.key: criterion.points for criterion in rubric.criteria}


def clean_grade(score: float, criteria, points: dict[str, float]) -> dict[str, float]:
    """The teacher's criterion scores as {key: score}, checked against the rubric like a review."""
    maximum = sum(points.values())
    if score > maximum:
        raise ValidationError({"score": [f"The score must be between 0 and {maximum:g}."]})
    if criteria in (None, ""):
        return {}
    if isinstance(criteria, str):
        try:
            criteria = json.loads(criteria)
        except ValueError:
            raise ValidationError({"criteria": ['Give the criteria as a JSON object, {"key": score}.']})
    if not isinstance(criteria, dict):
        raise ValidationError({"criteria": ['Give the criteria as a JSON object, {"key": score}.']})
    try:
        cleaned = clean_review_criteria([{"key": k, "score": v} for k, v in criteria.items()], points)
    except ReviewError as error:
        raise ValidationError({"criteria": [str(error)]})
    return {item["key"]: item["score"] for item in cleaned}


class TemplateExemplarsView(APIView):
    parser_classes = [StrictJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="The template's exemplars: documents with the teacher's grade",
        responses={200: ExemplarSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, pk: int) -> Response:
        template = template_for(request, pk, change=False)
        exemplars = template.exemplars.select_related("document", "owner")
        return Response(ExemplarSerializer(exemplars, many=True).data)

    @extend_schema(
        summary="Add an exemplar to the template",
        description=(
            "Multipart with `file`, `score` and optionally `criteria` (a JSON object of criterion scores), "
            "or JSON with `document` (the id of a document you may view) instead of the file. Every "
            "batch of the template is graded with its exemplars."
        ),
        request=ExemplarInput,
        responses={201: ExemplarSerializer, **WRITE_ERRORS},
    )
    def post(self, request, pk: int) -> Response:
        template = template_for(request, pk, change=True)
        data = ExemplarInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        exemplar = add_template_exemplar(
            request.user,
            template,
            fields["score"],
            fields.get("criteria"),
            upload=fields.get("file"),
            document_id=fields.get("document"),
        )
        return Response(ExemplarSerializer(exemplar).data, status=status.HTTP_201_CREATED)


def add_template_exemplar(user, template, score, criteria, upload=None, document_id=None) -> Exemplar:
    """A document with the teacher's grade joins the template's exemplar set; for the API and the page.

    Raises ValidationError naming the field (score, criteria, file) or Http404 for a document
    the user may not view; nothing is stored then.
    """
    criteria = clean_grade(score, criteria, rubric_points(template))
    with transaction.atomic():
        document = exemplar_document(user, upload, document_id)
        return Exemplar.objects.create(
            template=template, document=document, score=score, criteria=criteria, owner=user
        )


def exemplar_document(user, upload, document_id) -> Document:
    if upload is None and document_id is None:
        raise ValidationError({"file": ["Attach the exemplar's file, or name a document you may view."]})
    if upload is not None and document_id is not None:
        raise ValidationError({"file": ["Attach a file, or name a document, not both."]})
    if document_id is not None:
        return get_object_or_404(Document.objects.visible_to(user), pk=document_id)
    try:
        (read,) = read_upload([upload])
    except UploadRefused as refused:
        raise ValidationError({"file": refused.problems})
    except ValueError:
        raise ValidationError({"file": ["Attach one document, not an archive of several."]})
    document = store_document(user, read.name, read.data, text=read.text, error=read.error)
    if document.extraction_error or not document.text.strip():
        document.file.delete(save=False)
        document.delete()
        reason = document.extraction_error or "it holds no text"
        raise ValidationError({"file": [f"{read.name} cannot be used as an exemplar: {reason}."]})
    return document


class TemplateExemplarView(APIView):
    @extend_schema(summary="Remove an exemplar from the template", responses={204: None, **WRITE_ERRORS})
    def delete(self, request, pk: int, eid: int) -> Response:
        template = template_for(request, pk, change=True)
        get_object_or_404(template.exemplars, pk=eid).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class CalibrationSerializer(serializers.Serializer):
    fitted_at = serializers.DateTimeField()
    exemplars = serializers.IntegerField(help_text="The batch's exemplars (reviewed as exemplars).")
    min_exemplars = serializers.IntegerField(help_text="Fewer exemplars than this for a model: no map.")
    models = serializers.ListField(
        child=serializers.DictField(),
        help_text=(
            "Per provider and model: the method, the map, the exemplars it was fitted on, and the "
            "leave-one-out QWK against the teacher before and after calibration."
        ),
    )


class BatchCalibrateView(APIView):
    @extend_schema(
        summary="Calibrate the batch's grades to the teacher's scale, from its exemplars",
        description=(
            "Fits, per provider and model, a monotone map from the provider's scores on the batch's "
            "exemplar jobs to the teacher's, and re-scores every result with it (rounded to the rubric's "
            "levels; the provider's score is kept as `raw_score`). No provider is called. The agreement "
            "figures are cross-validated (leave-one-out), never scored on the exemplars a map was fitted on. "
            "409 while no job of the batch has completed."
        ),
        request=None,
        responses={200: CalibrationSerializer, **WRITE_ERRORS, 409: CONFLICT},
    )
    def post(self, request, pk: int) -> Response:
        batch = visible_batch(request, pk)
        if not can_change(request.user, batch):
            raise PermissionDenied(CHANGE_DENIED)
        return Response(batch.calibrate())
