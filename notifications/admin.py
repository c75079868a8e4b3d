from django.contrib import admin

from notifications.models import BatchWebhook, DeliveryAttempt, Notification, NotificationPreference


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "started_at", "duration_ms", "ok", "status_code", "error"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "event", "channel", "recipient", "webhook", "status", "attempts", "created_at"]
    list_filter = ["event", "channel", "status"]
    search_fields = ["title", "batch__name", "recipient__username", "webhook__url"]
    raw_id_fields = ["batch", "recipient", "webhook"]
    readonly_fields = ["attempts", "sent_at", "read_at", "last_error", "next_attempt_at", "lease_expires_at"]
    inlines = [DeliveryAttemptInline]


@admin.register(BatchWebhook)
class BatchWebhookAdmin(admin.ModelAdmin):
    list_display = ["url", "batch", "is_active", "created_by", "created_at"]
    list_filter = ["is_active"]
    raw_id_fields = ["batch", "created_by"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "channel", "event", "enabled"]
    list_filter = ["channel", "event", "enabled"]
