from django.contrib import admin
from django.urls import include, path

from health.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/", include("notifications.urls")),
    path("api/", include("gradeproject.api_urls")),
]

handler404 = "gradeproject.api_errors.not_found"
