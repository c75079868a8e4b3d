from django import forms
from django.contrib import admin

from core.admin_access import ObjectAccessAdminMixin, ThroughParentInlineMixin
from core.permissions import Level
from grading.models import Document, GradingJob, GradingResult, ReviewError
from grading.providers import connection_label

REVIEW_INPUTS = ("reviewed_score", "reviewed_criteria", "review_comment")


@admin.display(description="Connection", ordering="provider")
def connection_column(self, obj) -> str:
    """The connection a job or result graded through, with its kind (its `provider`): `local (openai)`."""
    return connection_label(obj.provider) if obj.provider else ""


# Who sees what is decided by the models' visible_to querysets (through the
# job's batch; a job in no batch is its owner's), through ObjectAccessAdminMixin.


@admin.register(Document)
class DocumentAdmin(ObjectAccessAdminMixin, admin.ModelAdmin):
    list_display = ("original_name", "content_type", "size", "owner", "created_at")
    search_fields = ("original_name", "sha256")
    readonly_fields = ("sha256", "size", "content_type", "text", "extraction_error", "created_at")
    raw_id_fields = ("owner",)


class ReviewForm(forms.ModelForm):
    """Checks a review against the job's rubric as the API does, with the errors on their fields."""

    def clean(self):
        data = super().clean()
        score, criteria = data.get("reviewed_score"), data.get("reviewed_criteria") or []
        if score is None and not criteria:
            return data  # no review, or one being withdrawn
        try:
            self.instance.clean_review(score, criteria)
        except ReviewError as error:
            self.add_error("reviewed_score" if error.field == "score" else "reviewed_criteria", str(error))
        return data


def save_review(user, result: GradingResult) -> None:
    """Record who reviewed and when, as the API does; an emptied review is withdrawn."""
    if result.reviewed_score is None and not result.reviewed_criteria:
        result.clear_review()
    else:
        result.record_review(user, result.reviewed_score, result.reviewed_criteria, result.review_comment)


class GradingResultInline(ThroughParentInlineMixin, admin.StackedInline):
    model = GradingResult
    form = ReviewForm
    extra = 0
    can_delete = False
    connection = connection_column
    readonly_fields = (
        "connection",
        "model",
        "score",
        "max_score",
        "criteria",
        "feedback",
        "input_tokens",
        "output_tokens",
        "cost",
        "latency_ms",
        "raw_response",
        "created_at",
        "reviewer",
        "reviewed_at",
    )
    fields = readonly_fields[:12] + (
        "reviewed_score",
        "reviewed_criteria",
        "review_comment",
        "reviewer",
        "reviewed_at",
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GradingJob)
class GradingJobAdmin(ObjectAccessAdminMixin, admin.ModelAdmin):
    list_display = ("name", "batch", "status", "connection", "model", "attempts", "created_at")
    connection = connection_column
    list_filter = ("status", "provider", "model")
    search_fields = ("name", "document__original_name", "last_error")
    raw_id_fields = ("batch", "document", "owner")
    readonly_fields = (
        "settings",
        "attempts",
        "last_error",
        "next_attempt_at",
        "lease_expires_at",
        "claimed_by",
        "started_at",
        "completed_at",
        "duration_ms",
        # The engine's own bookkeeping: which jobs a dead worker held, how often the provider failed.
        "suspect",
        "provider_retries",
        "removed_from",
        # Decided when the batch starts (grading.economy), moved to real time by the economy engine.
        "delivery",
        # What the provider billed for calls that produced no grade: a record, not a setting.
        "billed_input_tokens",
        "billed_output_tokens",
        "billed_cost",
    )
    inlines = [GradingResultInline]
    # A job goes only into a batch its editor may change, and grades only a document
    # its editor may change (of such a batch, or their own upload not yet in one), as
    # POST /api/batches/{id}/jobs: a viewer cannot copy documents out of a batch.
    related_levels = {"batch": Level.CHANGE, "document": Level.CHANGE}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("batch")

    def save_model(self, request, obj, form, change):
        # A job taken out of its batch stays with the batch's owner, as JobBatch.remove_job does.
        changed = form.changed_data
        if change and "batch" in changed and obj.batch_id is None and "owner" not in changed:
            was = GradingJob.objects.filter(pk=obj.pk).values_list("batch__owner", flat=True).first()
            if was is not None:
                obj.owner_id = was
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        # A reviewer's grade entered in the admin records who reviewed and when,
        # as the API does; the AI's score is read-only and kept.
        for result in formset.save(commit=False):
            save_review(request.user, result)
        formset.save_m2m()


@admin.register(GradingResult)
class GradingResultAdmin(ObjectAccessAdminMixin, admin.ModelAdmin):
    list_display = ("job", "connection", "model", "score", "max_score", "reviewed_score", "created_at")
    connection = connection_column
    list_filter = ("provider", "model")
    raw_id_fields = ("job", "reviewer")

    related_levels = {"job": Level.CHANGE}
    form = ReviewForm

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("job")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in REVIEW_INPUTS]

    def save_model(self, request, obj, form, change):
        save_review(request.user, obj)
