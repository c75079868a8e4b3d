"""The inbox: an upload whose documents the uploader's assignment rules send to batches.

`run_inbox` takes what `batches.uploads.read_upload` accepted (so every bound
and zip-bomb guard of a batch upload holds here too) and, for each document,
tries the active rules the uploader may view in order (`run_for`: their own,
then those shared with them; batches/rule_models.py): the first whose
conditions hold takes it, into its target batch or into a batch made from its
template (one per group when the rule groups documents).

Every write is the uploader's: a rule, theirs or shared with them, adds only
to a batch the *uploader* may change, and makes new batches owned by the
uploader from a template the uploader may view. A rule that fails this, or
whose batch no longer takes documents, is skipped with a note and the next
rule tried; so sharing a rule never lets anyone write into the rule owner's
batch (or anyone else's) that they could not write into by hand.
A document no rule takes is stored all the same and kept in the inbox (an
InboxItem), to be assigned by hand (`assign_from_inbox`) or discarded.

Everything is stored or nothing: documents, jobs, new batches and inbox
items in one transaction, the files removed again if it fails. With
`dry_run` nothing is stored at all: no row, no file; the answer says where each
document would go. Batches that received jobs are then started when their
rules (or the rule's own `auto_start`) say so (batches/autostart.py).
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from batches.autostart import start_if_auto
from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from batches.rule_models import AssignmentRule, InboxItem, RuleBatch
from batches.rules import Candidate, PatternError
from batches.uploads import Upload
from grading.documents import read_text, store_document
from grading.models import Document, GradingJob
from grading.schema import SettingsError
from templates_app.models import BatchTemplate

ACCEPTING = (BatchStatus.DRAFT, BatchStatus.PAUSED)
NO_RULE = "No rule matched."


@dataclass
class Target:
    """Where a rule sends documents: an existing batch, or one it makes (or made earlier today) from a template."""

    rule: AssignmentRule
    batch: JobBatch | None
    name: str
    group: str = ""
    placements: list["Placement"] = field(default_factory=list)
    created: bool = False
    started: bool = False
    refused: str = ""

    @property
    def makes_batch(self) -> bool:
        return self.batch is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.batch.pk if self.batch is not None else None,
            "name": self.batch.name if self.batch is not None else self.name,
            "rule": self.rule.pk,
            "group": self.group or None,
            "created": self.created or (self.batch is None),
            "documents": len(self.placements),
            "started": self.started,
        }


@dataclass
class Placement:
    """One document of the upload and where it went (or would go)."""

    upload: Upload
    candidate: Candidate
    extracted: tuple[str, str]
    rule: AssignmentRule | None = None
    target: Target | None = None
    notes: list[str] = field(default_factory=list)
    document: Document | None = None
    jobs: list[GradingJob] = field(default_factory=list)
    kept: str = ""

    def keep(self, reason: str) -> None:
        self.rule, self.target, self.kept = None, None, reason

    def as_dict(self) -> dict[str, Any]:
        target = self.target
        return {
            "name": self.candidate.name,
            "size": self.candidate.size,
            "content_type": self.candidate.content_type,
            "kind": self.candidate.kind or None,
            "outcome": "assigned" if target is not None else "inbox",
            "rule": {"id": self.rule.pk, "name": self.rule.name} if self.rule is not None else None,
            "batch": target.as_dict() if target is not None else None,
            "document": self.document.pk if self.document is not None else None,
            "jobs": [job.pk for job in self.jobs],
            "reason": self.kept or None,
            "notes": self.notes,
        }


@dataclass
class InboxRun:
    dry_run: bool
    placements: list[Placement]
    targets: list[Target]

    @property
    def kept(self) -> list[Placement]:
        return [placement for placement in self.placements if placement.target is None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "documents": [placement.as_dict() for placement in self.placements],
            "batches": [target.as_dict() for target in self.targets if target.placements],
            "kept_in_inbox": len(self.kept),
        }


# --- running the rules ------------------------------------------------------------------


class _Rules:
    """The rules an upload tries, in order, each checked once for what the uploader may reach with it."""

    def __init__(self, uploader):
        self.uploader = uploader
        self.rules = list(
            AssignmentRule.objects.run_for(uploader).select_related("template", "target_batch", "owner")
        )
        self._unavailable: dict[int, str] = {}
        self._targets: dict[tuple, Target] = {}
        self.today = timezone.localdate()

    def unavailable(self, rule: AssignmentRule) -> str:
        """Why the rule cannot take documents now ("" when it can)."""
        if rule.pk not in self._unavailable:
            self._unavailable[rule.pk] = self._why_unavailable(rule)
        return self._unavailable[rule.pk]

    def _why_unavailable(self, rule: AssignmentRule) -> str:
        # Asked of the uploader, whoever owns the rule: the documents, jobs and
        # any new batch are the uploader's. The names of a batch or template the
        # uploader may not see are never told.
        own = rule.owner_id == self.uploader.pk
        if rule.target_batch_id:
            batch = JobBatch.objects.changeable_by(self.uploader).filter(pk=rule.target_batch_id).first()
            if batch is None:
                if own:
                    return "you may no longer change its batch"
                return (
                    f"it is {rule.owner.get_username()}'s rule and sends to a batch you may not change; "
                    "a shared rule adds only to batches you may change"
                )
            if batch.status not in ACCEPTING:
                return (
                    f"its batch “{batch.name}” is {batch.get_status_display().lower()} and takes no documents"
                )
            return ""
        if rule.template_id is None:
            return "its target batch or template was deleted"
        if not BatchTemplate.objects.visible_to(self.uploader).filter(pk=rule.template_id).exists():
            if own:
                return f"you may no longer use the template “{rule.template.name}”"
            return (
                f"it is {rule.owner.get_username()}'s rule and makes batches from a template you may not use"
            )
        return ""

    def target_for(self, rule: AssignmentRule, name: str) -> Target:
        if rule.target_batch_id:
            key: tuple = ("batch", rule.target_batch_id)
            if key not in self._targets:
                self._targets[key] = Target(rule, rule.target_batch, rule.target_batch.name)
            return self._targets[key]
        group = rule.group_of(name)
        batch_name = rule.name_for(group, self.today)
        key = ("new", rule.pk, batch_name)
        if key not in self._targets:
            made = _reusable(rule, self.uploader, group, batch_name)
            self._targets[key] = Target(rule, made, batch_name, group)
        return self._targets[key]

    @property
    def targets(self) -> list[Target]:
        return list(self._targets.values())


def _reusable(rule: AssignmentRule, uploader, group: str, name: str) -> JobBatch | None:
    """A draft this rule made earlier for this uploader, group and name: the day's later uploads join it."""
    made = (
        RuleBatch.objects.filter(
            rule=rule, group=group, batch__name=name, batch__status=BatchStatus.DRAFT, batch__owner=uploader
        )
        .select_related("batch")
        .order_by("-created_at", "-id")
        .first()
    )
    return made.batch if made is not None else None


