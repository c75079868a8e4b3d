"""The grader's web pages: /batches, /batches/<id> and a job's page.

Views stay thin: they find what the user may see (anything else is a 404),
check what the user may change (a 403 page that says why), call the batch's
methods and render. A refused transition becomes a message on the page.
"""

from collections.abc import Iterable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.validators import slug_re
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    QueryDict,
)
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from rest_framework.exceptions import ValidationError as InputRefused

from batches import form_tokens
from batches.actions import BY_NAME
from batches.analytics import batch_analytics
from batches.charts import charts_for
from batches.exceptions import InvalidTransition, NothingToCalibrate, StillGrading
from batches.export import feedback_filename, job_feedback_sheet
from batches.feedback import render_pdf
from batches.forms import (
    BULK_CHOICES,
    LIST_ORDERS,
    PROVIDER_FIELDS,
    BatchDetailsForm,
    BatchSettingsForm,
    BulkForm,
    NewBatchForm,
    PageBatchFilter,
    ReviewForm,
    ShareForm,
)
from batches.memo import batch_state
from batches.models import AssignmentRule, BatchStatus, JobBatch
from batches.presenters import DETAIL_ACTIONS, BatchRow, access_to, rows_for
from batches.queue import attach_places
from batches.review_queue import (
    FILTERS,
    LOW_CONFIDENCE_RULE,
    MATRIX_ORDERINGS,
    ORDERINGS,
    SPREAD_THRESHOLD,
    Entry,
    Neighbours,
    QueueQuery,
    QueueRefused,
    comparison,
    comparison_columns,
    entries_for,
    neighbours,
    select,
)
from batches.students import RosterRefused, parse_roster, replace_roster, student_overview
from batches.uploads import UploadRefused, add_upload
from core import permissions
from core.request_guards import refuses_oversized_body
from grading.calibration import MIN_PAIRS
from grading.estimate import estimate_batch
from grading.models import Document, Exemplar, GradingJob, ReviewError
from grading.schema import SettingsError
from templates_app.models import BatchTemplate

PAGE_SIZE = 20
JOBS_PAGE_SIZE = 25
# Documents per page of the comparison matrix.
MATRIX_PAGE_SIZE = 50
# How many rows one live refresh of the list may ask about (a page holds PAGE_SIZE).
MAX_LIVE_IDS = 100

ACCESS_WORDS = {"change": "change it", "delete": "delete it", "manage": "share it"}


# --- helpers ------------------------------------------------------------------


def login_required_live(view):
    """login_required for the parts htmx polls: a signed-out poll sends the whole page to sign in.

    A plain redirect would be followed inside the poll, and the sign-in page
    swapped into the spot the poll refreshes.
    """
    guarded = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.htmx and not request.user.is_authenticated:
            current = urlsplit(request.htmx.current_url or "")
            back = current.path + (f"?{current.query}" if current.query else "")
            return HttpResponseClientRedirect(
                f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back or '/batches'})}"
            )
        return guarded(request, *args, **kwargs)

    return wrapper


def _visible_batches(request: HttpRequest):
    return JobBatch.objects.visible_to(request.user).select_related("owner", "template")


def _batch_or_404(request: HttpRequest, pk: int) -> JobBatch:
    return get_object_or_404(_visible_batches(request).with_progress(), pk=pk)


def _require(access: set[str], needed: str) -> None:
    """A viewer who may not do this gets a 403 page that says so (strangers never get here: 404)."""
    if needed in access:
        return
    if needed == "delete":
        # No sharing level grants deleting: there is no access to ask for.
        held = "change" if "change" in access else "view"
        raise PermissionDenied(f"You can {held} this batch but not delete it: only its owner can delete it.")
    raise PermissionDenied(
        f"You can view this batch but not {ACCESS_WORDS[needed]}. Ask its owner for {needed} access."
    )


def _back(request: HttpRequest, default: str) -> str:
    """Where a form posted from a list or detail page should land: its `next`, if local."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _page_url(request: HttpRequest) -> str:
    """The page's own path and query; for an htmx refresh, the page it refreshes (not the poll's URL)."""
    if request.htmx and request.htmx.current_url:
        current = urlsplit(request.htmx.current_url)
        return current.path + (f"?{current.query}" if current.query else "")
    return request.get_full_path()


def _queue_query(request: HttpRequest) -> tuple[QueueQuery, str | None]:
    """The jobs' filters and sort from the query string; a bad one is not applied, and said why."""
    try:
        return QueueQuery.from_params(request.GET), None
    except QueueRefused as exc:
        return QueueQuery(), f"{exc} The jobs are shown unfiltered, in upload order."


