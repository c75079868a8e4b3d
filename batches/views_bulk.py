"""Bulk actions from the web list: POST /batches/bulk.

The rows ticked on the list (or every row of the page, or every batch its
filters match, on all pages) go through the same bulk operation as the API's
POST /api/batches/bulk-operations (batches/bulk.py), one outcome per batch:
what was done is counted, and each refusal is named with the batch and the
reason. Cancelling and deleting ask first, on a page naming the batches and
the graded work at stake. The bar is a plain form: without scripts it works
the same, its checkboxes joined to it by their `form` attribute.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_POST

from batches.actions import BY_NAME
from batches.bulk import DELETE, asks_first, done_of, label_of, run_bulk
from batches.forms import BulkForm, PageBatchFilter
from batches.models import JobBatch
from batches.presenters import rows_for
from batches.serializers import MAX_IDS
from batches.views import list_page
from grading.models import GradingResult, JobStatus

# Refusals named one by one in the messages; past these, a count.
MAX_NAMED_REFUSALS = 20


class _NoSelection(Exception):
    pass


@login_required
@require_POST
def batch_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    query = QueryDict(request.POST.get("query", "")[:4000])
    if not form.is_valid():
        return list_page(request, query, bulk=form, selected=_ticked(request), status=400)
    try:
        ids = _chosen_ids(request, form, query)
    except _NoSelection as exc:
        form.add_error(None, str(exc))
        return list_page(request, query, bulk=form, selected=_ticked(request), status=400)
    action = form.cleaned_data["action"]
    list_url = reverse("batches:list") + (f"?{query.urlencode()}" if query else "")
    if asks_first(action) and not form.cleaned_data["confirmed"]:
        return _confirmation(request, form, ids, list_url)
    names = dict(JobBatch.objects.visible_to(request.user).filter(pk__in=ids).values_list("pk", "name"))
    outcomes = run_bulk(request.user, action, ids, **form.params())
    _report(request, action, outcomes, names)
    return redirect(list_url)


def _ticked(request: HttpRequest) -> list[int]:
    """The rows ticked, as far as they are ids: kept ticked when the list is drawn again."""
    return [int(value) for value in request.POST.getlist("batch") if value.isascii() and value.isdigit()]


def _chosen_ids(request: HttpRequest, form: BulkForm, query: QueryDict) -> list[int]:
    """The batches to act on: every one the filters match, or the rows ticked (and the page's)."""
    if form.cleaned_data["matching"]:
        filters = PageBatchFilter(query or None, queryset=JobBatch.objects.visible_to(request.user))
        if filters.is_bound and not filters.is_valid():
            # An invalid filter lists every batch: acting on that would reach far more than was asked.
            raise _NoSelection("The filters are not valid, so nothing was selected. Correct them first.")
        ids = list(filters.filtered().values_list("pk", flat=True)[: MAX_IDS + 1])
    else:
        ids = form.chosen_ids()
    if not ids:
        raise _NoSelection("Nothing selected: tick one or more batches, or “Select all … matching”.")
    if len(ids) > MAX_IDS:
        raise _NoSelection(f"At most {MAX_IDS} batches at a time: narrow the filters, or tick fewer.")
    return ids


def _report(request: HttpRequest, action: str, outcomes: list[dict[str, Any]], names: dict[int, str]) -> None:
    """The count done, then each refusal: "Essay set 3: cannot pause a batch that is completed."."""
    done = sum(1 for outcome in outcomes if outcome["ok"])
    total = len(outcomes)
    count = (
        f"{done} batch{pluralize(done, 'es')}"
        if done == total
        else f"{done} of {total} batch{pluralize(total, 'es')}"
    )
    note = f"{done_of(action)} {count}."
    (messages.success if done else messages.error)(request, note)
    refused = [outcome for outcome in outcomes if not outcome["ok"]]
    for outcome in refused[:MAX_NAMED_REFUSALS]:
        name = names.get(outcome["id"]) or f"Batch #{outcome['id']}"
        error = outcome["error"]
        messages.error(request, f"{name}: {error[:1].lower()}{error[1:]}")
    if len(refused) > MAX_NAMED_REFUSALS:
        messages.error(request, f"And {len(refused) - MAX_NAMED_REFUSALS} more refused.")


def _confirmation(request: HttpRequest, form: BulkForm, ids: list[int], list_url: str) -> HttpResponse:
    """Asked first: which batches, what each holds of graded work, and which will be refused."""
    action = form.cleaned_data["action"]
    visible = JobBatch.objects.visible_to(request.user).select_related("owner").with_progress()
    batches = {batch.pk: batch for batch in visible.filter(pk__in=ids)}
    rows = rows_for(request.user, [batches[pk] for pk in ids if pk in batches])
    work = _graded_work(list(batches))
    items = [
        {
            "row": row,
            "refusal": _refusal(action, row),
            "jobs": row.counts["total"],
            "ungraded": row.counts[JobStatus.PENDING] + row.counts[JobStatus.QUEUED],
            **work[row.batch.pk],
        }
        for row in rows
    ]
    acted = [item for item in items if not item["refusal"]]
    context = {
        "action": action,
        "label": label_of(action),
        "spec": BY_NAME.get(action),
        "is_delete": action == DELETE,
        "items": items,
        "acted": len(acted),
        "unseen": len(ids) - len(rows),
        "totals": {
            key: sum(item.get(key, 0) for item in acted) for key in ("jobs", "graded", "reviewed", "ungraded")
        },
        "ids": ids,
        "query": form.cleaned_data["query"],
        "back": list_url,
    }
    return render(request, "batches/bulk_confirm.html", context)


def _graded_work(ids: list[int]) -> dict[int, dict[str, int]]:
    """Per batch: its jobs, the grades it holds, how many a teacher reviewed, the jobs not yet graded."""
    grades = (
        GradingResult.objects.filter(job__batch_id__in=ids)
        .values("job__batch_id")
        .annotate(graded=Count("pk"), reviewed=Count("pk", filter=Q(reviewed_score__isnull=False)))
    )
    work = {pk: {"graded": 0, "reviewed": 0} for pk in ids}
    for row in grades:
        work[row["job__batch_id"]] = {"graded": row["graded"], "reviewed": row["reviewed"]}
    return work


def _refusal(action: str, row) -> str:
    """Why the bulk operation will refuse this batch, said ahead; empty when it will act."""
    if action == DELETE:
        if "delete" not in row.access:
            return "only its owner can delete it"
        return "" if row.can_delete else "jobs are queued or being graded: pause or cancel it first"
    spec = BY_NAME[action]
    if spec.level.value not in row.access:
        return f"you may view it but not {spec.level.verb}"
    if not spec.allows(row.batch.status):
        return f"it is {row.batch.get_status_display().lower()}"
    return ""
