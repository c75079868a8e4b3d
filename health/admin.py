from django.contrib import admin

from health.models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["node", "seen_at", "pid"]
    readonly_fields = ["node", "seen_at", "pid"]
