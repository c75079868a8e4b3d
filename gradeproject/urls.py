from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from core.auth_views import AdminSignInForm, SignInForm, SignOutView
from core.error_pages import favicon
from health.views import healthz

admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("api/", include("notifications.urls")),
    path("api/", include("gradeproject.api_urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=SignInForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("", RedirectView.as_view(url="/batches", permanent=False), name="home"),
    path("batches/", RedirectView.as_view(url="/batches", permanent=False, query_string=True)),
    path("", include("notifications.web_urls")),
    path("", include("accounts.web_urls")),
    path("", include("batches.urls")),
]

handler404 = "core.api_errors.not_found"