def _jobs_page(entries: list[Entry], query: QueueQuery, number: Any):
    """A page of the batch's jobs in the review queue's filter and order, each with its `review` entry."""
    page = Paginator(select(entries, query), JOBS_PAGE_SIZE).get_page(number)
    entries = {entry.job_id: entry for entry in page.object_list}
    jobs = GradingJob.objects.filter(pk__in=entries).select_related("document", "result", "student")
    by_id = {job.pk: job for job in jobs}
    page.object_list = [by_id[pk] for pk in entries if pk in by_id]
    for job in page.object_list:
        job.review = entries[job.pk]
    return page


# --- the list -------------------------------------------------------------------


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    return list_page(request, request.GET)


def list_page(
    request: HttpRequest,
    params: QueryDict,
    bulk: BulkForm | None = None,
    selected: Iterable[int] = (),
    status: int = 200,
) -> HttpResponse:
    """The list for these filters (`params`, the page's query), with its bulk bar.

    The bulk view (views_bulk.py) draws it again with the bar's errors and the
    rows that were ticked still ticked.
    """
    filters = PageBatchFilter(params or None, queryset=_visible_batches(request))
    batches = filters.filtered().with_progress()
    paginator = Paginator(batches, PAGE_SIZE)
    page = paginator.get_page(params.get("page"))
    rows = attach_places(request.user, rows_for(request.user, list(page.object_list)))
    query = params.urlencode()
    context = {
        "filters": filters,
        "page": page,
        "rows": rows,
        "live_ids": [row.batch.pk for row in rows if row.live],
        "has_any": bool(rows) or _visible_batches(request).exists(),
        "orders": LIST_ORDERS,
        "list_url": reverse("batches:list") + (f"?{query}" if query else ""),
        "query": query,
        "bulk": bulk or BulkForm(),
        "bulk_choices": BULK_CHOICES,
        "selected": set(selected),
        # "Select all matching" only acts on filters that were applied.
        "matching_count": paginator.count if not (filters.is_bound and filters.form.errors) else None,
    }
    return render(request, "batches/list.html", context, status=status)


@login_required_live
@require_GET
def batch_list_live(request: HttpRequest) -> HttpResponse:
    """Fresh rows for the list's active batches; polled by htmx only while one is active."""
    try:
        ids = [int(value) for value in request.GET.getlist("id")[:MAX_LIVE_IDS]]
    except ValueError:
        return HttpResponseBadRequest("Batch ids must be whole numbers.")
    batches = _visible_batches(request).with_progress().filter(pk__in=ids)
    rows = attach_places(request.user, rows_for(request.user, list(batches)))
    context = {
        "rows": rows,
        "live_ids": [row.batch.pk for row in rows if row.live],
        "next": _back(request, reverse("batches:list")),
    }
    return render(request, "batches/_list_live.html", context)


