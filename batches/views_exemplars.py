"""A template's exemplar set on the web: /templates/<id>/exemplars.

The same rules as the API (batches/api_exemplars.py): anyone who may view the
template sees its exemplars; adding and removing one needs change on it.
"""

import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from batches.api_exemplars import add_template_exemplar, clean_grade, rubric_points
from core.permissions import can_change
from templates_app.models import BatchTemplate


def _template(request: HttpRequest, pk: int, change: bool = False) -> BatchTemplate:
    template = get_object_or_404(BatchTemplate.objects.visible_to(request.user), pk=pk)
    if change and not can_change(request.user, template):
        raise PermissionDenied("You may view this template but not change its exemplars.")
    return template


@login_required
@require_http_methods(["GET", "POST"])
def template_exemplars(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template(request, pk, change=request.method == "POST")
    status, typed, errors = 200, {}, {}
    if request.method == "POST":
        typed = {name: request.POST.get(name, "") for name in request.POST if name != "csrfmiddlewaretoken"}
        try:
            exemplar = _add(request, template)
        except ValidationError as error:
            errors = _field_errors(error.detail, template)
            messages.error(request, "Not added: see the problems marked below.")
            status = 400
        else:
            messages.success(request, f"Added “{exemplar.document.original_name}” at {exemplar.score:g}.")
            return redirect("batches:template-exemplars", pk=template.pk)
    context = {
        "template": template,
        "exemplars": template.exemplars.select_related("document", "owner"),
        "criteria": [
            {
                **criterion,
                "value": typed.get(f"criterion_{criterion.get('key')}", ""),
                "errors": errors.get(f"criterion_{criterion.get('key')}", []),
            }
            for criterion in _rubric(template)
        ],
        "typed": typed,
        "errors": errors,
        "can_change": can_change(request.user, template),
    }
    return render(request, "batches/template_exemplars.html", context, status=status)


def _add(request: HttpRequest, template: BatchTemplate):
    """The exemplar typed in, every field checked before any is refused (all problems at once)."""
    problems: dict[str, list[str]] = {}
    score, criteria = None, {}
    try:
        score = _score(request.POST.get("score"))
    except ValidationError as error:
        problems.update(error.detail)
    try:
        criteria = _criteria(request.POST, template)
    except ValidationError as error:
        problems.update(error.detail)
    if not problems:
        try:
            clean_grade(score, criteria, rubric_points(template))  # against the rubric, as the API does
        except ValidationError as error:
            problems.update(error.detail)
    if request.FILES.get("file") is None:
        problems["file"] = ["Choose the document the score is for."]
    if problems:
        raise ValidationError(problems)
    return add_template_exemplar(request.user, template, score, criteria, upload=request.FILES["file"])


def _field_errors(detail, template: BatchTemplate) -> dict[str, list[str]]:
    """{form field: its sentences}; a problem of the criteria goes to the criterion it names."""
    keys = list(rubric_points(template))
    errors: dict[str, list[str]] = {}
    for field, problems in detail.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            name = str(field)
            if name == "criteria":
                named = [key for key in keys if f"“{key}”" in str(problem)]
                name = f"criterion_{named[0]}" if named else "criteria"
            errors.setdefault(name, []).append(str(problem))
    return errors


@login_required
@require_POST
def template_exemplar_remove(request: HttpRequest, pk: int, eid: int) -> HttpResponse:
    template = _template(request, pk, change=True)
    exemplar = get_object_or_404(template.exemplars, pk=eid)
    exemplar.delete()
    messages.success(request, f"Removed “{exemplar.document.original_name}” from the exemplars.")
    return redirect("batches:template-exemplars", pk=template.pk)


def _score(raw: str | None) -> float:
    try:
        score = float(raw or "")
    except ValueError:
        raise ValidationError({"score": ["Give the teacher's score as a number."]})
    if not math.isfinite(score):  # float() reads "nan" and "inf" too
        raise ValidationError({"score": ["Give the teacher's score as a number."]})
    if score < 0:
        raise ValidationError({"score": ["The score cannot be negative."]})
    return score


def _criteria(post, template: BatchTemplate) -> dict[str, float]:
    """The criterion scores typed in (fields criterion_<key>); blank ones are left out."""
    criteria, problems = {}, {}
    for key in rubric_points(template):
        raw = (post.get(f"criterion_{key}") or "").strip()
        if raw:
            try:
                criteria[key] = float(raw)
            except ValueError:
                problems[f"criterion_{key}"] = [f"The score for “{key}” must be a number."]
    if problems:
        raise ValidationError(problems)
    return criteria


def _rubric(template: BatchTemplate) -> list[dict]:
    settings = template.settings_layer()
    return list((settings.get("rubric") or {}).get("criteria") or [])
