"""The API's URLs, included at /api/ by gradeproject.urls.

Paths carry no trailing slash, and one is accepted too (a router whose trailing slash is `/?`),
so `/api/batches` and `/api/batches/` are the same resource. Views added
later (sharing, analytics, export, review) append their paths here.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from batches.api import JobBatchViewSet
from batches.api_exemplars import BatchCalibrateView, TemplateExemplarsView, TemplateExemplarView
from batches.api_inbox import AssignmentRuleViewSet, InboxAssignView, InboxItemView, InboxView, QueueView
from batches.api_results import (
    BatchAnalyticsView,
    BatchEstimateView,
    BatchExportView,
    BatchRosterView,
    JobFeedbackView,
    JobReviewView,
)
from core.api_auth import ObtainTokenView
from grading.api import GradingJobViewSet, ProvidersView
from templates_app.api import BatchTemplateViewSet


class Router(DefaultRouter):
    include_format_suffixes = False

    def __init__(self):
        super().__init__()
        # Set after __init__, which only knows "/" or "": the regex makes the slash optional.
        self.trailing_slash = "/?"


router = Router()
router.register("batches", JobBatchViewSet, basename="batch")
router.register("batch-templates", BatchTemplateViewSet, basename="batch-template")
router.register("jobs", GradingJobViewSet, basename="job")
router.register("assignment-rules", AssignmentRuleViewSet, basename="assignment-rule")

urlpatterns = [
    re_path(r"^auth/token/?$", ObtainTokenView.as_view(), name="api-token"),
    re_path(
        r"^batches/(?P<pk>[0-9]{1,18})/analytics/?$", BatchAnalyticsView.as_view(), name="batch-analytics"
    ),
    re_path(r"^batches/(?P<pk>[0-9]{1,18})/estimate/?$", BatchEstimateView.as_view(), name="batch-estimate"),
    re_path(r"^batches/(?P<pk>[0-9]{1,18})/export/?$", BatchExportView.as_view(), name="batch-export"),
    re_path(r"^batches/(?P<pk>[0-9]{1,18})/roster/?$", BatchRosterView.as_view(), name="batch-roster"),
    re_path(r"^jobs/(?P<pk>[0-9]{1,18})/review/?$", JobReviewView.as_view(), name="job-review"),
    re_path(r"^jobs/(?P<pk>[0-9]{1,18})/feedback\.pdf$", JobFeedbackView.as_view(), name="job-feedback"),
    re_path(
        r"^batches/(?P<pk>[0-9]{1,18})/calibrate/?$", BatchCalibrateView.as_view(), name="batch-calibrate"
    ),
    re_path(
        r"^batch-templates/(?P<pk>[0-9]{1,18})/exemplars/?$",
        TemplateExemplarsView.as_view(),
        name="template-exemplars",
    ),
    re_path(
        r"^batch-templates/(?P<pk>[0-9]{1,18})/exemplars/(?P<eid>[0-9]{1,18})/?$",
        TemplateExemplarView.as_view(),
        name="template-exemplar",
    ),
    re_path(r"^inbox/?$", InboxView.as_view(), name="inbox"),
    re_path(r"^inbox/assign/?$", InboxAssignView.as_view(), name="inbox-assign"),
    re_path(r"^inbox/(?P<pk>[0-9]{1,18})/?$", InboxItemView.as_view(), name="inbox-item"),
    re_path(r"^queue/?$", QueueView.as_view(), name="queue"),
    re_path(r"^providers/?$", ProvidersView.as_view(), name="providers"),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]
