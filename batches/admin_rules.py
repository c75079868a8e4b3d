"""Assignment rules and the inbox in the admin (imported by batches/admin.py).

Staff who are not superusers see the rules they own or that are shared with
them, change those they may change, and share them on guardian's object
permission pages (as one level: view, change, manage) where they may share,
as for batches and templates. A rule may be pointed only at batches its owner
may change and templates its owner may view (AssignmentRule.clean(), the
API's check). The batches a rule made are listed only where the reader may
view them: a rule shared with colleagues makes batches of theirs. The inbox is listed for
superusers, read-only: its documents are assigned or discarded on /inbox.
"""

from django.contrib import admin

from batches.models import JobBatch
from batches.rule_models import AssignmentRule, InboxItem, RuleBatch
from core.admin_access import SharingModelAdmin
from core.permissions import Level, is_superuser


class RuleBatchInline(admin.TabularInline):
    model = RuleBatch
    fields = ("batch", "group", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "batch made by the rule"
    verbose_name_plural = "batches made by the rule"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        visible = JobBatch.objects.visible_to(request.user).values("pk")
        return super().get_queryset(request).filter(batch__in=visible).select_related("batch")


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(SharingModelAdmin):
    list_display = ("name", "owner", "position", "is_active", "is_fallback", "target")
    list_filter = ("is_active", "is_fallback", "document_kind")
    search_fields = ("name", "owner__username")
    ordering = ("owner", "is_fallback", "position", "id")
    raw_id_fields = ("owner",)
    related_levels = {"target_batch": Level.CHANGE}
    inlines = [RuleBatchInline]
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "template", "target_batch")

    @admin.display(description="Sends to")
    def target(self, rule: AssignmentRule) -> str:
        if rule.target_batch_id:
            return f"batch “{rule.target_batch}”"
        if rule.template_id:
            grouped = f", one per group of {rule.group_by}" if rule.group_by else ""
            return f"new batch from “{rule.template}”{grouped}"
        return "— (its batch or template was deleted)"


@admin.register(InboxItem)
class InboxItemAdmin(admin.ModelAdmin):
    list_display = ("document", "owner", "reason", "created_at")
    search_fields = ("document__original_name", "owner__username")
    readonly_fields = ("document", "owner", "reason", "created_at")

    def has_module_permission(self, request) -> bool:
        return is_superuser(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_superuser(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_superuser(request.user)
