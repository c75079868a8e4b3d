"""Assignment rules, the batches they made, and the inbox of documents no rule took.

A rule belongs to a user and runs over that user's inbox uploads
(batches/inbox.py), in order: by `position`, then id, the fallback last. The
first rule whose conditions all hold takes the document, into its target
batch or into a batch it makes from its template. Who may be targeted:
batches the rule's owner may change and templates the owner may view,
checked when the rule is saved (`problems()`).

Rules are shared like batches and templates (core/permissions.py, guardian's
direct foreign-key tables below): view lets one see a rule and have it run on
one's own inbox uploads, change lets one edit it, manage lets one share it;
deleting stays the owner's. A rule run for someone else writes only on the
uploader's behalf (batches/inbox.py): into a batch the uploader may change,
or a new batch the uploader owns made from a template the uploader may view.

This module is imported at the end of batches/models.py so that Django finds
the models; it refers to JobBatch by its label, never by import.
"""

import re
from datetime import timedelta
from typing import Any

from django.conf import settings as conf
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Q, Value, When
from django.template.defaultfilters import pluralize
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from batches import rules
from core.permissions import Level, accessible_ids, filter_accessible, is_signed_in
from grading.models import Document, GradingJob
from templates_app.models import BatchTemplate

MAX_LIST = 20
CONTENT_TYPE_SHAPE = r"^[a-z0-9][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*)$"
EXTENSION_SHAPE = r"^\.[a-z0-9]{1,10}$"


class NamePatternKind(models.TextChoices):
    GLOB = "glob", "Glob (*_essay.*)"
    REGEX = "regex", "Regular expression"


class DocumentKind(models.TextChoices):
    ESSAY = "essay", "Essay"
    REPORT = "report", "Report"
    PAPER = "paper", "Research paper"


class AssignmentRuleQuerySet(models.QuerySet):
    def accessible_to(self, user, level: Level) -> "AssignmentRuleQuerySet":
        """Rules the user owns or holds `level` on, directly or through a group; superusers reach all."""
        return filter_accessible(self, user, level)

    def visible_to(self, user) -> "AssignmentRuleQuerySet":
        return self.accessible_to(user, Level.VIEW)

    def changeable_by(self, user) -> "AssignmentRuleQuerySet":
        return self.accessible_to(user, Level.CHANGE)

    def manageable_by(self, user) -> "AssignmentRuleQuerySet":
        return self.accessible_to(user, Level.MANAGE)

    def shared_with(self, user) -> "AssignmentRuleQuerySet":
        """Others' rules shared with the user or a group of theirs (a superuser's reach aside)."""
        if not is_signed_in(user):
            return self.none()
        return self.filter(pk__in=accessible_ids(self.model, user, Level.VIEW)).exclude(owner=user)

    def in_order(self) -> "AssignmentRuleQuerySet":
        """The order rules are tried in: by position, then id; the fallback last."""
        return self.order_by("is_fallback", "position", "id")

    def stopped_by_deleting(self, user, obj) -> str:
        """A sentence naming the rules that send documents to a batch (or make batches from a template)
        and stop working once it is deleted; "" when none does.

        The user's own rules are named; other users' only counted, as the user may not see them.
        """
        is_batch = obj._meta.model_name == "jobbatch"
        rules = list(self.filter(**{"target_batch" if is_batch else "template": obj}).in_order())
        if not rules:
            return ""
        own = [rule.name for rule in rules if rule.owner_id == user.pk]
        others = len(rules) - len(own)
        does = "sends documents to this batch" if is_batch else "makes its batches from this template"
        do = "send documents to this batch" if is_batch else "make their batches from this template"
        if own:
            names = ", ".join(f"“{name}”" for name in own)
            sentence = f"Your rule {names} {does}" if len(own) == 1 else f"Your rules {names} {do}"
            if others:
                sentence += f", and {others} rule{pluralize(others)} of another user too"
        else:
            sentence = f"{others} rule{pluralize(others)} of another user {does if others == 1 else do}"
        stop = (
            "that rule sends nothing: what it matches"
            if len(rules) == 1
            else "those rules send nothing: what they match"
        )
        return f"{sentence}. Once it is deleted, {stop} stays in the inbox."

    def run_for(self, uploader) -> "AssignmentRuleQuerySet":
        """The active rules an inbox upload of `uploader` tries, in the order it tries them.

        The uploader's own rules first, in their order; then the rules shared
        with them, by owner and in each owner's order; the fallbacks last, the
        uploader's own before any shared one. Sharing decides, not a
        superuser's reach: a superuser's upload does not run everyone's rules.
        """
        if not is_signed_in(uploader):
            return self.none()
        # accessible_ids holds the uploader's own rules too (one UNION, no OR over the table).
        reachable = Q(pk__in=accessible_ids(self.model, uploader, Level.VIEW))
        theirs_last = Case(When(owner=uploader, then=Value(0)), default=Value(1))
        return (
            self.filter(reachable, is_active=True)
            .alias(theirs=theirs_last)
            .order_by("is_fallback", "theirs", "owner_id", "position", "id")
        )