# --- creating ---------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest) -> HttpResponse:
    form = NewBatchForm(request.POST or None, user=request.user, initial=_new_batch_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            batch, made = form_tokens.create_once(
                request,
                form_tokens.FormKind.BATCH,
                lambda: JobBatch.objects.create_from_template(
                    owner=request.user, settings=form.overrides(), **form.batch_fields()
                ),
            )
        except SettingsError as exc:
            form.add_settings_errors(exc.errors)
        else:
            return created_batch(request, batch, made)
    status = 400 if form.is_bound and form.errors else 200
    context = {
        "form": form,
        "form_token": form_tokens.token_of(request),
        "preview": _preview_template(request, form),
        "provider_problems": _initial_problems(form, NewBatchForm, user=request.user),
    }
    return render(request, "batches/new.html", context, status=status)


def created_batch(request: HttpRequest, batch: JobBatch | int, made: bool) -> HttpResponse:
    """Step 2 of a new batch; a form sent twice is told the first sending made it."""
    if made:
        messages.success(request, f"Created “{batch.name}”. Now add the documents to grade.")
        return redirect("batches:documents", pk=batch.pk)
    messages.info(request, "This form was already sent: here is the batch it made.")
    return redirect("batches:documents", pk=batch)


def _initial_problems(form, form_class, **kwargs) -> list[str]:
    """The provider check of what the page shows: the posted choice, or the form's starting values."""
    if form.is_bound:
        return form.provider_problems()
    data = {}
    for name in ("template", *PROVIDER_FIELDS.values()):
        if name in form.fields and (value := form[name].value()) is not None:
            value = getattr(value, "pk", value)
            data[name] = ", ".join(value) if isinstance(value, list | tuple) else value
    return form_class(data, **kwargs).provider_problems()


@login_required
@require_GET
def new_batch_provider_check(request: HttpRequest) -> HttpResponse:
    """Whether the template, provider and models chosen so far can grade here; htmx asks as they change."""
    form = NewBatchForm(request.GET, user=request.user)
    return render(request, "batches/_provider_check.html", {"provider_problems": form.provider_problems()})


@login_required
@require_GET
def edit_provider_check(request: HttpRequest, pk: int) -> HttpResponse:
    """The same check on a batch's settings form, for those who may change the batch."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    form = BatchSettingsForm(request.GET, batch=batch)
    return render(request, "batches/_provider_check.html", {"provider_problems": form.provider_problems()})


def _new_batch_initial(request: HttpRequest) -> dict[str, Any]:
    slug = request.GET.get("template", "")
    # Only a slug can name a template; anything else (a NUL, which the database
    # refuses outright) is no choice, and the first template is preselected.
    valid = bool(slug_re.fullmatch(slug))
    template = BatchTemplate.objects.visible_to(request.user).filter(slug=slug).first() if valid else None
    if template is None:
        template = BatchTemplate.objects.visible_to(request.user).order_by("category", "name").first()
    return {"template": template, "priority": 5}


def _preview_template(request: HttpRequest, form: NewBatchForm) -> BatchTemplate | None:
    chosen = form["template"].value()
    templates = BatchTemplate.objects.visible_to(request.user)
    if isinstance(chosen, BatchTemplate):
        return chosen
    if chosen and str(chosen).isdigit():
        return templates.filter(pk=int(chosen)).first()
    return None


@login_required
@require_GET
def template_preview(request: HttpRequest) -> HttpResponse:
    """The chosen template's description and rubric, swapped in by htmx as the choice changes."""
    value = request.GET.get("template", "")
    template = None
    if value.isdigit():
        template = BatchTemplate.objects.visible_to(request.user).filter(pk=int(value)).first()
    return render(request, "batches/_template_preview.html", {"template": template})


# --- one batch ------------------------------------------------------------------------


def _detail_context(request: HttpRequest, batch: JobBatch) -> dict[str, Any]:
    row = BatchRow(batch, access_to(request.user, batch), among=DETAIL_ACTIONS)
    attach_places(request.user, [row])
    try:
        settings, settings_error = batch.validated_settings(), None
    except SettingsError as exc:
        settings, settings_error = None, exc
    query, query_refused = _queue_query(request)
    # Read once for the page: the queue and the analytics are kept per state of the batch.
    state = batch_state(batch)
    entries = entries_for(batch, state)
    jobs = _jobs_page(entries, query, request.GET.get("page"))
    several = len(comparison_columns(entries)) > 1
    return {
        "batch": batch,
        "state": state,
        "row": row,
        "jobs": jobs,
        "query": query,
        "query_refused": query_refused,
        "filters": FILTERS,
        # Sorting by spread means something only when several models graded the documents.
        "orderings": ORDERINGS if several else {k: v for k, v in ORDERINGS.items() if "spread" not in k},
        "low_confidence_rule": LOW_CONFIDENCE_RULE,
        # What the live poll asks for: the same filters, sort and page.
        "live_query": query.querystring(page=jobs.number if jobs.number > 1 else None),
        "several_models": several,
        "settings": settings,
        "settings_error": settings_error,
        # Only a draft can still be fixed before it runs; a started batch shows its failures.
        "setup_problems": settings.problems() if settings and batch.status == BatchStatus.DRAFT else [],
        "upload_limits": _upload_limits(),
        "upload_next": reverse("batches:detail", args=[batch.pk]),
        # Where the jobs' forms come back to: the page itself, also when htmx refreshed them.
        "jobs_next": _page_url(request),
        # Graded jobs taken out of the batch, which may be put back (JobBatch.restore_job).
        "removed_jobs": (
            list(batch.removed_jobs_to_restore()[:JOBS_PAGE_SIZE])
            if row.can_change and batch.status != BatchStatus.ARCHIVED
            else []
        ),
    }


@login_required
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, _batch_or_404(request, pk))


def _detail_page(
    request: HttpRequest, batch: JobBatch, share_form: ShareForm | None = None, status: int = 200
) -> HttpResponse:
    """The batch's page; a sharing form refused is shown again in its card, with its errors."""
    context = _detail_context(request, batch)
    if context["query_refused"] and status == 200:
        status = 400
    row = context["row"]
    context["estimate"] = _estimate(batch, row)
    if batch.started_at or row.done:
        analytics = batch_analytics(batch, state=context["state"])
        context.update(analytics=analytics, charts=charts_for(analytics), can_export=row.done > 0)
        context.update(
            can_calibrate="change" in row.access,
            calibration_waits=BatchStatus(batch.status).calibration_waits,
            exemplar_count=Exemplar.objects.filter(batch=batch).count(),
            min_exemplars=MIN_PAIRS,
        )
    if row.counts["total"]:
        context["students"] = student_overview(batch)
    if "manage" in row.access:
        context.update(sharing_card(batch, share_form, "batches:share", "batches:unshare", "batch"))
    return render(request, "batches/detail.html", context, status=status)