def place(rules: _Rules, upload: Upload) -> Placement:
    """Try the rules in order on one document; the first that holds and can take it wins."""
    # Read upload's extraction when it made one (read_upload does, within its bounds).
    extracted = (
        (upload.text, upload.error) if upload.text is not None else read_text(upload.name, upload.data)
    )
    placement = Placement(upload, Candidate.of(upload.name, upload.data, extracted[0]), extracted)
    for rule in rules.rules:
        try:
            holds = rule.conditions_hold(placement.candidate)
        except PatternError as exc:
            placement.notes.append(f"Skipped rule “{rule.name}”: {exc}")
            continue
        if not holds:
            continue
        why = rules.unavailable(rule)
        if why:
            placement.notes.append(f"Skipped rule “{rule.name}”: {why}.")
            continue
        try:
            target = rules.target_for(rule, upload.name)
        except PatternError as exc:
            placement.notes.append(f"Skipped rule “{rule.name}”: {exc}")
            continue
        placement.rule, placement.target = rule, target
        target.placements.append(placement)
        return placement
    placement.keep(NO_RULE)
    return placement


def run_inbox(owner, uploads: list[Upload], dry_run: bool = False) -> InboxRun:
    """Send each document where the owner's rules say; store it all, or with dry_run nothing."""
    rules = _Rules(owner)
    placements = [place(rules, upload) for upload in uploads]
    run = InboxRun(dry_run, placements, rules.targets)
    if dry_run:
        return run
    _store(owner, run)
    for target in run.targets:
        if target.batch is not None and target.placements:
            target.started = start_if_auto(target.batch, wanted=target.rule.auto_start)
    return run


