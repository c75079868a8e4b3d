"""The batch actions, each declared once.

Every surface that offers an action reads it from ACTIONS below rather than
listing actions itself:

    the model      JobBatch._locked: the states each action may start from (TRANSITIONS)
    the API        POST /api/batches/{id}/<name>, one route per entry (batches/api.py),
                   and the batch's `allowed_actions`
    bulk           {"action": "<name>"} on POST /api/batches/bulk-operations (batches/bulk.py)
    the web        POST /batches/<id>/<name> (batches/urls.py, views.py) and its button on the
                   batch's page and, for some, on the list's rows (batches/presenters.py)
    the admin      "<name>_batches" on the batch list (batches/admin.py)

Adding an action is one entry here plus the JobBatch method it names; that
method locks the row and calls `self._locked("<name>")`, which checks the
states below. tests/test_batch_action_table.py proves every surface offers
exactly these actions, and `manage.py check` (batches.E001) that each names a
method that exists.

An action that sets `confirm` is asked about first on the web: its button
opens a confirmation page (GET /batches/<id>/<name>) that says what it does,
and the admin shows an intermediate page before it runs; only that page's
POST acts. The API and bulk operations act at once, as they always have.

Deleting a batch is not an action of this table: it is the batch's own
deletion (DELETE on the API, a confirmation page on the web, the admin's
"Delete selected"), the owner's alone rather than a sharing level's, and is
refused by the work in flight rather than by the state. Nor are bulk edits
(priority, tags), which change fields, not the state.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from core.permissions import Level
from grading.models import JobStatus
from grading.statuses import BatchStatus

if TYPE_CHECKING:  # the model imports this table: named for the reader only
    from batches.models import JobBatch


@dataclass(frozen=True)
class BatchAction:
    # The action's name: its URL segment and route name in the API and on the web,
    # bulk's `action`, the admin action `<name>_batches`, InvalidTransition's `action`.
    name: str
    # The JobBatch method that does it, under the row lock and the state machine.
    method: str
    # The states it may start from (None: any). The state machine reads them here.
    allowed_from: frozenset[str] | None
    # Wording. label: its button on the web, and "<label> refused: …";
    label: str
    # done: the admin's "<done>: 3 batch(es).";
    done: str
    # message: the web's note once done, {name} being the batch's (or the copy's) name;
    message: str
    # summary: the API operation's summary in the OpenAPI schema.
    summary: str
    # confirm: when set, the web asks first: these sentences, on a confirmation page (and the
    # admin's intermediate page), say what the action does to "the batch" and what is lost.
    confirm: str = ""
    # selected: the admin action's description; "<label> the selected batches" when empty.
    selected: str = ""
    # The sharing level it needs on the batch (core.permissions).
    level: Level = Level.CHANGE
    # Whether it makes a new batch: the method takes owner= (the user acting) and returns
    # the copy. The API answers 201 with the copy, bulk adds `duplicate_id`, the web opens it.
    creates: bool = False
    # Offered on the rows of /batches too; the batch's own page offers every action.
    on_list: bool = False
    # Its button's style on the web: "" (plain), "primary" or "danger-ghost" (class btn-<style>).
    style: str = ""
    # Progress counts ("total" or job states) of which one must be non-zero for the web to
    # offer it: the method refuses a batch without such jobs.
    needs_jobs: tuple[str, ...] = ()
    # The method leaves `report` on the batch it returns (a dict of what it did, e.g. retry's
    # re-queued and skipped jobs): the API adds it to its answer, the web says its "message".
    reports: bool = False

    def __post_init__(self) -> None:
        # Unknown states or levels fail at import, not when someone clicks.
        if self.allowed_from is not None:
            object.__setattr__(
                self, "allowed_from", frozenset(BatchStatus(state) for state in self.allowed_from)
            )
        object.__setattr__(self, "level", Level(self.level))

    @property
    def admin_description(self) -> str:
        """The admin's name for the action over the batches ticked on its list."""
        return self.selected or f"{self.label} the selected batches"

    def done_message(self, outcome: "JobBatch") -> str:
        """The web's note once done: `message`, or the sentence the method reported (outcome.report)."""
        report = getattr(outcome, "report", None) or {}
        return report.get("message") or self.message.format(name=outcome.name)

    def allows(self, status: str) -> bool:
        """Whether the state machine lets the action start from this status."""
        return self.allowed_from is None or status in self.allowed_from

    def run(self, batch: "JobBatch", user) -> "JobBatch":
        """Call the JobBatch method; returns the batch, or the new batch for an action that creates one."""
        method = getattr(batch, self.method)
        return method(owner=user) if self.creates else method()