@login_required_live
@require_GET
def batch_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The parts of a batch's page that workers change, polled while the batch is live.

    When the batch stops being live the page reloads once, so what appears
    only at the end (analytics, final actions) is drawn by the full page.
    """
    batch = _batch_or_404(request, pk)
    context = _detail_context(request, batch)
    response = render(request, "batches/_detail_live.html", context)
    if not context["row"].live:
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def batch_calibrate(request: HttpRequest, pk: int) -> HttpResponse:
    """Fit the teacher's scale from the batch's exemplars and re-score its results (change holders)."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    try:
        calibration = batch.calibrate()
    except SettingsError as exc:
        messages.error(request, f"Not calibrated: the batch's settings are invalid ({exc}).")
        return redirect(f"{reverse('batches:detail', args=[batch.pk])}#calibration")
    except (NothingToCalibrate, StillGrading) as exc:
        messages.error(request, f"Not calibrated: {exc}")
        return redirect(f"{reverse('batches:detail', args=[batch.pk])}#calibration")
    fitted = [group for group in calibration["models"] if group["method"]]
    if fitted:
        messages.success(
            request,
            f"Calibrated from {calibration['exemplars']} exemplar(s): the scores now follow your scale.",
        )
    else:
        reasons = "; ".join(
            dict.fromkeys(group["reason"] for group in calibration["models"] if group["reason"])
        )
        messages.error(
            request,
            f"Not calibrated ({calibration['exemplars']} exemplar(s)): {reasons}. "
            "Tick “Use as an exemplar” on reviews whose scores spread over your scale.",
        )
    return redirect(f"{reverse('batches:detail', args=[batch.pk])}#calibration")


@login_required
@require_http_methods(["GET", "POST"])
def batch_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """POST /batches/<id>/<action>, for each action of batches/actions.py (see urls.py).

    An action that sets `confirm` is asked about first: its button GETs this
    URL, a page that says what it will do, whose form POSTs here.
    """
    spec = BY_NAME[action]
    if request.method == "GET" and not spec.confirm:
        return HttpResponseNotAllowed(["POST"])
    batch = _batch_or_404(request, pk)
    access = access_to(request.user, batch)
    _require(access, spec.level.value)
    back = _back(request, reverse("batches:detail", args=[batch.pk]))
    if request.method == "GET":
        row = BatchRow(batch, access, among=DETAIL_ACTIONS)
        context = {"batch": batch, "row": row, "action": spec, "offered": spec in row.offered, "back": back}
        return render(request, "batches/confirm_action.html", context)
    try:
        outcome = spec.run(batch, request.user)
    except InvalidTransition as exc:
        messages.error(request, f"{spec.label} refused: {exc.detail}")
        return redirect(back)
    except JobBatch.DoesNotExist:
        # Deleted by another request between our read and our lock.
        raise Http404(f"“{batch.name}” was deleted meanwhile.") from None
    messages.success(request, spec.done_message(outcome))
    if spec.creates:
        return redirect("batches:detail", pk=outcome.pk)
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def batch_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """A confirmation page, then the deletion (refused while work is queued or in flight)."""
    batch = _batch_or_404(request, pk)
    row = BatchRow(batch, access_to(request.user, batch), among=DETAIL_ACTIONS)
    _require(row.access, "delete")
    if request.method == "POST":
        try:
            batch.delete_batch()
        except InvalidTransition as exc:
            messages.error(request, f"Delete refused: {exc.detail}")
            return redirect("batches:detail", pk=batch.pk)
        except JobBatch.DoesNotExist:
            # Delete clicked twice, or by two people: what was asked is done.
            messages.info(request, f"“{batch.name}” was already deleted.")
            return redirect("batches:list")
        messages.success(request, f"Deleted “{batch.name}” and its {row.counts['total']} job(s).")
        return redirect("batches:list")
    rules_notice = AssignmentRule.objects.stopped_by_deleting(request.user, batch)
    return render(request, "batches/delete.html", {"batch": batch, "row": row, "rules_notice": rules_notice})


