from django.contrib import admin

from core.admin_access import SharingModelAdmin
from templates_app.models import BatchTemplate


@admin.register(BatchTemplate)
class BatchTemplateAdmin(SharingModelAdmin):
    list_display = ("name", "slug", "category", "usage_count", "is_public", "owner", "updated_at")
    list_filter = ("category", "is_public")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("usage_count", "created_at", "updated_at")
    raw_id_fields = ("owner",)

    def get_queryset(self, request):
        # The mixin's get_queryset keeps public templates and what the user owns or is shared.
        return super().get_queryset(request).select_related("owner")
