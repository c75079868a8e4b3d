from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("gradeproject.api_urls")),
]

handler404 = "gradeproject.api_errors.not_found"
