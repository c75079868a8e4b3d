from django.contrib import admin

from gradeproject.admin_access import ObjectAccessAdminMixin, ThroughParentInlineMixin
from gradeproject.permissions import Level
from grading.models import Document, GradingJob, GradingResult

# Who sees what is decided by the models' visible_to querysets (owner, or
# shared through the batch), through ObjectAccessAdminMixin.


@admin.register(Document)
class DocumentAdmin(ObjectAccessAdminMixin, admin.ModelAdmin):
    list_display = ("original_name", "content_type", "size", "owner", "created_at")
    search_fields = ("original_name", "sha256")
    readonly_fields = ("sha256", "size", "content_type", "text", "extraction_error", "created_at")
    raw_id_fields = ("owner",)


class GradingResultInline(ThroughParentInlineMixin, admin.StackedInline):
    model = GradingResult
    extra = 0
    can_delete = False
    readonly_fields = (
        "provider",
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
    list_display = ("name", "batch", "status", "provider", "model", "attempts", "created_at")
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
    )
    inlines = [GradingResultInline]
    # A job goes only into a batch its editor may change.
    related_levels = {"batch": Level.CHANGE}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("batch")

    def save_formset(self, request, form, formset, change):
        # A reviewer's grade entered in the admin records who reviewed and when,
        # as the API does; the AI's score is read-only and kept.
        for result in formset.save(commit=False):
            if result.reviewed_score is not None:
                result.record_review(
                    request.user, result.reviewed_score, result.reviewed_criteria, result.review_comment
                )
        formset.save_m2m()


@admin.register(GradingResult)
class GradingResultAdmin(ObjectAccessAdminMixin, admin.ModelAdmin):
    list_display = ("job", "provider", "model", "score", "max_score", "reviewed_score", "created_at")
    list_filter = ("provider", "model")
    raw_id_fields = ("job", "reviewer")

    related_levels = {"job": Level.CHANGE}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("job")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if not f.name.startswith("review")]