ACTIONS: tuple[BatchAction, ...] = (
    BatchAction(
        name="start",
        method="start_batch",
        allowed_from=frozenset({BatchStatus.DRAFT}),
        label="Start",
        done="Started",
        message="Started “{name}”: its jobs are queued for grading.",
        summary="Start a draft batch: snapshot its settings into its jobs and queue them.",
        on_list=True,
        style="primary",
        needs_jobs=("total",),
    ),
    BatchAction(
        name="pause",
        method="pause_batch",
        allowed_from=frozenset({BatchStatus.PENDING, BatchStatus.PROCESSING}),
        label="Pause",
        done="Paused",
        message="Paused “{name}”: no new job starts; jobs in flight finish.",
        summary="Pause: no new job is claimed; jobs in flight finish.",
        on_list=True,
    ),
    BatchAction(
        name="resume",
        method="resume_batch",
        allowed_from=frozenset({BatchStatus.PAUSED}),
        label="Resume",
        done="Resumed",
        message="Resumed “{name}”.",
        summary="Resume a paused batch.",
        on_list=True,
        style="primary",
    ),
    BatchAction(
        name="cancel",
        method="cancel_batch",
        allowed_from=frozenset(
            {BatchStatus.DRAFT, BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.PAUSED}
        ),
        label="Cancel",
        done="Cancelled",
        message="Cancelled “{name}”: queued jobs will not be graded.",
        summary="Cancel queued jobs; jobs in flight finish and are kept.",
        style="danger-ghost",
        confirm=(
            "Cancelling stops the batch: its jobs not yet graded will not be graded, and a draft can "
            "no longer be started. Jobs being graded right now finish and keep their grades, as do "
            "the jobs already graded. “Retry failed” can queue the cancelled jobs again later."
        ),
    ),
    BatchAction(
        name="retry",
        method="retry_failed_jobs",
        allowed_from=frozenset(
            {BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED, BatchStatus.CANCELLED}
        ),
        label="Retry failed",
        done="Retried failed jobs of",
        message="Re-queued the failed and cancelled jobs of “{name}”.",
        summary=(
            "Re-queue failed and cancelled jobs with their attempts reset; jobs whose document "
            "cannot be graded (unreadable or without text) are skipped and listed in `report`."
        ),
        selected="Retry the failed jobs of the selected batches",
        needs_jobs=(JobStatus.FAILED, JobStatus.CANCELLED),
        reports=True,
    ),
    BatchAction(
        name="archive",
        method="archive",
        allowed_from=frozenset(BatchStatus.finished()),
        label="Archive",
        done="Archived",
        message="Archived “{name}”: it leaves the lists; tick “Archived” in the filters to find it.",
        summary="Archive a finished batch: it leaves the lists unless they ask for status=archived.",
    ),
    BatchAction(
        name="unarchive",
        method="unarchive",
        allowed_from=frozenset({BatchStatus.ARCHIVED}),
        label="Unarchive",
        done="Unarchived",
        message="Unarchived “{name}”: it is back in the lists, in the state it was archived from.",
        summary="Unarchive: back to the finished state the batch was archived from.",
    ),
    BatchAction(
        name="duplicate",
        method="duplicate",
        allowed_from=None,
        label="Duplicate",
        done="Duplicated",
        message="Created “{name}”, a draft copy with the same settings and documents.",
        summary="A new draft with the same settings, tags, template and documents; no results",
        # Duplicating copies the batch's documents into a new batch of the user's,
        # so it asks for the same access as starting it.
        level=Level.CHANGE,
        creates=True,
        on_list=True,
    ),
)

BY_NAME: Mapping[str, BatchAction] = MappingProxyType({action.name: action for action in ACTIONS})
if len(BY_NAME) != len(ACTIONS):
    raise ValueError("Two batch actions share a name.")


def allowed_in(status: str) -> list[str]:
    """The actions the state machine allows from a status, in the table's order."""
    return [action.name for action in ACTIONS if action.allows(status)]
