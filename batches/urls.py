from django.urls import path

from batches import views
from batches.actions import ACTIONS

app_name = "batches"

urlpatterns = [
    path("batches", views.batch_list, name="list"),
    path("batches/live", views.batch_list_live, name="list-live"),
    path("batches/new", views.batch_new, name="new"),
    path("batches/new/template", views.template_preview, name="template-preview"),
    path("batches/<int:pk>", views.batch_detail, name="detail"),
    path("batches/<int:pk>/live", views.batch_live, name="live"),
    path("batches/<int:pk>/documents", views.batch_documents, name="documents"),
    path("batches/<int:pk>/upload", views.batch_upload, name="upload"),
    path("batches/<int:pk>/delete", views.batch_delete, name="delete"),
    path("batches/<int:pk>/edit", views.batch_edit, name="edit"),
    path("batches/<int:pk>/share", views.batch_share, name="share"),
    path("batches/<int:pk>/unshare", views.batch_unshare, name="unshare"),
    path("batches/<int:pk>/calibrate", views.batch_calibrate, name="calibrate"),
    path("batches/<int:pk>/jobs/<int:job_id>", views.job_detail, name="job"),
    path("batches/<int:pk>/jobs/<int:job_id>/remove", views.job_remove, name="job-remove"),
    path("batches/<int:pk>/jobs/<int:job_id>/restore", views.job_restore, name="job-restore"),
    path("batches/<int:pk>/jobs/<int:job_id>/review/withdraw", views.review_withdraw, name="review-withdraw"),
    # One URL per batch action (batches/actions.py), named after it: batches:start, …
    *[
        path(f"batches/<int:pk>/{action.name}", views.batch_action, {"action": action.name}, name=action.name)
        for action in ACTIONS
    ],
]
