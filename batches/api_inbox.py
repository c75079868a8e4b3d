"""Assignment rules, the inbox and the queue, over the API.

GET/POST             /api/assignment-rules         the rules you may see (yours; all for superusers), in order
GET/PUT/PATCH/DELETE /api/assignment-rules/{id}
GET/POST             /api/inbox                    your inbox / an upload the rules assign (?dry_run=true)
POST                 /api/inbox/assign             inbox documents into a batch, by hand
DELETE               /api/inbox/{id}               discard a document of your inbox
GET                  /api/queue                    active batches in the order the engine serves them

GET                  /api/assignment-rules/{id}/permissions   who a rule is shared with
POST                 /api/assignment-rules/{id}/share         {"user": name} or {"group": name}, {"permission": level}
POST                 /api/assignment-rules/{id}/unshare

Rules are shared like templates (core/api_sharing.py): those who may not view
a rule get 404, viewers 403 on a change, changers 403 on sharing, and only the
owner deletes. Saving one that targets a batch its owner may not change, or a
template its owner may not view, is a 400 naming the field. A rule shared
with someone runs on their inbox uploads, writing only where they may
(batches/inbox.py). The inbox is each user's own.
"""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.inbox import NotInInbox, assign_from_inbox, discard, run_inbox
from batches.models import JobBatch
from batches.queue import queue_for
from batches.rule_models import AssignmentRule, DocumentKind, InboxItem, NamePatternKind
from batches.rules import clean_extensions
from batches.serializers import MAX_IDS, TagsField, TemplateReferenceField
from batches.uploads import read_upload, refuse_oversized
from core.api_errors import ACTION_ERRORS, LIST_ERRORS, READ_ERRORS, WRITE_ERRORS
from core.api_permissions import CHANGE_DENIED, ObjectPermission
from core.api_sharing import SharingViewSetMixin
from core.api_support import StrictSerializerMixin
from core.permissions import can_change
from grading.models import GradingJob
from grading.serializers import GradingJobSerializer, with_job_relations
from templates_app.models import BatchTemplate

MAX_ID = 2**63 - 1


# --- rules ----------------------------------------------------------------------------------


class BatchReferenceField(serializers.Field):
    """A batch by id, among those the requesting user may view; represented by its id."""

    default_error_messages = {
        "invalid": "Give the batch's id.",
        "not_found": "No batch with id {value} that you may view.",
    }

    def to_internal_value(self, data: Any) -> JobBatch:
        if isinstance(data, bool) or not isinstance(data, int | str) or not str(data).strip().isdigit():
            self.fail("invalid")
        pk = int(str(data).strip()[:20])
        batch = None
        if 0 < pk <= MAX_ID:
            batch = JobBatch.objects.visible_to(self.context["request"].user).filter(pk=pk).first()
        if batch is None:
            self.fail("not_found", value=pk)
        return batch

    def to_representation(self, value: JobBatch) -> int:
        return value.pk


def seen_targets(user, rules: list[AssignmentRule]) -> dict[str, set[int]]:
    """Which of others' rules' target batches and templates the user may view: two queries for a page."""
    others = [rule for rule in rules if rule.owner_id != user.pk]
    batches = [rule.target_batch_id for rule in others if rule.target_batch_id]
    templates = [rule.template_id for rule in others if rule.template_id]
    return {
        "batches": set(JobBatch.objects.visible_to(user).filter(pk__in=batches).values_list("pk", flat=True))
        if batches
        else set(),
        "templates": set(
            BatchTemplate.objects.visible_to(user).filter(pk__in=templates).values_list("pk", flat=True)
        )
        if templates
        else set(),
    }


class AssignmentRuleListSerializer(serializers.ListSerializer):
    def to_representation(self, data) -> list[dict[str, Any]]:
        rules = list(data.all() if hasattr(data, "all") else data)
        self.child.context["seen_targets"] = seen_targets(self.context["request"].user, rules)
        return super().to_representation(rules)


class AssignmentRuleSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    position = serializers.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        required=False,
        help_text="Rules are tried from the lowest; new ones go last.",
    )
    extensions = serializers.ListField(
        child=serializers.CharField(max_length=20),
        max_length=20,
        required=False,
        help_text='e.g. [".pdf", "docx"]',
    )
    content_types = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=20,
        required=False,
        help_text='Detected from the bytes, e.g. ["application/pdf", "text/*"].',
    )
    name_pattern = serializers.CharField(max_length=200, allow_blank=True, required=False)
    name_pattern_kind = serializers.ChoiceField(choices=NamePatternKind.choices, required=False)
    min_size = serializers.IntegerField(min_value=0, max_value=2**62, allow_null=True, required=False)
    max_size = serializers.IntegerField(min_value=0, max_value=2**62, allow_null=True, required=False)
    contains = serializers.CharField(max_length=200, allow_blank=True, required=False)
    document_kind = serializers.ChoiceField(choices=DocumentKind.choices, allow_blank=True, required=False)
    target_batch = BatchReferenceField(required=False, allow_null=True, help_text="A batch's id.")
    target_batch_name = serializers.CharField(source="target_batch.name", read_only=True, default=None)
    template = TemplateReferenceField(required=False, allow_null=True, help_text="A template's id or slug.")
    template_slug = serializers.CharField(source="template.slug", read_only=True, default=None)
    batch_name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    group_by = serializers.CharField(max_length=200, allow_blank=True, required=False)
    priority = serializers.IntegerField(min_value=1, max_value=10, required=False)
    tags = TagsField(required=False)
    deadline_days = serializers.IntegerField(min_value=1, max_value=365, allow_null=True, required=False)
    auto_start = serializers.BooleanField(
        allow_null=True,
        required=False,
        help_text="Start batches once documents land; null: as their settings say.",
    )

    class Meta:
        model = AssignmentRule
        list_serializer_class = AssignmentRuleListSerializer
        fields = [
            "id",
            "name",
            "owner",
            "position",
            "is_active",
            "is_fallback",
            "extensions",
            "content_types",
            "name_pattern",
            "name_pattern_kind",
            "min_size",
            "max_size",
            "contains",
            "document_kind",
            "target_batch",
            "target_batch_name",
            "template",
            "template_slug",
            "batch_name",
            "group_by",
            "priority",
            "tags",
            "deadline_days",
            "auto_start",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def to_representation(self, rule: AssignmentRule) -> dict[str, Any]:
        data = super().to_representation(rule)
        # A rule shared with you names where it sends; what you may not see yourself is left unnamed.
        user = self.context["request"].user
        if rule.owner_id != user.pk:
            seen = self.context.get("seen_targets") or seen_targets(user, [rule])
            if rule.target_batch_id and rule.target_batch_id not in seen["batches"]:
                data["target_batch_name"] = None
            if rule.template_id and rule.template_id not in seen["templates"]:
                data["template_slug"] = None
        return data

    def validate_extensions(self, values: list[str]) -> list[str]:
        return clean_extensions(values)

    def validate_content_types(self, values: list[str]) -> list[str]:
        return list(dict.fromkeys(value.strip().lower() for value in values if value.strip()))

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        rule = self.instance or AssignmentRule(owner=self.context["request"].user)
        probe = AssignmentRule(
            **{f.attname: getattr(rule, f.attname) for f in AssignmentRule._meta.concrete_fields}
        )
        for name, value in data.items():
            setattr(probe, name, value)
        problems = probe.problems()
        if problems:
            raise ValidationError(problems)
        return data

    def create(self, data: dict[str, Any]) -> AssignmentRule:
        owner = self.context["request"].user
        if "position" not in data:
            last = AssignmentRule.objects.filter(owner=owner).order_by("-position").first()
            data["position"] = (last.position + 1) if last else 1
        return AssignmentRule.objects.create(owner=owner, **data)


@extend_schema_view(
    list=extend_schema(
        summary="Your assignment rules and those shared with you, in the order they are tried",
        responses={200: AssignmentRuleSerializer, **LIST_ERRORS},
    ),
    retrieve=extend_schema(summary="One rule", responses={200: AssignmentRuleSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Add a rule (tried after the others unless a position is given)",
        description=(
            "A rule may target only a batch its owner may change and a template its owner may view; "
            "otherwise 400 naming the field."
        ),
        responses={201: AssignmentRuleSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace a rule (needs change on it)",
        responses={200: AssignmentRuleSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some of a rule's fields", responses={200: AssignmentRuleSerializer, **WRITE_ERRORS}
    ),
    destroy=extend_schema(summary="Delete a rule (its owner only)", responses={204: None, **WRITE_ERRORS}),
)
class AssignmentRuleViewSet(SharingViewSetMixin, viewsets.ModelViewSet):
    serializer_class = AssignmentRuleSerializer
    permission_classes = [IsAuthenticated, ObjectPermission]
    queryset = AssignmentRule.objects.none()  # for the schema; requests use get_queryset()
    filterset_class = None

    def get_queryset(self):
        return (
            AssignmentRule.objects.visible_to(self.request.user)
            .select_related("owner", "template", "target_batch")
            .order_by("owner_id", "is_fallback", "position", "id")
        )


# --- the inbox --------------------------------------------------------------------------------


class _Doc(serializers.Serializer):
    """Documentation only: describes a response, never validates input."""


class InboxItemSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="document_id", read_only=True, help_text="The document's id.")
    name = serializers.CharField(source="document.original_name", read_only=True)
    size = serializers.IntegerField(source="document.size", read_only=True)
    content_type = serializers.CharField(source="document.content_type", read_only=True)
    extraction_error = serializers.CharField(source="document.extraction_error", read_only=True)

    class Meta:
        model = InboxItem
        fields = ["id", "name", "size", "content_type", "extraction_error", "reason", "created_at"]
        read_only_fields = fields


class RuleRef(_Doc):
    id = serializers.IntegerField()
    name = serializers.CharField()


class InboxBatch(_Doc):
    id = serializers.IntegerField(
        allow_null=True, help_text="Null in a dry run for a batch that would be made."
    )
    name = serializers.CharField()
    rule = serializers.IntegerField()
    group = serializers.CharField(allow_null=True)
    created = serializers.BooleanField(help_text="Made by this upload (or, in a dry run, would be).")
    documents = serializers.IntegerField()
    started = serializers.BooleanField(help_text="Started by this upload (auto_start).")


class InboxPlacement(_Doc):
    name = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField(help_text="Detected from the bytes.")
    kind = serializers.ChoiceField(choices=DocumentKind.values, allow_null=True)
    outcome = serializers.ChoiceField(choices=["assigned", "inbox"])
    rule = RuleRef(allow_null=True)
    batch = InboxBatch(allow_null=True)
    document = serializers.IntegerField(allow_null=True, help_text="Null in a dry run.")
    jobs = serializers.ListField(child=serializers.IntegerField())
    reason = serializers.CharField(allow_null=True, help_text="Why it stayed in the inbox.")
    notes = serializers.ListField(child=serializers.CharField(), help_text="Rules skipped, and why.")


class InboxRunSerializer(_Doc):
    dry_run = serializers.BooleanField()
    documents = InboxPlacement(many=True)
    batches = InboxBatch(many=True)
    kept_in_inbox = serializers.IntegerField()


class InboxUploadSerializer(serializers.Serializer):
    """Describes the multipart body (schema and browsable form); batches.uploads reads the files."""

    files = serializers.ListField(child=serializers.FileField(), help_text="Documents, or ZIPs of them.")


def _flag(request, name: str) -> bool:
    value = request.query_params.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValidationError({name: ["Give true or false."]})


class InboxView(GenericAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = InboxItemSerializer
    parser_classes = [MultiPartParser]
    queryset = InboxItem.objects.none()

    def get_queryset(self):
        return (
            InboxItem.objects.of(self.request.user).select_related("document").order_by("-created_at", "-pk")
        )

    @extend_schema(
        summary="Your inbox: documents no rule took, waiting to be assigned",
        responses={200: InboxItemSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(InboxItemSerializer(page, many=True).data)

    @extend_schema(
        summary="Upload documents (files or ZIPs) for your assignment rules to send to batches",
        description=(
            "Each document goes to the batch of the first of your active rules whose conditions hold "
            "(a new batch from a template when the rule says so), or stays in your inbox. The same "
            "bounds as a batch upload; a refused upload stores nothing. Batches whose rules say "
            "auto_start start. With ?dry_run=true nothing is stored and the answer says where each "
            "document would go (200)."
        ),
        parameters=[OpenApiParameter("dry_run", bool, description="Only say where each document would go.")],
        request={"multipart/form-data": InboxUploadSerializer},
        responses={
            201: InboxRunSerializer,
            200: OpenApiResponse(InboxRunSerializer, description="A dry run: nothing was stored."),
            400: LIST_ERRORS[400],
            401: LIST_ERRORS[401],
        },
    )
    def post(self, request):
        dry_run = _flag(request, "dry_run")
        refuse_oversized(request.META.get("CONTENT_LENGTH"))
        uploads = read_upload(request.FILES.getlist("files"))
        run = run_inbox(request.user, uploads, dry_run=dry_run)
        return Response(run.as_dict(), status=status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED)


class AssignSerializer(StrictSerializerMixin, serializers.Serializer):
    batch = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="A batch you may change.")
    documents = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_IDS,
        required=False,
        help_text="Documents of your inbox; all of them when left out.",
    )


class AssignedSerializer(_Doc):
    batch = serializers.IntegerField()
    documents = serializers.ListField(child=serializers.IntegerField())
    jobs = GradingJobSerializer(many=True)
    started = serializers.BooleanField(help_text="Started by this assignment (auto_start).")


class InboxAssignView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Assign documents of your inbox to a batch by hand",
        description=(
            "Needs change on the batch (404 if you may not view it, 403 if you may only view it), "
            "which must be a draft or paused (409). Documents not in your inbox are a 404."
        ),
        request=AssignSerializer,
        responses={200: AssignedSerializer, **ACTION_ERRORS},
    )
    def post(self, request):
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        batch = get_object_or_404(JobBatch.objects.visible_to(request.user), pk=data["batch"])
        if not can_change(request.user, batch):
            raise PermissionDenied(CHANGE_DENIED)
        ids = list(dict.fromkeys(data["documents"])) if "documents" in data else None
        try:
            assigned = assign_from_inbox(request.user, batch, ids)
        except NotInInbox as exc:
            raise NotFound(str(exc))
        if not assigned.documents:
            raise ValidationError({"documents": ["Your inbox is empty."]})
        jobs = with_job_relations(GradingJob.objects.filter(pk__in=[job.pk for job in assigned.jobs]))
        return Response(
            {
                "batch": batch.pk,
                "documents": [document.pk for document in assigned.documents],
                "jobs": GradingJobSerializer(jobs, many=True).data,
                "started": assigned.started,
            }
        )


class InboxItemView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Discard a document of your inbox (its file too)",
        request=None,
        responses={204: None, **READ_ERRORS},
    )
    def delete(self, request, pk: int):
        try:
            discard(request.user, int(pk))
        except NotInInbox:
            raise NotFound("No document with this id in your inbox.")
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the queue ----------------------------------------------------------------------------------


class AheadCounts(_Doc):
    batches = serializers.IntegerField()
    jobs = serializers.IntegerField()


class Capacity(_Doc):
    provider = serializers.CharField(allow_null=True)
    cap = serializers.IntegerField(
        allow_null=True, help_text="The provider's calls in flight at most; null: no cap."
    )
    share = serializers.FloatField(allow_null=True, help_text="This batch's calls in flight / the cap.")


class EconomyCounts(_Doc):
    to_submit = serializers.IntegerField(
        help_text="Economy jobs waiting to be submitted in a provider batch."
    )
    at_provider = serializers.IntegerField(help_text="Economy jobs submitted, in open provider batches.")
    expected_by = serializers.DateTimeField(
        allow_null=True, help_text="The latest expected completion of its open provider batches."
    )


class QueuedBatch(_Doc):
    id = serializers.IntegerField()
    name = serializers.CharField()
    owner = serializers.CharField()
    status = serializers.CharField()
    priority = serializers.IntegerField()
    deadline = serializers.DateTimeField(allow_null=True)
    position = serializers.IntegerField(help_text="1: served first.")
    provider = serializers.CharField(allow_null=True)
    waiting = serializers.IntegerField(
        help_text="Real-time jobs queued (some may wait out a retry's backoff); economy jobs are under economy."
    )
    in_flight = serializers.IntegerField(help_text="Real-time calls under way.")
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    percent = serializers.FloatField()
    capacity = Capacity()
    economy = EconomyCounts()
    estimated_finish = serializers.DateTimeField(
        allow_null=True,
        help_text=(
            "At the rate its jobs have ended so far (null before the first ends); for economy jobs, "
            "the expected completion of their provider batches."
        ),
    )
    estimate_source = serializers.ChoiceField(
        choices=["rate", "provider_batch"],
        allow_null=True,
        help_text="What the estimated finish is worked out from (batches.eta, as on every page).",
    )
    deadline_standing = serializers.CharField(allow_null=True)
    ahead = AheadCounts(help_text="Batches before it in the queue, and their jobs waiting.")
    others_ahead = AheadCounts(help_text="Of those, the ones you may not see.")


class QueueTotals(_Doc):
    batches = serializers.IntegerField()
    waiting = serializers.IntegerField()
    in_flight = serializers.IntegerField()
    to_submit = serializers.IntegerField()
    at_provider = serializers.IntegerField()


class ProviderLoad(_Doc):
    provider = serializers.CharField()
    cap = serializers.IntegerField(allow_null=True)
    in_flight = serializers.IntegerField()
    waiting = serializers.IntegerField()
    to_submit = serializers.IntegerField()
    at_provider = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    source = serializers.CharField()


class QueueSerializer(_Doc):
    generated_at = serializers.DateTimeField()
    batches = QueuedBatch(
        many=True, help_text="The active batches you may view, in the order they are served."
    )
    others = QueueTotals(help_text="Active batches you may not view: totals only.")
    total = QueueTotals()
    providers = ProviderLoad(many=True)


class QueueView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The processing queue: active batches in the order the engine serves them",
        description=(
            "Priority, then deadline, then age: the claim order. Batches you may not view appear only "
            "in totals."
        ),
        responses={200: QueueSerializer, 401: READ_ERRORS[401]},
    )
    def get(self, request):
        return Response(queue_for(request.user))
