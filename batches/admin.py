from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.html import format_html

from batches.actions import ACTIONS, BatchAction
from batches.exceptions import InvalidTransition
from batches.models import JobBatch
from core.admin_access import SharingModelAdmin, ThroughParentInlineMixin
from grading.admin import connection_column
from grading.models import GradingJob
from grading.progress import Progress


class GradingJobInline(ThroughParentInlineMixin, admin.TabularInline):
    model = GradingJob
    fk_name = "batch"
    fields = ("name", "document", "connection", "model", "status", "attempts", "score", "last_error")
    readonly_fields = fields
    connection = connection_column
    extra = 0
    show_change_link = True
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("document", "result")

    @admin.display(description="Score")
    def score(self, job: GradingJob) -> str:
        result = getattr(job, "result", None)
        if result is None:
            return "—"
        return f"{result.final_score:g} / {result.max_score:g}" + (
            " (reviewed)" if result.is_reviewed else ""
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _batch_action(batch_action: BatchAction):
    """The admin action `<name>_batches` for one batch action of batches/actions.py.

    It calls the state machine and reports each refusal. Batches the user may
    not act on at the action's level are refused one by one, duplicate too:
    a copy would keep the documents after the original is unshared.
    """

    def run(modeladmin, request, queryset: QuerySet[JobBatch]):
        if batch_action.confirm and request.POST.get("confirmed") != "yes":
            # Asked first, as on the batch's page: an intermediate page; its POST runs the action.
            return TemplateResponse(
                request,
                "admin/batches/jobbatch/confirm_action.html",
                {
                    **modeladmin.admin_site.each_context(request),
                    "title": batch_action.admin_description,
                    "opts": modeladmin.model._meta,
                    "queryset": queryset,
                    "confirm": batch_action.confirm,
                    "action_name": f"{batch_action.name}_batches",
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                    "confirm_label": f"Yes, {batch_action.label.lower()} them",
                },
            )
        done, refused = 0, []
        allowed_ids = set(
            queryset.accessible_to(request.user, batch_action.level).values_list("pk", flat=True)
        )
        for batch in queryset:
            if batch.pk not in allowed_ids:
                refused.append(
                    f"“{batch.name}” (#{batch.pk}): you may view this batch but not {batch_action.level.verb}."
                )
                continue
            try:
                batch_action.run(batch, request.user)
                done += 1
            except InvalidTransition as exc:
                refused.append(f"“{batch.name}” (#{batch.pk}): {exc.detail}")
        if done:
            modeladmin.message_user(request, f"{batch_action.done}: {done} batch(es).", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, f"Refused — {line}", messages.WARNING)

    run.__name__ = f"{batch_action.name}_batches"
    run.short_description = batch_action.admin_description
    # Staff may use the admin's actions at all; which batches they may act on is
    # decided per batch above, at the action's level.
    run.allowed_permissions = ("change",)
    return run


@admin.register(JobBatch)
class JobBatchAdmin(SharingModelAdmin):
    list_display = (
        "name",
        "status",
        "priority",
        "tag_list",
        "owner",
        "deadline",
        "progress_bar",
        "created_at",
    )
    # Only templates of batches the user sees: a plain filter would list every template's name.
    list_filter = (
        "status",
        "priority",
        ("template", admin.RelatedOnlyFieldListFilter),
        "created_at",
        "deadline",
    )
    search_fields = ("name", "description", "tags")
    readonly_fields = ("status", "created_at", "started_at", "completed_at", "archived_at")
    autocomplete_fields = ()
    raw_id_fields = ("owner",)
    inlines = [GradingJobInline]
    actions = [_batch_action(batch_action) for batch_action in ACTIONS]

    def get_queryset(self, request):
        # The mixin's get_queryset keeps what the user may view.
        return super().get_queryset(request).select_related("owner", "template").with_progress()

    # Deleting goes through the model, which refuses while work is queued or in
    # flight; the admin's own delete would remove jobs a worker is grading.
    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.has_work_in_flight():
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj: JobBatch) -> None:
        obj.delete_batch()

    def delete_queryset(self, request, queryset: QuerySet[JobBatch]) -> None:
        for batch in queryset:
            try:
                batch.delete_batch()
            except InvalidTransition as exc:
                self.message_user(
                    request, f"Refused — “{batch.name}” (#{batch.pk}): {exc.detail}", messages.WARNING
                )

    @admin.display(description="Tags")
    def tag_list(self, batch: JobBatch) -> str:
        return ", ".join(batch.tags)

    @admin.display(description="Progress")
    def progress_bar(self, batch: JobBatch):
        progress = Progress.from_counts(batch.known_progress())
        total, done = progress.total, progress.done
        # Whole percent for the bar's width, from the counts (not a rounding of Progress.percent).
        percent = round(100 * done / total) if total else 0
        return format_html(
            '<div title="{}/{} done" style="width:120px;background:#e5e7eb;border-radius:3px">'
            '<div style="width:{}%;background:#16a34a;height:10px;border-radius:3px"></div></div>'
            "<small>{}/{}</small>",
            done,
            total,
            percent,
            done,
            total,
        )


# Assignment rules and the inbox register themselves there.
from batches import admin_rules  # noqa: E402, F401
