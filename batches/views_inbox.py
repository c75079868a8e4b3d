"""The inbox, assignment-rule, queue and start-from-scratch pages.

/inbox           upload files or ZIPs for your rules to send to batches (or try them: nothing stored);
                 the documents no rule took, to assign by hand or discard
/rules           your rules in the order they are tried: add, edit, move, delete; the rules
                 shared with you; a rule's page shares it (owner and `manage` holders)
/queue           active batches in the order the engine serves them; others' work as totals
/batches/new/scratch   a batch without a template: provider, model and rubric typed in

Thin like batches/views.py: the work is in batches/inbox.py, batches/queue.py
and the models.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from batches import form_tokens
from batches.exceptions import InvalidTransition
from batches.forms import ShareForm
from batches.forms_rules import AssignForm, RuleForm, ScratchBatchForm
from batches.inbox import NotInInbox, assign_from_inbox, discard, run_inbox
from batches.models import JobBatch
from batches.queue import queue_for
from batches.rule_models import AssignmentRule, InboxItem
from batches.uploads import UploadRefused, read_upload, refuse_oversized
from batches.views import (
    _upload_limits,
    created_batch,
    login_required_live,
    share_from_page,
    sharing_card,
    unshare_from_page,
)
from core import permissions
from core.permissions import can_change
from core.request_guards import refuses_oversized_body
from grading.schema import SettingsError
from templates_app.models import BatchTemplate

INBOX_PAGE_SIZE = 50


# --- the inbox --------------------------------------------------------------------------------


def _inbox_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    items = InboxItem.objects.of(request.user).select_related("document").order_by("-created_at", "-pk")
    page = Paginator(items, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    documents = [item.document for item in page.object_list]
    rules = AssignmentRule.objects.run_for(request.user)
    return {
        "items": page,
        "assign_form": extra.pop("assign_form", None) or AssignForm(user=request.user, documents=documents),
        "rules": list(rules.select_related("template", "target_batch")),
        "upload_limits": _upload_limits(),
        **extra,
    }


@login_required
def _upload_over_the_limit(request: HttpRequest, problem: str) -> HttpResponse:
    """The inbox with the sentence, as a refused upload gets, for a body too big to read."""
    return render(request, "batches/inbox.html", _inbox_context(request, upload_errors=[problem]), status=400)


@login_required
@require_http_methods(["GET", "POST"])
@refuses_oversized_body(_upload_over_the_limit)
def inbox(request: HttpRequest) -> HttpResponse:
    """GET the inbox; POST an upload that the rules assign (or, ticked "try", only say where it would go)."""
    if request.method == "GET":
        return render(request, "batches/inbox.html", _inbox_context(request))
    dry_run = request.POST.get("dry_run") == "on"
    try:
        refuse_oversized(request.META.get("CONTENT_LENGTH"))
        files = request.FILES.getlist("files")
        if not files:
            raise UploadRefused(["Choose one or more files to upload first."])
        run = run_inbox(request.user, read_upload(files), dry_run=dry_run)
    except UploadRefused as exc:
        context = _inbox_context(request, upload_errors=[str(problem) for problem in exc.problems])
        return render(request, "batches/inbox.html", context, status=400)
    placed = len(run.placements) - len(run.kept)
    if dry_run:
        messages.info(request, "A trial run: nothing was stored. This is where each document would go.")
    else:
        messages.success(
            request,
            f"{placed} document{pluralize(placed)} assigned to batches; {len(run.kept)} kept in the inbox.",
        )
    return render(request, "batches/inbox.html", _inbox_context(request, run=run.as_dict()))


@login_required
@require_POST
def inbox_assign(request: HttpRequest) -> HttpResponse:
    documents = [item.document for item in InboxItem.objects.of(request.user).select_related("document")]
    form = AssignForm(request.POST, user=request.user, documents=documents)
    if not form.is_valid():
        return render(request, "batches/inbox.html", _inbox_context(request, assign_form=form), status=400)
    batch, ids = form.cleaned_data["batch"], form.cleaned_data["documents"] or None
    if not can_change(request.user, batch):  # the choices hold only those; a changed share since
        messages.error(request, "You may no longer change that batch.")
        return redirect("batches:inbox")
    try:
        assigned = assign_from_inbox(request.user, batch, ids)
    except (InvalidTransition, NotInInbox, SettingsError) as exc:
        messages.error(request, f"Not assigned: {getattr(exc, 'detail', None) or exc}")
        return redirect("batches:inbox")
    count = len(assigned.documents)
    text = f"Added {count} document{pluralize(count)} to “{batch.name}”."
    if assigned.started:
        text += " Grading has started, as its rules say."
    messages.success(request, text if count else "Your inbox is empty: nothing to assign.")
    return redirect("batches:inbox")


@login_required
@require_POST
def inbox_discard(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        discard(request.user, pk)
    except NotInInbox:
        messages.error(request, "That document is not in your inbox any more.")
    else:
        messages.success(request, "Discarded the document.")
    return redirect("batches:inbox")


# --- rules ------------------------------------------------------------------------------------

RULE_ACCESS = {
    "change": "You may view this rule but not change it. Ask its owner for change access.",
    "manage": "You may view this rule but not share it. Ask its owner for manage access.",
    "delete": "Only the rule's owner may delete it.",
}


def _rule_or_404(request: HttpRequest, pk: int) -> AssignmentRule:
    return get_object_or_404(AssignmentRule.objects.visible_to(request.user).select_related("owner"), pk=pk)


def _rule_requiring(request: HttpRequest, pk: int, needed: str) -> AssignmentRule:
    """The rule, if the user holds `needed` on it: 404 when they may not see it, 403 when they may only look."""
    rule = _rule_or_404(request, pk)
    allowed = {
        "change": permissions.can_change,
        "manage": permissions.can_share,
        "delete": permissions.can_delete,
    }[needed]
    if not allowed(request.user, rule):
        raise PermissionDenied(RULE_ACCESS[needed])
    return rule


@login_required
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = AssignmentRule.objects.filter(owner=request.user).in_order()
    shared = AssignmentRule.objects.shared_with(request.user).order_by(
        "owner__username", "is_fallback", "position"
    )
    return render(
        request,
        "batches/rules.html",
        {
            "rules": rules.select_related("template", "target_batch"),
            "shared": _shared_rows(request.user, shared.select_related("owner", "template", "target_batch")),
        },
    )


def _shared_rows(user, rules) -> list[dict[str, Any]]:
    """Rules shared with the user, each with the level held and what of its target the user may see."""
    rules = list(rules)
    batches = set(
        JobBatch.objects.visible_to(user)
        .filter(pk__in=[rule.target_batch_id for rule in rules if rule.target_batch_id])
        .values_list("pk", flat=True)
    )
    changeable = set(JobBatch.objects.changeable_by(user).filter(pk__in=batches).values_list("pk", flat=True))
    templates = set(
        BatchTemplate.objects.visible_to(user)
        .filter(pk__in=[rule.template_id for rule in rules if rule.template_id])
        .values_list("pk", flat=True)
    )
    return [
        {
            "rule": rule,
            "level": permissions.level_of(user, rule),
            "sees_batch": rule.target_batch_id in batches,
            "sees_template": rule.template_id in templates,
            # Whether it would take documents of the user's uploads (batches/inbox.py asks the same).
            "runs": rule.target_batch_id in changeable
            if rule.target_batch_id
            else rule.template_id in templates,
        }
        for rule in rules
    ]


@login_required
@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        rule = form.save()
        messages.success(request, f"Added the rule “{rule.name}”.")
        return redirect("batches:rules")
    status = 400 if form.errors else 200
    return render(request, "batches/rule_form.html", {"form": form, "rule": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The rule's page: its form (read-only for those who may only view it) and, for managers, its sharing."""
    if request.method == "POST":
        rule = _rule_requiring(request, pk, "change")
    else:
        rule = _rule_or_404(request, pk)
    form = RuleForm(request.POST or None, user=request.user, rule=rule)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved the rule “{rule.name}”.")
        return redirect("batches:rules")
    return _rule_page(request, rule, form, status=400 if form.errors else 200)