@login_required
@require_GET
def batch_documents(request: HttpRequest, pk: int) -> HttpResponse:
    """The second step of creating a batch: add its documents, then start it."""
    batch = _batch_or_404(request, pk)
    return _documents_page(request, batch)


def _documents_page(
    request: HttpRequest, batch: JobBatch, upload_errors: list[str] | None = None, status: int = 200
) -> HttpResponse:
    row = BatchRow(batch, access_to(request.user, batch), among=DETAIL_ACTIONS)
    _require(row.access, "change")
    context = {
        "batch": batch,
        "row": row,
        "jobs": _jobs_page(entries_for(batch), QueueQuery(), request.GET.get("page")),
        "query": QueueQuery(),
        "upload_errors": upload_errors,
        "upload_limits": _upload_limits(),
        "upload_next": reverse("batches:documents", args=[batch.pk]),
        "estimate": _estimate(batch, row),
    }
    return render(request, "batches/documents.html", context, status=status)


def _estimate(batch: JobBatch, row: BatchRow) -> dict[str, Any] | None:
    """What starting (or resuming) will cost, while the grader can still change course."""
    if batch.status not in (BatchStatus.DRAFT, BatchStatus.PAUSED) or not row.counts["total"]:
        return None
    try:
        return estimate_batch(batch)
    except SettingsError:
        return None


def _upload_limits() -> dict[str, int]:
    return {"file_mb": settings.MAX_DOCUMENT_MB, "files": settings.MAX_FILES_PER_UPLOAD}


@login_required
def _upload_over_the_limit(request: HttpRequest, problem: str, pk: int) -> HttpResponse:
    """The documents page with the sentence, as a refused upload gets, for a body too big to read."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    return _documents_page(request, batch, upload_errors=[problem], status=400)


@login_required
@require_POST
@refuses_oversized_body(_upload_over_the_limit)
def batch_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Several files or a ZIP, from the picker or dropped; all stored or none, each problem listed."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    back = _back(request, reverse("batches:documents", args=[batch.pk]))
    try:
        added = add_upload(
            batch,
            request.user,
            lambda: _chosen_files(request),
            request.META.get("CONTENT_LENGTH"),
            student_pattern=lambda: request.POST.get("student_pattern"),
            skip_unsupported=lambda: request.POST.get("skip_unsupported") in ("on", "true", "1", "yes"),
        )
    except InvalidTransition as exc:
        messages.error(request, f"Upload refused: {exc.detail}")
        return redirect(back)
    except UploadRefused as exc:
        return _documents_page(
            request, batch, upload_errors=[str(problem) for problem in exc.problems], status=400
        )
    except InputRefused as exc:  # an unusable student pattern
        problems = [str(message) for messages_ in exc.detail.values() for message in messages_]
        return _documents_page(request, batch, upload_errors=problems, status=400)
    except SettingsError as exc:
        messages.error(request, f"Upload refused: the batch's settings are not valid ({exc}).")
        return redirect(back)
    count = len(added.documents)
    text = f"Uploaded {count} document{pluralize(count)}: {len(added.jobs)} job{pluralize(len(added.jobs))} added."
    if added.skipped:
        skipped = "; ".join(str(item) for item in added.skipped[:20])
        more = f"; and {len(added.skipped) - 20} more" if len(added.skipped) > 20 else ""
        text += f" Skipped {len(added.skipped)} file{pluralize(len(added.skipped))}: {skipped}{more}."
    if added.started:
        text += " Grading has started, as the template's rules say."
    messages.success(request, text)
    return redirect(back)


def _chosen_files(request: HttpRequest) -> list:
    files = request.FILES.getlist("files")
    if not files:
        raise UploadRefused(["Choose one or more files to upload first."])
    return files


@login_required
@require_POST
def batch_share(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the level a user or group holds on the batch (owners and `manage` holders only)."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "manage")
    form, shared = share_from_page(request, batch, _sharing_anchor(batch))
    # Refused: the page again, the error beside the field in the sharing card and what was typed kept.
    return shared or _detail_page(request, batch, share_form=form, status=400)


@login_required
@require_POST
def batch_unshare(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "manage")
    return unshare_from_page(request, batch, _sharing_anchor(batch))


def _sharing_anchor(batch: JobBatch) -> str:
    return reverse("batches:detail", args=[batch.pk]) + "#sharing"


def sharing_card(obj, share_form: ShareForm | None, share_route: str, unshare_route: str, noun: str) -> dict:
    """What a page's sharing card (`_sharing.html`) shows of a batch or rule, for its managers."""
    return {
        "sharing": permissions.permissions_of(obj),
        "share_form": share_form or ShareForm(),
        "levels": permissions.Level.choices,
        "share_url": reverse(share_route, args=[obj.pk]),
        "unshare_url": reverse(unshare_route, args=[obj.pk]),
        "shared_noun": noun,
    }


