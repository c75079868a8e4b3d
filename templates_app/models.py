import copy
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from core.names import with_suffix
from core.permissions import Level, filter_accessible, is_signed_in
from grading.merge import deep_merge
from grading.schema import SettingsError, validate_job_structure, validate_settings
from templates_app.prebuilt import PREBUILT_SLUGS


class TemplateCategory(models.TextChoices):
    ACADEMIC = "academic", "Academic"
    BUSINESS = "business", "Business"
    RESEARCH = "research", "Research"
    OTHER = "other", "Other"


# Inserts tried with a new slug when a request made at the same moment took the one picked.
SLUG_TRIES = 5


class BatchTemplateQuerySet(models.QuerySet):
    def accessible_to(self, user, level: Level) -> "BatchTemplateQuerySet":
        """Templates the user owns or holds `level` on; public ones also count as viewable."""
        accessible = filter_accessible(self, user, level)
        if level == Level.VIEW and is_signed_in(user):
            return accessible | self.filter(is_public=True)
        return accessible

    def visible_to(self, user) -> "BatchTemplateQuerySet":
        """Public templates, the user's own, and those shared with the user or a group."""
        return self.accessible_to(user, Level.VIEW)

    def changeable_by(self, user) -> "BatchTemplateQuerySet":
        return self.accessible_to(user, Level.CHANGE)

    def manageable_by(self, user) -> "BatchTemplateQuerySet":
        return self.accessible_to(user, Level.MANAGE)

    def unique_slug(self, name: str) -> str:
        """A slug made from the name that no template has yet ("essays", "essays-2", …)."""
        base = slugify(name)[:90] or "template"
        if base.isdigit():
            # Batches name their template by id or slug: a numeric slug would be ambiguous.
            base = f"template-{base}"
        slug, n = base, 2
        while self.model.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    def create_with_free_slug(self, **fields: Any) -> "BatchTemplate":
        """A new template under the first free slug made from its name (`slug`, if given, is that first pick).

        Two requests at once (Copy clicked twice, a form sent twice) may pick
        the same free slug: the unique index refuses the later insert, which
        then takes the next free slug rather than failing. The insert is in
        its own savepoint so the refusal leaves the request's transaction usable.
        """
        for attempt in range(SLUG_TRIES):
            slug = fields.pop("slug", None) or self.unique_slug(fields["name"])
            try:
                with transaction.atomic():
                    return self.create(slug=slug, **fields)
            except IntegrityError:
                if attempt == SLUG_TRIES - 1 or not self.model.objects.filter(slug=slug).exists():
                    raise
        raise AssertionError("unreachable: the last try returns or raises")


class BatchTemplate(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    category = models.CharField(
        max_length=20, choices=TemplateCategory.choices, default=TemplateCategory.OTHER
    )
    # provider, model(s), temperature, instructions, rubric, expected_words
    default_settings = models.JSONField(default=dict)
    # {"naming": "{batch} – {filename}", "per_model": true}
    job_structure = models.JSONField(default=dict, blank=True)
    # max_attempts, backoff_base_s, backoff_max_s, concurrency, stagger_ms,
    # timeout_s, requests_per_minute, auto_start
    processing_rules = models.JSONField(default=dict, blank=True)
    usage_count = models.PositiveIntegerField(default=0)
    is_public = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="batch_templates",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BatchTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("manage_batchtemplate", "Can share the template")]
        constraints = [
            models.CheckConstraint(
                condition=Q(category__in=TemplateCategory.values), name="template_category_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def settings_layer(self) -> dict[str, Any]:
        """The template's part of the effective settings: defaults plus processing rules."""
        return deep_merge(self.default_settings, {"processing": self.processing_rules or {}})

    def clean(self) -> None:
        try:
            validate_settings(self.settings_layer())
            validate_job_structure(self.job_structure)
        except SettingsError as exc:
            raise ValidationError({"default_settings": [str(exc)]}) from None

    @property
    def is_prebuilt(self) -> bool:
        """One of the templates the project installs (templates_app/prebuilt.py).

        The migrations refresh them by slug, so the web editor keeps them
        read-only: a teacher changes a copy of one, never the original.
        """
        return self.slug in PREBUILT_SLUGS

    def copy_for(self, owner, name: str | None = None) -> "BatchTemplate":
        """The user's own editable copy: same settings, rubric and rules, private, unused."""
        name = (name or with_suffix(self.name, "(copy)"))[:200]
        return BatchTemplate.objects.create_with_free_slug(
            name=name,
            description=self.description,
            category=self.category,
            default_settings=copy.deepcopy(self.default_settings),
            job_structure=copy.deepcopy(self.job_structure),
            processing_rules=copy.deepcopy(self.processing_rules),
            owner=owner,
        )

    def deletion_refusal(self) -> str | None:
        """Why the template cannot be deleted now, as a sentence; None when it can."""
        # Draft and paused batches read their settings from the template; deleting
        # it under them would leave them without a rubric.
        in_use = self.batches.exclude(status="archived").count()
        if in_use:
            return (
                f"{in_use} batch(es) that are not archived use this template; archive or delete them first."
            )
        return None

    def count_use(self) -> None:
        # An F() update, so concurrent batch creations never lose a count.
        BatchTemplate.objects.filter(pk=self.pk).update(usage_count=F("usage_count") + 1)


class BatchTemplateUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(BatchTemplate, on_delete=models.CASCADE)


class BatchTemplateGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(BatchTemplate, on_delete=models.CASCADE)
