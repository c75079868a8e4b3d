"""The template editor on the web.

/templates                        the templates the user may use: their own, shared, pre-built
/templates/new                    a new template
/templates/<id>                   the editor; read-only for a pre-built template or a view-only share
/templates/<id>/copy              the user's own copy (POST), opened in the editor
/templates/<id>/delete            asks, then deletes (its owner; not while batches use it)
/batches/<id>/save-as-template    a new template of the user's from a batch's settings (POST)

The same rules as the API (templates_app/api.py): anyone who may view a
template sees it and may copy it; saving needs change on it, deleting its
owner. A stranger gets a 404. Pre-built templates stay as installed: the
editor shows them read-only, and a save posted anyway is a 409 that says to
copy. Every save goes through the API's serializer (templates_app.serializers.save_template).
"""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from batches import form_tokens
from batches.forms_templates import (
    BLANK_ROWS_EDIT,
    BLANK_ROWS_NEW,
    MAX_CRITERIA_ROWS,
    MAX_LEVEL_ROWS,
    RowsRefused,
    TemplateForm,
    rows_of_post,
    version_of,
)
from batches.models import AssignmentRule, JobBatch
from core.permissions import can_change, can_delete, is_superuser
from grading.schema import SettingsError
from templates_app.models import BatchTemplate
from templates_app.serializers import save_template


def _template_or_404(request: HttpRequest, pk: int) -> BatchTemplate:
    return get_object_or_404(BatchTemplate.objects.visible_to(request.user).select_related("owner"), pk=pk)


def _refusal(user, template: BatchTemplate) -> tuple[int, str] | None:
    """Why the user may not save this template (409 pre-built, 403 view-only), or None."""
    if template.is_prebuilt:
        return 409, (
            f"“{template.name}” is a pre-built template and stays as it is. "
            "Copy it to make a version of your own to change."
        )
    if not can_change(user, template):
        return 403, (
            f"You can view “{template.name}” but not change it. "
            "Copy it to make a version of your own, or ask its owner for change access."
        )
    return None


@dataclass
class TemplateRow:
    """One template on the list, with what the user may do to it."""

    template: BatchTemplate
    can_change: bool
    can_delete: bool

    @property
    def criteria(self) -> list[dict]:
        return ((self.template.default_settings or {}).get("rubric") or {}).get("criteria") or []

    @property
    def points(self) -> float:
        return sum(criterion.get("points") or 0 for criterion in self.criteria)


