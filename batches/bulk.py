"""One action over many batches, with one outcome per batch.

Each batch is handled on its own (each model method is its own transaction),
so one refusal never undoes the others: the caller learns exactly which
batches moved and why the rest did not. The batch actions are those of
batches/actions.py; besides them bulk deletes and edits.
"""

from collections.abc import Callable
from typing import Any

from batches.actions import ACTIONS, BY_NAME, BatchAction
from batches.exceptions import InvalidTransition
from batches.models import JobBatch
from batches.serializers import MAX_TAGS
from core.permissions import Level, is_superuser

NOT_FOUND = {"ok": False, "code": "not_found", "error": "No such batch, or you may not view it."}
NOT_OWNER = {"ok": False, "code": "permission_denied", "error": "Only the batch's owner may delete it."}


def forbidden(level: Level) -> dict[str, Any]:
    return {
        "ok": False,
        "code": "permission_denied",
        "error": f"You may view this batch but not {level.verb}.",
    }


class Refused(Exception):
    pass


def _add_tags(batch: JobBatch, params: dict[str, Any]) -> JobBatch:
    tags = list(dict.fromkeys([*batch.tags, *params["tags"]]))
    if len(tags) > MAX_TAGS:
        raise Refused(f"A batch carries at most {MAX_TAGS} tags; this one would have {len(tags)}.")
    return batch.edit(tags=tags)


def _remove_tags(batch: JobBatch, params: dict[str, Any]) -> JobBatch:
    return batch.edit(tags=[tag for tag in batch.tags if tag not in params["tags"]])


Operation = Callable[[JobBatch, dict[str, Any]], Any]

# What bulk does besides the batch actions: delete (the owner's alone) and edit fields (change).
DELETE = "delete"
EDITS: dict[str, Operation] = {
    DELETE: lambda batch, params: batch.delete_batch(),
    "set_priority": lambda batch, params: batch.edit(priority=params["priority"]),
    "add_tags": _add_tags,
    "remove_tags": _remove_tags,
}


# The edits' names where a person picks one (the web list's bulk bar); the batch
# actions are named by their table entry's label.
EDIT_LABELS: dict[str, str] = {
    "set_priority": "Set priority",
    "add_tags": "Add tags",
    "remove_tags": "Remove tags",
    DELETE: "Delete",
}
# The web's note once an edit is done: "<done> 3 batches."
EDIT_DONE: dict[str, str] = {
    "set_priority": "Set the priority of",
    "add_tags": "Added the tags to",
    "remove_tags": "Removed the tags from",
    DELETE: "Deleted",
}
# What an edit asks for besides the batches (the API's and the web's required field).
EDIT_NEEDS: dict[str, str] = {"set_priority": "priority", "add_tags": "tags", "remove_tags": "tags"}


def label_of(action: str) -> str:
    batch_action = BY_NAME.get(action)
    return batch_action.label if batch_action else EDIT_LABELS[action]


def done_of(action: str) -> str:
    batch_action = BY_NAME.get(action)
    return batch_action.done if batch_action else EDIT_DONE[action]


def asks_first(action: str) -> bool:
    """Whether a person is asked before it runs: deleting, and the actions whose entry sets `confirm`.

    The API acts at once, as it always has; the web list shows a confirmation page.
    """
    batch_action = BY_NAME.get(action)
    return bool(batch_action.confirm) if batch_action else action == DELETE


def _running(batch_action: BatchAction) -> Operation:
    return lambda batch, params: batch_action.run(batch, params["user"])


# Every batch action of batches/actions.py, then the edits.
OPERATIONS: dict[str, Operation] = {
    **{batch_action.name: _running(batch_action) for batch_action in ACTIONS},
    **EDITS,
}


def run_bulk(user, action: str, batch_ids: list[int], **params: Any) -> list[dict[str, Any]]:
    visible = JobBatch.objects.visible_to(user).filter(pk__in=batch_ids)
    batches = {batch.pk: batch for batch in visible}
    batch_action = BY_NAME.get(action)
    # Deleting is the owner's alone; a batch action needs the level it names; an edit, change.
    level = batch_action.level if batch_action else Level.CHANGE
    if action == DELETE and not is_superuser(user):
        allowed_batches = visible.filter(owner=user)
    else:
        allowed_batches = visible.accessible_to(user, level)
    allowed = set(allowed_batches.values_list("pk", flat=True))
    refusal = NOT_OWNER if action == DELETE else forbidden(level)
    operation = OPERATIONS[action]
    outcomes = []
    for pk in batch_ids:
        batch = batches.get(pk)
        if batch is None:
            outcomes.append({"id": pk, **NOT_FOUND})
        elif pk not in allowed:
            outcomes.append({"id": pk, **refusal})
        else:
            outcomes.append({"id": pk, **_apply(operation, batch, {**params, "user": user}, action)})
    return outcomes


def _apply(operation: Operation, batch: JobBatch, params: dict[str, Any], action: str) -> dict[str, Any]:
    try:
        returned = operation(batch, params)
    except InvalidTransition as exc:
        return {"ok": False, "code": exc.code, "error": exc.detail, "status": exc.status}
    except Refused as exc:
        return {"ok": False, "code": "invalid", "error": str(exc), "status": batch.status}
    except JobBatch.DoesNotExist:
        # Deleted by someone else between our read and our lock.
        return dict(NOT_FOUND)
    if action == DELETE:
        return {"ok": True, "status": "deleted"}
    batch_action = BY_NAME.get(action)
    if batch_action is not None and batch_action.creates:
        return {"ok": True, "status": batch.status, "duplicate_id": returned.pk}
    return {"ok": True, "status": batch.status}