CONDITION_FIELDS = (
    "extensions",
    "content_types",
    "name_pattern",
    "min_size",
    "max_size",
    "contains",
    "document_kind",
)
NEW_BATCH_FIELDS = ("batch_name", "group_by", "deadline_days")


class AssignmentRule(models.Model):
    owner = models.ForeignKey(conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignment_rules")
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried from the lowest position.")
    is_active = models.BooleanField(default=True)
    is_fallback = models.BooleanField(
        default=False, help_text="Takes every document no other rule took; at most one per user."
    )

    # Conditions: every one that is set must hold.
    extensions = models.JSONField(
        default=list, blank=True, help_text='File extensions, e.g. [".pdf", ".docx"].'
    )
    content_types = models.JSONField(
        default=list, blank=True, help_text='Detected content types, e.g. ["application/pdf", "text/*"].'
    )
    name_pattern = models.CharField(max_length=200, blank=True)
    name_pattern_kind = models.CharField(
        max_length=10, choices=NamePatternKind.choices, default=NamePatternKind.GLOB
    )
    min_size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes.")
    max_size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes.")
    contains = models.CharField(
        max_length=200,
        blank=True,
        help_text=f"A word or phrase in the first {rules.CONTENT_WINDOW:,} characters (case and spacing aside).",
    )
    document_kind = models.CharField(max_length=10, choices=DocumentKind.choices, blank=True)

    # Where a matching document goes: a batch, or a new batch from a template.
    target_batch = models.ForeignKey(
        "batches.JobBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="assignment_rules"
    )
    template = models.ForeignKey(
        BatchTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignment_rules"
    )
    batch_name = models.CharField(
        max_length=200, blank=True, help_text="For new batches: {template}, {group}, {date}, {rule}."
    )
    group_by = models.CharField(
        max_length=200, blank=True, help_text=r"A regular expression on the file name, e.g. ^(\w+)_"
    )
    priority = models.PositiveSmallIntegerField(default=5)
    tags = models.JSONField(default=list, blank=True)
    deadline_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="New batches are due this many days after they are made."
    )
    auto_start = models.BooleanField(
        null=True,
        blank=True,
        help_text="Start the batch once documents land in it; empty: as its settings say.",
    )

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AssignmentRuleQuerySet.as_manager()

    class Meta:
        ordering = ["owner", "is_fallback", "position", "id"]
        permissions = [("manage_assignmentrule", "Can share the assignment rule")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner"], condition=Q(is_fallback=True), name="assignment_rule_one_fallback"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1) & Q(priority__lte=10), name="assignment_rule_priority_1_to_10"
            ),
            models.CheckConstraint(
                condition=Q(name_pattern_kind__in=NamePatternKind.values), name="assignment_rule_pattern_kind"
            ),
        ]
        indexes = [models.Index(fields=["owner", "is_fallback", "position"], name="assignment_rule_order")]

    def __str__(self) -> str:
        return self.name

    # --- conditions --------------------------------------------------------------

    @property
    def has_conditions(self) -> bool:
        return any(getattr(self, name) not in (None, "", []) for name in CONDITION_FIELDS)

    def conditions_hold(self, candidate: rules.Candidate) -> bool:
        """Whether every condition set on the rule holds for the document (a fallback has none)."""
        if self.extensions and candidate.extension not in self.extensions:
            return False
        if self.content_types and not any(
            rules.content_type_matches(wanted, candidate.content_type) for wanted in self.content_types
        ):
            return False
        if self.name_pattern and not rules.name_matches(
            self.name_pattern, self.name_pattern_kind, candidate.name
        ):
            return False
        if self.min_size is not None and candidate.size < self.min_size:
            return False
        if self.max_size is not None and candidate.size > self.max_size:
            return False
        if self.contains and rules.fold(self.contains) not in candidate.opening:
            return False
        return not self.document_kind or candidate.kind == self.document_kind

    def group_of(self, name: str) -> str:
        return rules.group_of(self.group_by, name) if self.group_by else ""

    def name_for(self, group: str, day) -> str:
        pattern = self.batch_name or rules.default_name_pattern(bool(self.group_by))
        template = self.template.name if self.template_id else ""
        return rules.batch_name(pattern, template=template, group=group, day=day, rule=self.name)

    def deadline_from(self, now) -> Any:
        return now + timedelta(days=self.deadline_days) if self.deadline_days else None

    # --- checks --------------------------------------------------------------------

    def problems(self) -> dict[str, list[str]]:
        """Every reason the rule cannot be saved as it is, by field (empty when it can)."""
        found: dict[str, list[str]] = {}

        def add(field: str, message: str) -> None:
            found.setdefault(field, []).append(message)

        if not (self.name or "").strip():
            add("name", "Give the rule a name.")
        self._check_conditions(add)
        self._check_target(add)
        if not 1 <= (self.priority or 0) <= 10:
            add("priority", "From 1 (low) to 10.")
        if self.deadline_days is not None and not 1 <= self.deadline_days <= 365:
            add("deadline_days", "From 1 to 365 days.")
        tags = self.tags if isinstance(self.tags, list) else None
        if tags is None or len(tags) > MAX_LIST or any(not isinstance(t, str) or len(t) > 50 for t in tags):
            add("tags", f"At most {MAX_LIST} tags of at most 50 characters each.")
        return found

    def _check_conditions(self, add) -> None:
        if self.is_fallback and self.owner_id:
            other = (
                AssignmentRule.objects.filter(owner_id=self.owner_id, is_fallback=True)
                .exclude(pk=self.pk)
                .first()
            )
            if other is not None:
                add("is_fallback", f"“{other.name}” is the fallback already; a user has one at most.")
        if self.is_fallback and self.has_conditions:
            add(
                "is_fallback",
                "The fallback takes every document no other rule took: leave its conditions empty.",
            )
        for field, shape, example in (
            ("extensions", EXTENSION_SHAPE, ".pdf"),
            ("content_types", CONTENT_TYPE_SHAPE, "application/pdf or text/*"),
        ):
            values = getattr(self, field)
            if not isinstance(values, list) or len(values) > MAX_LIST:
                add(field, f"A list of at most {MAX_LIST} values.")
                continue
            wrong = [str(value)[:40] for value in values if not re.match(shape, str(value))]
            if wrong:
                add(field, f"Not like {example}: {', '.join(wrong)}.")
        if self.name_pattern and self.name_pattern_kind == NamePatternKind.REGEX:
            try:
                rules.compile_pattern(self.name_pattern)
            except rules.PatternError as exc:
                add("name_pattern", str(exc))
        if self.name_pattern_kind not in NamePatternKind.values:
            add("name_pattern_kind", f"One of: {', '.join(NamePatternKind.values)}.")
        if self.document_kind and self.document_kind not in DocumentKind.values:
            add("document_kind", f"One of: {', '.join(DocumentKind.values)}.")
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            add("max_size", "The largest size must not be below the smallest.")

    def _check_target(self, add) -> None:
        if self.target_batch_id and self.template_id:
            add("template", "Choose a target batch or a template to make new batches from, not both.")
            return
        if not self.target_batch_id and not self.template_id:
            add("target_batch", "Choose the batch documents go to, or a template to make new batches from.")
            return
        if self.target_batch_id:
            for field in NEW_BATCH_FIELDS:
                if getattr(self, field):
                    add(field, "Only for new batches made from a template; this rule targets a batch.")
            if self.owner_id and not self.owner_may_change_target():
                add(
                    "target_batch",
                    "The rule's owner may not change this batch: a rule only targets batches its owner may change.",
                )
        else:
            if self.owner_id and not self.owner_may_use_template():
                add("template", "The rule's owner may not use this template.")
        if self.group_by:
            try:
                rules.compile_pattern(self.group_by)
            except rules.PatternError as exc:
                add("group_by", str(exc))
        try:
            rules.check_name_pattern(self.batch_name, grouped=bool(self.group_by))
        except rules.PatternError as exc:
            add("batch_name", str(exc))

    def owner_may_change_target(self) -> bool:
        batches = self._meta.get_field("target_batch").related_model.objects
        return batches.changeable_by(self.owner).filter(pk=self.target_batch_id).exists()

    def owner_may_use_template(self) -> bool:
        return BatchTemplate.objects.visible_to(self.owner).filter(pk=self.template_id).exists()

    def clean(self) -> None:
        # The admin's forms: the owner is set when an admin adds a rule, after this runs.
        problems = self.problems()
        if problems:
            raise ValidationError({field: messages for field, messages in problems.items()})


class AssignmentRuleUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(AssignmentRule, on_delete=models.CASCADE)


class AssignmentRuleGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(AssignmentRule, on_delete=models.CASCADE)


class RuleBatch(models.Model):
    """A batch a rule made, and for which group: the rule's next upload that day adds to it while it is a draft."""

    rule = models.ForeignKey(AssignmentRule, on_delete=models.CASCADE, related_name="made_batches")
    batch = models.OneToOneField("batches.JobBatch", on_delete=models.CASCADE, related_name="made_by_rule")
    group = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.rule_id} → {self.batch_id} ({self.group})"


class InboxItemQuerySet(models.QuerySet):
    def of(self, user) -> "InboxItemQuerySet":
        """The user's inbox: documents they uploaded that no rule took and no job grades yet."""
        if not is_signed_in(user):
            return self.none()
        waiting = ~models.Exists(GradingJob.objects.filter(document=models.OuterRef("pk")))
        return self.filter(owner=user).filter(waiting)


class InboxItem(models.Model):
    """A document an inbox upload kept because no rule took it; its id is the document's."""

    document = models.OneToOneField(
        Document, primary_key=True, on_delete=models.CASCADE, related_name="inbox_item"
    )
    owner = models.ForeignKey(conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_items")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InboxItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-document_id"]

    def __str__(self) -> str:
        return str(self.document_id)