@login_required
@require_GET
def template_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    templates = BatchTemplate.objects.visible_to(user).select_related("owner").order_by("name", "id")
    changeable = set(BatchTemplate.objects.changeable_by(user).values_list("pk", flat=True))
    rows = [
        TemplateRow(
            template,
            can_change=template.pk in changeable and not template.is_prebuilt,
            can_delete=not template.is_prebuilt and (template.owner_id == user.pk or is_superuser(user)),
        )
        for template in templates
    ]
    return render(request, "batches/templates.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _editor_post(request, None)
    return _editor(request, TemplateForm.of_template(None, BLANK_ROWS_NEW), None)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(request, pk)
    refusal = _refusal(request.user, template)
    if refusal is None:
        if request.method == "POST":
            return _editor_post(request, template)
        return _editor(request, TemplateForm.of_template(template, BLANK_ROWS_EDIT), template)
    status, message = refusal
    if request.method == "POST":
        if status == 403:
            raise PermissionDenied(message)
        messages.error(request, message)
        return _read_only(request, template, status=status)
    return _read_only(request, template)


def _editor_post(request: HttpRequest, template: BatchTemplate | None) -> HttpResponse:
    """A row button re-renders the form with the rows changed; "save" saves through the API's serializer."""
    op = request.POST.get("op") or "save"
    try:
        if op != "save":
            changed = TemplateForm.after(request.POST, op)
            if changed is None:
                return HttpResponseBadRequest("The editor has no such button.")
            form, said = changed
            return _editor(request, form, template, said=said)
        form = TemplateForm(request.POST, rows=rows_of_post(request.POST))
    except RowsRefused as exc:
        return HttpResponseBadRequest(str(exc))
    if form.is_valid():
        if template is not None and _saved_since_opened(form, template):
            return _editor(request, form, template, status=409)
        try:
            saved = _save(request, form, template)
        except ValidationError as exc:
            form.add_template_errors(exc.detail)
        else:
            if isinstance(saved, int):
                messages.info(request, "This form was already sent: here is the template it made.")
                return redirect("batches:template-edit", pk=saved)
            verb = "Saved" if template else "Created"
            messages.success(request, f"{verb} the template “{saved.name}”.")
            return redirect("batches:template-edit", pk=saved.pk)
    return _editor(request, form, template, status=400)


def _save(request: HttpRequest, form: TemplateForm, template: BatchTemplate | None) -> BatchTemplate | int:
    """Save through the API's serializer; a new template's form sent twice gives the first one's id."""
    if template is not None:
        return save_template(request, form.template_data(), template)
    saved, _ = form_tokens.create_once(
        request, form_tokens.FormKind.TEMPLATE, lambda: save_template(request, form.template_data())
    )
    return saved


def _saved_since_opened(form: TemplateForm, template: BatchTemplate) -> bool:
    """Someone saved the template after this editor opened: refuse once, rather than overwrite unseen.

    The form comes back with what was typed and the current version, so
    saving it again replaces the other save on purpose. A post without a
    version (an older page) is not checked.
    """
    opened, current = form.cleaned_data.get("version"), version_of(template)
    if not opened or opened == current:
        return False
    saved_at = timezone.localtime(template.updated_at).strftime("%H:%M")
    form.add_error(
        None,
        f"Someone saved this template since you opened it (at {saved_at}), and nothing of yours is "
        "saved yet. Open it in another tab to see their version; save again to replace it with "
        "what is below.",
    )
    form.data = form.data.copy()
    form.data["version"] = current
    return True


def _editor(
    request: HttpRequest,
    form: TemplateForm,
    template: BatchTemplate | None,
    said: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "template": template,
        "rows": form.criterion_rows(),
        "blank": form.blank_row(),
        "said": said,
        "form_token": form_tokens.token_of(request) if template is None else "",
        "can_delete": template is not None and can_delete(request.user, template),
        # The script adds rows in place up to these, as the buttons do without it.
        "max_criteria": MAX_CRITERIA_ROWS,
        "max_levels": MAX_LEVEL_ROWS,
    }
    return render(request, "batches/template_edit.html", context, status=status)


def _read_only(request: HttpRequest, template: BatchTemplate, status: int = 200) -> HttpResponse:
    settings = template.default_settings or {}
    context = {
        "template": template,
        "settings": settings,
        "criteria": ((settings.get("rubric") or {}).get("criteria")) or [],
        "processing": template.processing_rules or {},
        "structure": template.job_structure or {},
    }
    return render(request, "batches/template_view.html", context, status=status)


@login_required
@require_POST
def template_copy(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(request, pk)
    copy = template.copy_for(request.user)
    messages.success(request, f"Copied “{template.name}”: this copy is yours to change.")
    return redirect("batches:template-edit", pk=copy.pk)


@login_required
@require_http_methods(["GET", "POST"])
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(request, pk)
    if template.is_prebuilt:
        messages.error(request, f"“{template.name}” is a pre-built template: it cannot be deleted.")
        return _read_only(request, template, status=409)
    if not can_delete(request.user, template):
        raise PermissionDenied(f"Only the owner of “{template.name}” can delete it.")
    refusal = template.deletion_refusal()
    if request.method == "POST" and refusal is None:
        template.delete()
        messages.success(request, f"Deleted the template “{template.name}”.")
        return redirect("batches:templates")
    status = 409 if request.method == "POST" else 200
    context = {
        "template": template,
        "refusal": refusal,
        "rules_notice": AssignmentRule.objects.stopped_by_deleting(request.user, template),
    }
    return render(request, "batches/template_delete.html", context, status=status)


@login_required
@require_POST
def batch_save_as_template(request: HttpRequest, pk: int) -> HttpResponse:
    """Anyone who may view the batch may keep its settings as a template of their own."""
    batch = get_object_or_404(JobBatch.objects.visible_to(request.user).select_related("template"), pk=pk)
    try:
        template = save_template(request, batch.as_template())
    except SettingsError as exc:
        messages.error(request, f"Not saved as a template: the batch's settings are not valid ({exc}).")
        return redirect("batches:detail", pk=batch.pk)
    except ValidationError as exc:
        messages.error(request, f"Not saved as a template: {_sentence(exc.detail)}")
        return redirect("batches:detail", pk=batch.pk)
    messages.success(
        request, f"Saved the settings of “{batch.name}” as your template “{template.name}”. Change it here."
    )
    return redirect("batches:template-edit", pk=template.pk)


def _sentence(detail) -> str:
    """The serializer's errors as one line: "default_settings: rubric.criteria: …"."""
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_sentence(problems)}" for field, problems in detail.items())
    if isinstance(detail, list):
        return " ".join(_sentence(problem) for problem in detail)
    return str(detail)
