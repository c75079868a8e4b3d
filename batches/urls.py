from django.urls import path

from batches import views, views_bulk, views_exemplars, views_inbox, views_templates
from batches.actions import ACTIONS

app_name = "batches"

urlpatterns = [
    path("batches", views.batch_list, name="list"),
    path("batches/live", views.batch_list_live, name="list-live"),
    path("batches/bulk", views_bulk.batch_bulk, name="bulk"),
    path("batches/new", views.batch_new, name="new"),
    path("batches/new/template", views.template_preview, name="template-preview"),
    path("batches/new/provider-check", views.new_batch_provider_check, name="new-provider-check"),
    path("batches/new/scratch", views_inbox.batch_new_scratch, name="new-scratch"),
    path(
        "batches/new/scratch/provider-check",
        views_inbox.scratch_provider_check,
        name="new-scratch-provider-check",
    ),
    path("batches/<int:pk>", views.batch_detail, name="detail"),
    path("batches/<int:pk>/live", views.batch_live, name="live"),
    path("batches/<int:pk>/documents", views.batch_documents, name="documents"),
    path("batches/<int:pk>/upload", views.batch_upload, name="upload"),
    path("batches/<int:pk>/delete", views.batch_delete, name="delete"),
    path("batches/<int:pk>/edit", views.batch_edit, name="edit"),
    path("batches/<int:pk>/edit/provider-check", views.edit_provider_check, name="edit-provider-check"),
    path("batches/<int:pk>/share", views.batch_share, name="share"),
    path("batches/<int:pk>/unshare", views.batch_unshare, name="unshare"),
    path("batches/<int:pk>/calibrate", views.batch_calibrate, name="calibrate"),
    # The template editor (batches/views_templates.py).
    path("templates", views_templates.template_list, name="templates"),
    path("templates/new", views_templates.template_new, name="template-new"),
    path("templates/<int:pk>", views_templates.template_edit, name="template-edit"),
    path("templates/<int:pk>/copy", views_templates.template_copy, name="template-copy"),
    path("templates/<int:pk>/delete", views_templates.template_delete, name="template-delete"),
    path(
        "batches/<int:pk>/save-as-template",
        views_templates.batch_save_as_template,
        name="save-as-template",
    ),
    path("templates/<int:pk>/exemplars", views_exemplars.template_exemplars, name="template-exemplars"),
    path(
        "templates/<int:pk>/exemplars/<int:eid>/remove",
        views_exemplars.template_exemplar_remove,
        name="template-exemplar-remove",
    ),
    path("batches/<int:pk>/jobs/<int:job_id>", views.job_detail, name="job"),
    path("batches/<int:pk>/jobs/<int:job_id>/remove", views.job_remove, name="job-remove"),
    path("batches/<int:pk>/jobs/<int:job_id>/feedback.pdf", views.job_feedback, name="job-feedback"),
    path("batches/<int:pk>/roster", views.batch_roster, name="roster"),
    # The inbox, assignment rules and the queue (batches/views_inbox.py).
    path("inbox", views_inbox.inbox, name="inbox"),
    path("inbox/assign", views_inbox.inbox_assign, name="inbox-assign"),
    path("inbox/<int:pk>/discard", views_inbox.inbox_discard, name="inbox-discard"),
    path("rules", views_inbox.rule_list, name="rules"),
    path("rules/new", views_inbox.rule_new, name="rule-new"),
    path("rules/<int:pk>/edit", views_inbox.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete", views_inbox.rule_delete, name="rule-delete"),
    path("rules/<int:pk>/move", views_inbox.rule_move, name="rule-move"),
    path("rules/<int:pk>/share", views_inbox.rule_share, name="rule-share"),
    path("rules/<int:pk>/unshare", views_inbox.rule_unshare, name="rule-unshare"),
    path("queue", views_inbox.queue_page, name="queue"),
    path("queue/live", views_inbox.queue_live, name="queue-live"),
    path("batches/<int:pk>/jobs/<int:job_id>/restore", views.job_restore, name="job-restore"),
    path("batches/<int:pk>/jobs/<int:job_id>/review/accept", views.review_accept, name="review-accept"),
    path("batches/<int:pk>/compare", views.batch_compare, name="compare"),
    path("batches/<int:pk>/jobs/<int:job_id>/review/withdraw", views.review_withdraw, name="review-withdraw"),
    # One URL per batch action (batches/actions.py), named after it: batches:start, …
    *[
        path(f"batches/<int:pk>/{action.name}", views.batch_action, {"action": action.name}, name=action.name)
        for action in ACTIONS
    ],
]