def share_from_page(request: HttpRequest, obj, anchor: str) -> tuple[ShareForm, HttpResponse | None]:
    """A page's sharing card sets a level on a batch or rule: the form, and where to go when it took."""
    form = ShareForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            permissions.set_level(obj, data["principal"], data["permission"])
        except permissions.SharingError as exc:
            form.add_error("name", str(exc))
        else:
            level = permissions.Level(data["permission"]).label.lower()
            messages.success(request, f"{data['kind'].capitalize()} “{data['name']}” now has {level} access.")
            return form, redirect(anchor)
    return form, None


def unshare_from_page(request: HttpRequest, obj, anchor: str) -> HttpResponse:
    """A page's sharing card takes a user's or group's access to a batch or rule away."""
    form = ShareForm.for_removal(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing to remove: {form.problem()}")
        return redirect(anchor)
    try:
        permissions.unshare(obj, form.cleaned_data["principal"], permissions.Level.VIEW)
    except permissions.SharingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"“{form.cleaned_data['name']}” no longer has access to “{obj.name}”.")
    return redirect(anchor)


EDIT_FORMS = {"details": BatchDetailsForm, "settings": BatchSettingsForm}


@login_required
@require_http_methods(["GET", "POST"])
def batch_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Name, priority, tags and deadline until archived; grading settings while draft or paused."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    if batch.status == BatchStatus.ARCHIVED:
        messages.error(request, "An archived batch cannot be changed. Duplicate it to work on a copy.")
        return redirect("batches:detail", pk=batch.pk)
    part = request.POST.get("part") if request.method == "POST" else None
    if part is not None and part not in EDIT_FORMS:
        return HttpResponseBadRequest("Unknown form.")
    editable = BatchStatus(batch.status).settings_editable
    forms = {
        name: form_class(request.POST if part == name else None, batch=batch)
        for name, form_class in EDIT_FORMS.items()
        if name == "details" or editable or part == name
    }
    if part is not None and forms[part].is_valid():
        form = forms[part]
        try:
            batch.edit(**form.changes())
        except InvalidTransition as exc:
            messages.error(request, f"Not saved: {exc.detail}")
            return redirect("batches:edit", pk=batch.pk)
        except SettingsError as exc:
            form.add_settings_errors(exc.errors)
        else:
            messages.success(request, f"Saved the {part} of “{batch.name}”.")
            return redirect("batches:detail", pk=batch.pk)
    settings_form = forms.get("settings")
    context = {
        "batch": batch,
        "details": forms["details"],
        "settings_form": settings_form,
        "editable": editable,
        "provider_problems": (
            _initial_problems(settings_form, BatchSettingsForm, batch=batch)
            if settings_form is not None
            else []
        ),
    }
    status = 400 if part is not None and forms[part].errors else 200
    return render(request, "batches/edit.html", context, status=status)


# --- jobs -----------------------------------------------------------------------------


def _job_or_404(batch: JobBatch, job_id: int) -> GradingJob:
    jobs = GradingJob.objects.in_batch(batch).select_related(
        "document", "result", "result__reviewer", "student"
    )
    return get_object_or_404(jobs, pk=job_id)


