from django.urls import path
from rest_framework.routers import SimpleRouter

from notifications.views import BatchWebhookViewSet, NotificationViewSet, PreferencesView

router = SimpleRouter(trailing_slash=False)
router.register("notifications", NotificationViewSet, basename="notification")
router.register(r"batches/(?P<batch_id>\d+)/webhooks", BatchWebhookViewSet, basename="batch-webhook")

urlpatterns = [
    path("notifications/preferences", PreferencesView.as_view(), name="notification-preferences"),
    *router.urls,
]
