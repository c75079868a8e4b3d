"""What the web pages show of a batch: its progress, its deadline standing and the
actions a given user may take on it now.

Nothing here changes a batch: the pages call JobBatch's methods for that. These
helpers only decide what to offer, so a button is never shown for an action the
state machine or the user's permissions would refuse.
"""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from batches.actions import ACTIONS, BY_NAME, BatchAction
from batches.eta import Estimate, estimate_finish
from batches.models import BatchStatus, JobBatch
from core import permissions
from grading.models import JobStatus
from grading.progress import Progress

# The actions a grader can take from a row of the list; the batch's page offers all.
# Both follow the table of batch actions (batches/actions.py).
LIST_ACTIONS = tuple(action.name for action in ACTIONS if action.on_list)
DETAIL_ACTIONS = tuple(action.name for action in ACTIONS)


def is_live(batch: JobBatch, counts: dict[str, Any]) -> bool:
    """Whether the page should keep polling: workers may still change this batch."""
    if batch.status in BatchStatus.active():
        return True
    # A paused batch's calls in flight still finish and move the bar.
    return batch.status == BatchStatus.PAUSED and counts[JobStatus.PROCESSING] > 0


def can_be_deleted(batch: JobBatch, counts: dict[str, Any]) -> bool:
    """Mirrors JobBatch.delete_batch's refusal, so the button is offered only when it would work."""
    busy = counts[JobStatus.QUEUED] + counts[JobStatus.PROCESSING]
    return batch.status not in BatchStatus.active() and busy == 0


def _state_allows(action: BatchAction, batch: JobBatch, counts: dict[str, Any]) -> bool:
    """The state machine allows it now, and the batch has the jobs the method needs."""
    if not action.allows(batch.status):
        return False
    return not action.needs_jobs or any(counts[key] for key in action.needs_jobs)


def available_actions(
    batch: JobBatch, access: set[str], counts: dict[str, Any], among: tuple[str, ...]
) -> list[str]:
    return [
        name
        for name in among
        if BY_NAME[name].level.value in access and _state_allows(BY_NAME[name], batch, counts)
    ]


ALL_ACCESS = frozenset({"view", "change", "delete", "manage"})


def access_to(user, batch: JobBatch) -> set[str]:
    """The user's access to one batch: a subset of {"view", "change", "delete", "manage"}."""
    level = permissions.level_of(user, batch)
    if level is None:
        return set()
    access = {held.value for held in level.and_below()}
    if permissions.can_delete(user, batch):
        access.add("delete")
    return access


def access_to_each(user, batches: list[JobBatch]) -> dict[int, set[str]]:
    """Access per batch for a page of the list, in at most two queries whatever its size.

    The page holds only batches the user may view. Deleting is the owner's
    (or a superuser's) and sharing never grants it, so shared rows offer no
    delete here; a delete permission granted by hand in the admin still works
    from the batch's own page, which asks permissions.can_delete.
    """
    if permissions.is_superuser(user):
        return {batch.pk: set(ALL_ACCESS) for batch in batches}
    shared = [batch.pk for batch in batches if batch.owner_id != user.pk]
    changeable = manageable = set()
    if shared:
        changeable = set(
            JobBatch.objects.changeable_by(user).filter(pk__in=shared).values_list("pk", flat=True)
        )
        manageable = set(
            JobBatch.objects.manageable_by(user).filter(pk__in=shared).values_list("pk", flat=True)
        )
    access = {}
    for batch in batches:
        if batch.owner_id == user.pk:
            access[batch.pk] = set(ALL_ACCESS)
        else:
            access[batch.pk] = (
                {"view"}
                | ({"change"} if batch.pk in changeable else set())
                | ({"manage"} if batch.pk in manageable else set())
            )
    return access


@dataclass
class BatchRow:
    """One batch as a row of the list (or the header of its page)."""

    batch: JobBatch
    access: set[str]
    counts: dict[str, Any] = field(init=False)
    actions: list[str] = field(init=False)
    live: bool = field(init=False)
    among: tuple[str, ...] = LIST_ACTIONS
    # Its place in the processing queue while active (batches.queue.attach_places sets it).
    queue: Any = None

    def __post_init__(self) -> None:
        # Read from `with_progress()` annotations when the batch came from such a
        # queryset (no further query), otherwise from one aggregate.
        self.counts = self.batch.known_progress()
        self.actions = available_actions(self.batch, self.access, self.counts, self.among)
        self.live = is_live(self.batch, self.counts)

    @property
    def offered(self) -> list[BatchAction]:
        """The actions offered, as the table declares them (label, style): the buttons to draw."""
        return [BY_NAME[name] for name in self.actions]

    @cached_property
    def estimate(self) -> Estimate:
        """Its estimated finish and deadline standing; from its queue entry when it has one (no further query)."""
        if self.queue is not None:
            return self.queue.estimate
        return estimate_finish(self.batch, self.counts)

    @property
    def standing(self) -> str | None:
        return self.estimate.standing

    @property
    def eta(self):
        """The estimated finish of an active batch (None before there is anything to go by)."""
        if self.batch.status not in BatchStatus.active():
            return None
        return self.estimate.at

    @property
    def eta_by_provider_batch(self) -> bool:
        return self.estimate.by_provider_batch

    @property
    def done(self) -> int:
        return Progress.from_counts(self.counts).done

    @property
    def can_delete(self) -> bool:
        return "delete" in self.access and can_be_deleted(self.batch, self.counts)

    @property
    def can_change(self) -> bool:
        return "change" in self.access


def rows_for(user, batches: list[JobBatch], among: tuple[str, ...] = LIST_ACTIONS) -> list[BatchRow]:
    access = access_to_each(user, batches)
    return [BatchRow(batch, access[batch.pk], among=among) for batch in batches]