@login_required
@require_http_methods(["GET", "POST"])
def job_detail(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    """The document beside the AI's grade, and the review form.

    The query string carries the review queue's filters and sort: previous and
    next follow them, and a saved review moves on to the next job in them.
    """
    batch = _batch_or_404(request, pk)
    job = _job_or_404(batch, job_id)
    access = access_to(request.user, batch)
    query, query_refused = _queue_query(request)
    result = getattr(job, "result", None)
    form = ReviewForm(request.POST or None, result=result) if result is not None else None
    if request.method == "POST":
        _require(access, "change")
        if form is None:
            messages.error(request, "This job has no grade to review yet.")
            return redirect(_job_url(batch, job.pk, query))
        if form.is_valid():
            # Where "next" is, taken before the review moves the job in a sort by score.
            around = neighbours(entries_for(batch), query, job.pk)
            try:
                result.record_review(request.user, **form.review())
            except ReviewError as exc:
                form.add_review_error(exc.field, str(exc))
            else:
                return _onward(
                    request, batch, query, around, "Review saved. The AI's grade is kept beside it."
                )
    entries = entries_for(batch)
    entry = next((item for item in entries if item.job_id == job.pk), None)
    context = {
        "batch": batch,
        "job": job,
        "result": result,
        "form": form,
        "can_change": "change" in access,
        # The `a` key's form is there: a grade this user may review, not reviewed yet.
        "can_accept": result is not None and "change" in access and not result.is_reviewed,
        "criteria": _criteria_rows(result),
        "query": query,
        "query_refused": query_refused,
        "queue_qs": query.querystring(),
        "reasons": entry.reasons if entry else [],
        "spread": entry.spread if entry else None,
        **_neighbours(entries, job, query),
    }
    bad = query_refused or (form is not None and form.errors)
    return render(request, "batches/job.html", context, status=400 if bad else 200)


def _job_url(batch: JobBatch, job_id: int, query: QueueQuery) -> str:
    return reverse("batches:job", args=[batch.pk, job_id]) + query.querystring()


def _onward(request: HttpRequest, batch: JobBatch, query: QueueQuery, around: Neighbours, done: str):
    """After a review: the next job in the queue, or, after the last, the batch's jobs in that queue."""
    if around.next_id is not None:
        messages.success(request, done)
        return redirect(_job_url(batch, around.next_id, query))
    messages.success(request, f"{done} That was the last job in “{query.describe()}”.")
    return redirect(reverse("batches:detail", args=[batch.pk]) + query.querystring() + "#batch-jobs")


def _neighbours(entries: list[Entry], job: GradingJob, query: QueueQuery) -> dict[str, Any]:
    """The previous and next jobs in the review queue's filter and order, and the job's place in it."""
    around = neighbours(entries, query, job.pk)
    ids = [pk for pk in (around.previous_id, around.next_id) if pk is not None]
    found = (
        GradingJob.objects.filter(pk__in=ids).select_related("document").only("pk", "document__original_name")
    )
    by_id = {item.pk: item for item in found}
    return {
        "previous_job": by_id.get(around.previous_id),
        "next_job": by_id.get(around.next_id),
        "position": around.position,
        "job_count": around.count,
    }


@login_required
@require_POST
def review_accept(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    """Accept the AI's grade as the review (the `a` key), then move on to the next job in the queue."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    job = _job_or_404(batch, job_id)
    query, query_refused = _queue_query(request)
    if query_refused:
        return HttpResponseBadRequest(query_refused)
    result = getattr(job, "result", None)
    if result is None:
        messages.error(request, "This job has no grade to accept yet.")
        return redirect(_job_url(batch, job.pk, query))
    around = neighbours(entries_for(batch), query, job.pk)
    try:
        newly = result.accept_ai_grade(request.user)
    except ReviewError as exc:
        messages.error(request, f"Not accepted: {exc}")
        return redirect(_job_url(batch, job.pk, query))
    grade = f"the AI's {result.score:g} / {result.max_score:g} for “{job.document.original_name}”."
    return _onward(
        request, batch, query, around, f"Accepted {grade}" if newly else f"Already accepted: {grade}"
    )


@login_required
@require_GET
def batch_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """The models side by side: one row per document, one column per model, the spread flagged."""
    batch = _batch_or_404(request, pk)
    ordering = request.GET.get("ordering", "")
    try:
        columns, rows = comparison(batch, ordering)
    except QueueRefused as exc:
        messages.error(request, str(exc))
        columns, rows = comparison(batch)
        ordering, status = "", 400
    else:
        status = 200
    page = Paginator(rows, MATRIX_PAGE_SIZE).get_page(request.GET.get("page"))
    names = dict(
        Document.objects.filter(pk__in=[row.document_id for row in page.object_list]).values_list(
            "pk", "original_name"
        )
    )
    for row in page.object_list:
        row.name = names.get(row.document_id, "")
    context = {
        "batch": batch,
        "columns": columns,
        # Models whose scores a calibration re-scored: their column is on the teacher's scale.
        "calibrated_columns": {cell.column for row in rows for cell in row.cells if cell and cell.calibrated},
        "page": page,
        "ordering": ordering,
        "orderings": MATRIX_ORDERINGS,
        "ordering_label": MATRIX_ORDERINGS[ordering],
        "threshold": SPREAD_THRESHOLD,
        # Before any job has a model (a draft, no documents), the columns come from the settings.
        "configured_models": [] if len(columns) > 1 else _configured_models(batch),
    }
    return render(request, "batches/compare.html", context, status=status)


def _configured_models(batch: JobBatch) -> list[str]:
    """The models the batch's settings grade each document with; [] when its settings are not valid."""
    try:
        return batch.validated_settings().grading_models()
    except SettingsError:
        return []


@login_required
@require_POST
def review_withdraw(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    """Withdraw the review of a job: the AI's grade is final again (the API's DELETE …/review)."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    job = _job_or_404(batch, job_id)
    result = getattr(job, "result", None)
    if result is None or not result.is_reviewed:
        messages.error(request, "This job has no review to withdraw.")
    else:
        withdrawn = f"{result.reviewed_score:g} / {result.max_score:g}"
        result.clear_review()
        messages.success(
            request,
            f"Withdrew the review ({withdrawn}): the AI's {result.score:g} / {result.max_score:g} is final again.",
        )
    return redirect(_job_url(batch, job.pk, _queue_query(request)[0]))


def _criteria_rows(result) -> list[dict[str, Any]]:
    """The AI's per-criterion grade with the reviewer's score beside it, when there is one."""
    if result is None:
        return []
    reviewed = {item.get("key"): item.get("score") for item in result.reviewed_criteria or []}
    rows = []
    for criterion in result.criteria:
        maximum = criterion.get("max_score") or 0
        score = criterion.get("score") or 0
        rows.append(
            {
                **criterion,
                "percent": round(100 * score / maximum) if maximum else 0,
                "reviewed_score": reviewed.get(criterion.get("key")),
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def job_remove(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    """Take a job out of the batch: at once while it has no grade; a graded job is asked about first.

    A graded (or reviewed) job's removal names what goes with it on a
    confirmation page, and the batch's page offers to put it back afterwards
    (job_restore), since the job and its grade are kept, out of the batch.
    """
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    job = _job_or_404(batch, job_id)
    back = _back(request, reverse("batches:detail", args=[batch.pk]))
    result = getattr(job, "result", None)
    if result is not None and (request.method == "GET" or request.POST.get("confirmed") != "yes"):
        context = {"batch": batch, "job": job, "result": result, "back": back}
        return render(request, "batches/job_remove.html", context)
    if request.method == "GET":
        return HttpResponseNotAllowed(["POST"])
    try:
        batch.remove_job(job)
    except InvalidTransition as exc:
        messages.error(request, f"Removing “{job.name}” refused: {exc.detail}")
    else:
        if result is not None:
            messages.success(
                request,
                f"Removed “{job.name}” and its grade from the batch. To undo, choose “Put back” "
                "under “Removed jobs” on the batch's page.",
            )
        else:
            messages.success(request, f"Removed “{job.name}” from the batch.")
    return redirect(back)


# --- students ---------------------------------------------------------------------------


@login_required
@require_POST
def batch_roster(request: HttpRequest, pk: int) -> HttpResponse:
    """The class roster (CSV: id, name, email) becomes the batch's students; documents are matched again."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    back = f"{reverse('batches:detail', args=[batch.pk])}#students"
    if batch.status == BatchStatus.ARCHIVED:
        messages.error(request, "Roster refused: an archived batch cannot be changed.")
        return redirect(back)
    upload = request.FILES.get("roster")
    if upload is None:
        messages.error(request, "Roster refused: choose a CSV file first.")
        return redirect(back)
    try:
        counts = replace_roster(batch, parse_roster(upload.read(2 * 1024 * 1024 + 1)))
    except RosterRefused as exc:
        for problem in exc.problems:
            messages.error(request, f"Roster refused: {problem}")
        return redirect(back)
    messages.success(
        request,
        f"Roster of {counts['students']} student{pluralize(counts['students'])} saved: "
        f"{counts['matched']} document{pluralize(counts['matched'])} matched, {counts['unmatched']} not.",
    )
    return redirect(back)


@login_required
@require_GET
def job_feedback(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    """The feedback sheet (PDF) of the job's student, to hand to the student."""
    batch = _batch_or_404(request, pk)
    job = _job_or_404(batch, job_id)
    sheet = job_feedback_sheet(job)
    if sheet is None:
        messages.error(request, "No feedback sheet yet: nothing of this student's work is graded.")
        return redirect("batches:job", pk=batch.pk, job_id=job.pk)
    response = HttpResponse(render_pdf(sheet), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{feedback_filename(job)}"'
    return response


@login_required
@require_POST
def job_restore(request: HttpRequest, pk: int, job_id: int) -> HttpResponse:
    """Put a graded job removed from the batch back into it, with its grade and review."""
    batch = _batch_or_404(request, pk)
    _require(access_to(request.user, batch), "change")
    job = get_object_or_404(batch.removed_jobs_to_restore(), pk=job_id)
    try:
        batch.restore_job(job)
    except InvalidTransition as exc:
        messages.error(request, f"Putting back “{job.name}” refused: {exc.detail}")
    else:
        messages.success(request, f"Put “{job.name}” back into the batch, with its grade.")
    return redirect(_back(request, reverse("batches:detail", args=[batch.pk]) + "#batch-jobs"))
