from django.urls import path

from notifications import web

app_name = "notifications"

urlpatterns = [
    path("notifications", web.notification_list, name="inbox"),
    path("notifications/<int:pk>/read", web.mark_read, name="read"),
    path("notifications/read-all", web.mark_all_read, name="read-all"),
    path("notifications/preferences", web.save_preferences, name="preferences"),
]