def _rule_page(
    request: HttpRequest,
    rule: AssignmentRule,
    form: RuleForm,
    share_form: ShareForm | None = None,
    status: int = 200,
) -> HttpResponse:
    level = permissions.level_of(request.user, rule)
    may_change = level is not None and level.rank >= permissions.Level.CHANGE.rank
    if not may_change:
        for field in form.fields.values():
            field.disabled = True
    context = {"form": form, "rule": rule, "level": level, "may_change": may_change}
    if level == permissions.Level.MANAGE:
        context.update(sharing_card(rule, share_form, "batches:rule-share", "batches:rule-unshare", "rule"))
    return render(request, "batches/rule_form.html", context, status=status)


@login_required
@require_POST
def rule_share(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the level a user or group holds on the rule (its owner and `manage` holders only)."""
    rule = _rule_requiring(request, pk, "manage")
    form, shared = share_from_page(request, rule, _rule_sharing_anchor(rule))
    return shared or _rule_page(
        request, rule, RuleForm(user=request.user, rule=rule), share_form=form, status=400
    )


@login_required
@require_POST
def rule_unshare(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_requiring(request, pk, "manage")
    return unshare_from_page(request, rule, _rule_sharing_anchor(rule))


def _rule_sharing_anchor(rule: AssignmentRule) -> str:
    return reverse("batches:rule-edit", args=[rule.pk]) + "#sharing"


@login_required
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_requiring(request, pk, "delete")
    rule.delete()
    messages.success(request, f"Deleted the rule “{rule.name}”.")
    return redirect("batches:rules")


@login_required
@require_POST
def rule_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a rule one place up or down among its owner's (the fallback stays last)."""
    rule = _rule_requiring(request, pk, "change")
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        # A forged or garbled post: guessing "down" would reorder the rules unasked.
        return HttpResponseBadRequest("Move a rule “up” or “down”: nothing was moved.")
    step = -1 if direction == "up" else 1
    with transaction.atomic():
        ordered = list(
            AssignmentRule.objects.select_for_update()
            .filter(owner=rule.owner, is_fallback=rule.is_fallback)
            .in_order()
        )
        index = next(i for i, item in enumerate(ordered) if item.pk == rule.pk)
        other = index + step
        if 0 <= other < len(ordered):
            ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, item in enumerate(ordered, start=1):
            if item.position != position:
                AssignmentRule.objects.filter(pk=item.pk).update(position=position)
    return redirect("batches:rules")


# --- the queue --------------------------------------------------------------------------------


@login_required
@require_GET
def queue_page(request: HttpRequest) -> HttpResponse:
    return render(request, "batches/queue.html", {"queue": queue_for(request.user)})


@login_required_live
@require_GET
def queue_live(request: HttpRequest) -> HttpResponse:
    """The queue's table, polled by htmx while anything is in it."""
    return render(request, "batches/_queue_table.html", {"queue": queue_for(request.user)})


# --- a batch from scratch ----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def batch_new_scratch(request: HttpRequest) -> HttpResponse:
    """Step 1 without a template: the grading settings are typed here and held by the batch itself."""
    form = ScratchBatchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            batch, made = form_tokens.create_once(
                request,
                form_tokens.FormKind.BATCH,
                lambda: JobBatch.objects.create_from_template(
                    owner=request.user, template=None, settings=form.settings(), **form.batch_fields()
                ),
            )
        except SettingsError as exc:
            form.add_settings_errors(exc.errors)
        else:
            return created_batch(request, batch, made)
    status = 400 if form.is_bound and form.errors else 200
    shown = (
        form
        if form.is_bound
        else ScratchBatchForm({name: form[name].value() for name in ("provider", "model")})
    )
    context = {
        "form": form,
        "provider_problems": shown.provider_problems(),
        "form_token": form_tokens.token_of(request),
    }
    return render(request, "batches/scratch.html", context, status=status)


@login_required
@require_GET
def scratch_provider_check(request: HttpRequest) -> HttpResponse:
    """Whether the provider and model typed so far can grade here; htmx asks as they change."""
    form = ScratchBatchForm(request.GET)
    return render(request, "batches/_provider_check.html", {"provider_problems": form.provider_problems()})