def _store(owner, run: InboxRun) -> None:
    stored: list[Document] = []
    try:
        with transaction.atomic():
            for placement in run.placements:
                candidate = placement.candidate
                placement.document = store_document(
                    owner,
                    candidate.name,
                    placement.upload.data,
                    candidate.content_type,
                    text=placement.extracted[0],
                    error=placement.extracted[1],
                    source_path=placement.upload.path,
                )
                stored.append(placement.document)
            for target in run.targets:
                if target.placements:
                    _fill(owner, target)
            InboxItem.objects.bulk_create(
                [
                    InboxItem(document=placement.document, owner=owner, reason=_reason(placement))
                    for placement in run.kept
                ]
            )
    except BaseException:
        # The rows rolled back with the transaction; the files are not transactional.
        for document in stored:
            document.file.delete(save=False)
        raise


def _fill(owner, target: Target) -> None:
    """Add the target's documents to its batch (made now if need be); kept in the inbox if refused."""
    rule = target.rule
    try:
        with transaction.atomic():
            if target.batch is None:
                target.batch = _make_batch(rule, target, owner)
                target.created = True
            jobs = target.batch.add_documents([p.document for p in target.placements], owner=owner)
    except (InvalidTransition, SettingsError) as exc:
        target.batch = None if target.created else target.batch
        target.created = False
        reason = f"Rule “{rule.name}” could not add it: {getattr(exc, 'detail', None) or exc}"
        for placement in list(target.placements):
            placement.keep(reason)
        target.placements.clear()
        return
    by_document: dict[int, list[GradingJob]] = {}
    for job in jobs:
        by_document.setdefault(job.document_id, []).append(job)
    for placement in target.placements:
        placement.jobs = by_document.get(placement.document.pk, [])


def _make_batch(rule: AssignmentRule, target: Target, uploader) -> JobBatch:
    """A new batch from the rule's template, owned by the uploader (whoever owns the rule)."""
    now = timezone.now()
    settings = {"processing": {"auto_start": rule.auto_start}} if rule.auto_start is not None else {}
    batch = JobBatch.objects.create_from_template(
        owner=uploader,
        name=target.name,
        template=rule.template,
        settings=settings,
        description=f"Made by the assignment rule “{rule.name}” from an inbox upload."[:10_000],
        priority=rule.priority,
        tags=list(rule.tags or []),
        deadline=rule.deadline_from(now),
    )
    RuleBatch.objects.create(rule=rule, batch=batch, group=target.group)
    return batch


def _reason(placement: Placement) -> str:
    reason = placement.kept or NO_RULE
    if placement.notes:
        reason = f"{reason} {' '.join(placement.notes)}"
    return reason[:500]


# --- by hand ------------------------------------------------------------------------------


class NotInInbox(LookupError):
    def __init__(self, ids: list[int]):
        self.ids = ids
        super().__init__(f"Not in your inbox: {', '.join(str(i) for i in ids[:20])}.")


@dataclass
class Assigned:
    batch: JobBatch
    documents: list[Document]
    jobs: list[GradingJob]
    started: bool


def inbox_documents(owner, ids: list[int] | None = None) -> list[Document]:
    """Documents of the owner's inbox (all of them, or those ids); NotInInbox names any other id."""
    items = InboxItem.objects.of(owner).select_related("document").order_by("created_at", "document_id")
    if ids is not None:
        items = items.filter(pk__in=ids)
    documents = [item.document for item in items]
    if ids is not None:
        missing = sorted(set(ids) - {document.pk for document in documents})
        if missing:
            raise NotInInbox(missing)
    return documents


def assign_from_inbox(owner, batch: JobBatch, ids: list[int] | None = None) -> Assigned:
    """Add documents of the owner's inbox to a batch (the caller checked change on it), then auto-start."""
    with transaction.atomic():
        documents = inbox_documents(owner, ids)
        jobs = batch.add_documents(documents, owner=owner) if documents else []
        InboxItem.objects.filter(pk__in=[document.pk for document in documents]).delete()
    started = start_if_auto(batch) if documents else False
    return Assigned(batch, documents, jobs, started)


def discard(owner, document_id: int) -> None:
    """Delete a document of the owner's inbox, and its file once the deletion is committed.

    A document an exemplar uses (the uploader named it as one) only leaves the inbox.
    """
    with transaction.atomic():
        document = inbox_documents(owner, [document_id])[0]
        file = document.file
        try:
            with transaction.atomic():
                document.delete()
        except ProtectedError:
            InboxItem.objects.filter(pk=document.pk).delete()
            return
        transaction.on_commit(lambda: file.delete(save=False))
