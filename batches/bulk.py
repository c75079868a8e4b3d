"""One action over many batches, with one outcome per batch.

Each batch is handled on its own (each model method is its own transaction),
so one refusal never undoes the others: the caller learns exactly which
batches moved and why the rest did not.
"""

from collections.abc import Callable
from typing import Any

from batches.exceptions import InvalidTransition
from batches.models import JobBatch
from batches.serializers import MAX_TAGS
from core.permissions import is_superuser

NOT_FOUND = {"ok": False, "code": "not_found", "error": "No such batch, or you may not view it."}
FORBIDDEN = {"ok": False, "code": "permission_denied", "error": "You may view this batch but not change it."}
NOT_OWNER = {"ok": False, "code": "permission_denied", "error": "Only the batch's owner may delete it."}


class Refused(Exception):
    pass


def _add_tags(batch: JobBatch, params: dict[str, Any]) -> JobBatch:
    tags = list(dict.fromkeys([*batch.tags, *params["tags"]]))
    if len(tags) > MAX_TAGS:
        raise Refused(f"A batch carries at most {MAX_TAGS} tags; this one would have {len(tags)}.")
    return batch.edit(tags=tags)


def _remove_tags(batch: JobBatch, params: dict[str, Any]) -> JobBatch:
    return batch.edit(tags=[tag for tag in batch.tags if tag not in params["tags"]])


ACTIONS: dict[str, Callable[[JobBatch, dict[str, Any]], Any]] = {
    "start": lambda batch, params: batch.start_batch(),
    "pause": lambda batch, params: batch.pause_batch(),
    "resume": lambda batch, params: batch.resume_batch(),
    "cancel": lambda batch, params: batch.cancel_batch(),
    "retry": lambda batch, params: batch.retry_failed_jobs(),
    "archive": lambda batch, params: batch.archive(),
    "duplicate": lambda batch, params: batch.duplicate(owner=params["user"]),
    "delete": lambda batch, params: batch.delete_batch(),
    "set_priority": lambda batch, params: batch.edit(priority=params["priority"]),
    "add_tags": _add_tags,
    "remove_tags": _remove_tags,
}


def run_bulk(user, action: str, batch_ids: list[int], **params: Any) -> list[dict[str, Any]]:
    visible = JobBatch.objects.visible_to(user).filter(pk__in=batch_ids)
    batches = {batch.pk: batch for batch in visible}
    # Deleting is the owner's alone; every other action needs change.
    allowed_batches = (
        visible.filter(owner=user)
        if action == "delete" and not is_superuser(user)
        else visible.changeable_by(user)
    )
    allowed = set(allowed_batches.values_list("pk", flat=True))
    refusal = NOT_OWNER if action == "delete" else FORBIDDEN
    operation = ACTIONS[action]
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


def _apply(operation, batch: JobBatch, params: dict[str, Any], action: str) -> dict[str, Any]:
    try:
        returned = operation(batch, params)
    except InvalidTransition as exc:
        return {"ok": False, "code": exc.code, "error": exc.detail, "status": exc.status}
    except Refused as exc:
        return {"ok": False, "code": "invalid", "error": str(exc), "status": batch.status}
    except JobBatch.DoesNotExist:
        # Deleted by someone else between our read and our lock.
        return dict(NOT_FOUND)
    if action == "delete":
        return {"ok": True, "status": "deleted"}
    if action == "duplicate":
        return {"ok": True, "status": batch.status, "duplicate_id": returned.pk}
    return {"ok": True, "status": batch.status}
