import contextlib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as conf
from django.db import connections, models, transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.dispatch import receiver
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from batches.actions import ACTIONS
from batches.calibration import calibrate_batch
from batches.dispatch import enqueue_processing
from batches.exceptions import InvalidTransition, NothingToCalibrate, StillGrading
from batches.signals import announce, batch_finished, batch_paused_for_provider

# Student is defined beside its matching rules and registered with this app's models here.
from batches.students import Student, copy_students, identify_students  # noqa: F401
from core.names import with_suffix
from core.permissions import Level, filter_accessible
from grading import circuits, economy, economy_engine, wakeups
from grading.merge import merge_into
from grading.models import Document, GradingJob
from grading.progress import Progress
from grading.schema import GradingSettings, JobStructure, validate_job_structure, validate_settings

# The batch status vocabulary lives below both apps, in grading.statuses, so that
# grading's claims read the same active states; it is imported from here too.
from grading.statuses import BatchStatus, JobStatus

# action -> the states it may start from (None: any state): read from the table of
# batch actions, the one place they are declared (batches/actions.py).
TRANSITIONS: dict[str, frozenset[str] | None] = {action.name: action.allowed_from for action in ACTIONS}


class JobBatchQuerySet(models.QuerySet):
    def accessible_to(self, user, level: Level) -> "JobBatchQuerySet":
        """Batches the user owns or holds `level` on, directly or through a group.

        Subqueries on guardian's direct-foreign-key tables rather than joins, so
        the list needs no DISTINCT and stays one query however much is shared.
        """
        return filter_accessible(self, user, level)

    def visible_to(self, user) -> "JobBatchQuerySet":
        return self.accessible_to(user, Level.VIEW)

    def changeable_by(self, user) -> "JobBatchQuerySet":
        return self.accessible_to(user, Level.CHANGE)

    def manageable_by(self, user) -> "JobBatchQuerySet":
        """Batches the user may share: owned, or shared at `manage`."""
        return self.accessible_to(user, Level.MANAGE)

    def with_progress(self) -> "JobBatchQuerySet":
        """Annotate job counts per status in the same query as the batches.

        Correlated subqueries on the (batch, status) index (JobCount), not a
        JOIN with GROUP BY: PostgreSQL computes them only for the rows of the
        page after the ORDER BY ... LIMIT, the total count needs no join, and
        the model's ordering still applies (Django drops Meta.ordering from
        GROUP BY queries). bench/visibility.py measures the first page of a
        large list; README, the visibility benchmark, has the figures.
        """
        counts = {progress_annotation(status.value): JobCount(status.value) for status in JobStatus}
        return self.annotate(**{progress_annotation("total"): JobCount()}, **counts)

    def active(self) -> "JobBatchQuerySet":
        return self.filter(status__in=BatchStatus.active())

    def tagged(self, *tags: str) -> "JobBatchQuerySet":
        """Batches carrying every one of the tags."""
        queryset = self
        for tag in tags:
            if self.db and connections[self.db].vendor == "sqlite":
                # SQLite has no JSON containment lookup; json_each walks the list.
                table = self.model._meta.db_table
                queryset = queryset.filter(
                    RawSQL(
                        f'EXISTS (SELECT 1 FROM json_each("{table}"."tags") WHERE json_each.value = %s)',
                        (tag,),
                        output_field=BooleanField(),
                    )
                )
            else:
                queryset = queryset.filter(tags__contains=[tag])
        return queryset

    def archivable(self, finished_before: datetime, statuses: list[str] | None = None) -> "JobBatchQuerySet":
        """Finished batches (of the given finished states) whose work ended before the cut-off.

        A batch someone unarchived since the cut-off is left alone: it was brought back on purpose.
        """
        return self.filter(
            Q(unarchived_at__isnull=True) | Q(unarchived_at__lt=finished_before),
            status__in=statuses or BatchStatus.finished(),
            completed_at__lt=finished_before,
        )

    def create_from_template(
        self, *, owner, name: str, template=None, settings: dict[str, Any] | None = None, **fields: Any
    ) -> "JobBatch":
        """A draft batch whose effective settings are validated before it is saved."""
        batch = self.model(owner=owner, name=name, template=template, settings=settings or {}, **fields)
        batch.validated_settings()
        with transaction.atomic():
            batch.save()
            if template is not None:
                template.count_use()
        return batch


def progress_annotation(key: str) -> str:
    """The name with_progress() gives a count: "total" or a job status -> "jobs_total", "jobs_failed"."""
    return f"jobs_{key}"


class JobCount(models.Expression):
    """COUNT(*) of a batch's jobs, optionally in one status, as a correlated subquery.

    The same SQL as Subquery(GradingJob.objects.filter(batch=OuterRef("pk"))
    .annotate(Count)), written out: building and compiling seven of those
    querysets cost more CPU per list request than the database spent
    answering it (bench/visibility.py; README, the visibility benchmark, has
    the figures). The outer alias is tracked like a column's, so the
    expression survives relabelling when its queryset becomes a subquery.
    """

    output_field = models.IntegerField()

    def __init__(self, status: str | None = None, alias: str | None = None) -> None:
        super().__init__()
        self.status, self.alias = status, alias

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        clone = self.copy()
        clone.alias = query.get_initial_alias()
        return clone

    def relabeled_clone(self, change_map: dict[str, str]) -> "JobCount":
        clone = self.copy()
        clone.alias = change_map.get(self.alias, self.alias)
        return clone

    def get_group_by_cols(self) -> list:
        return []

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        quote = connection.ops.quote_name
        jobs = GradingJob._meta
        batch_column = quote(jobs.get_field("batch").column)
        sql = (
            f"(SELECT COUNT(*) FROM {quote(jobs.db_table)} progress_job "
            f"WHERE progress_job.{batch_column} = {compiler.quote_name_unless_alias(self.alias)}."
            f"{quote(JobBatch._meta.pk.column)}"
        )
        if self.status is None:
            return f"{sql})", []
        return f"{sql} AND progress_job.{quote(jobs.get_field('status').column)} = %s)", [self.status]


class JobBatch(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=30, choices=BatchStatus.choices, default=BatchStatus.DRAFT)
    priority = models.PositiveSmallIntegerField(default=5)
    tags = models.JSONField(default=list, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    template = models.ForeignKey(
        "templates_app.BatchTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="batches",
    )
    owner = models.ForeignKey(conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    # The finished state the batch was archived from, so unarchiving returns to it.
    archived_from = models.CharField(max_length=30, blank=True, choices=BatchStatus.choices)
    # When it was last unarchived: the daily archival leaves it for another ARCHIVE_AFTER.
    unarchived_at = models.DateTimeField(null=True, blank=True)
    # The last calibration to the teacher's scale (batches/calibration.py): per
    # provider and model, the map and its cross-validated agreement.
    calibration = models.JSONField(default=dict, blank=True)
    # How file names say who wrote each document (grading/naming.py), set by the API or
    # an upload; "" takes the template's job_structure.student_pattern.
    student_pattern = models.CharField(max_length=200, blank=True)

    objects = JobBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "batch"
        verbose_name_plural = "batches"
        permissions = [("manage_jobbatch", "Can share the batch")]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=1) & Q(priority__lte=10), name="batch_priority_1_to_10"
            ),
            models.CheckConstraint(condition=Q(status__in=BatchStatus.values), name="batch_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "-priority"], name="batch_status_priority"),
            models.Index(fields=["owner", "-created_at"], name="batch_owner_created"),
            # Lists are newest first: a superuser's first page reads 25 index
            # entries instead of sorting every batch.
            models.Index(fields=["-created_at", "-id"], name="batch_created"),
        ]

    def __str__(self) -> str:
        return self.name

    # --- settings ---------------------------------------------------------

    def effective_settings(self, job_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Template defaults <- batch settings <- job overrides."""
        # settings_layer() is already a fresh copy: merge onto it rather than copy it again.
        template_layer = self.template.settings_layer() if self.template_id else {}
        return merge_into(template_layer, self.settings, job_overrides)

    def validated_settings(self, job_overrides: dict[str, Any] | None = None) -> GradingSettings:
        """The effective settings, validated; raises SettingsError with field-level messages."""
        return validate_settings(self.effective_settings(job_overrides))

    @property
    def job_structure(self) -> dict[str, Any]:
        return (self.template.job_structure if self.template_id else None) or {}

    def effective_student_pattern(self) -> str:
        """The batch's own student pattern, else its template's ("" when neither sets one)."""
        if self.student_pattern:
            return self.student_pattern
        try:
            return JobStructure.model_validate(self.job_structure).student_pattern
        except ValueError:
            return ""

    def calibrate(self) -> dict[str, Any]:
        """Fit the teacher's scale from the batch's exemplars and re-score its results (no provider call)."""
        return calibrate_batch(self)

    def waiting_for_provider(self, outages: dict | None = None) -> dict[str, Any] | None:
        """{provider, reason, since} while the provider of its waiting jobs is down (its circuit open).

        `outages` (grading.circuits.outages()) may be passed by a caller showing many batches.
        """
        if self.status not in BatchStatus.active():
            return None
        outages = circuits.outages() if outages is None else outages
        if not outages:
            return None
        provider = (
            GradingJob.objects.in_batch(self)
            .filter(status__in=JobStatus.in_flight(), provider__in=list(outages))
            .values_list("provider", flat=True)
            .first()
        )
        return outages[provider].as_dict() if provider else None

    def economy_submissions(self) -> list[dict[str, Any]]:
        """Its economy submissions: per provider batch, requests submitted and finished, and when expected."""
        return economy_engine.progress([self.pk]).get(self.pk, [])

    def progress(self) -> dict[str, int]:
        """Progress.as_dict() of the batch's jobs, in one aggregate query."""
        return GradingJob.objects.in_batch(self).progress()

    def known_progress(self) -> dict[str, int]:
        """progress(), read from the with_progress() annotations when this row has them (no query)."""
        if not hasattr(self, progress_annotation("total")):
            return self.progress()
        counts = {key: getattr(self, progress_annotation(key)) for key in ("total", *JobStatus.values)}
        return Progress.from_counts(counts).as_dict()

    # --- jobs -------------------------------------------------------------

    def add_documents(self, documents: list[Document], owner=None) -> list[GradingJob]:
        """One job per document, or per document x model when the settings name several.

        Allowed while the batch is a draft (its jobs wait for start) or paused
        (the new jobs get their settings snapshot and are queued at once).
        """
        with transaction.atomic():
            batch = JobBatch.objects.select_for_update().get(pk=self.pk)
            if batch.status not in (BatchStatus.DRAFT, BatchStatus.PAUSED):
                raise InvalidTransition(
                    "add_jobs", batch.status, "Jobs can be added only while the batch is a draft or paused."
                )
            settings = batch.validated_settings()
            structure = validate_job_structure(batch.job_structure)
            own = (settings.provider, settings.model)
            targets = settings.grading_targets() if structure.per_model else [own]
            compare = len(targets) > 1
            first = GradingJob.objects.in_batch(batch).count() + 1
            pairs = ((document, target) for document in documents for target in targets)
            jobs = []
            for index, (document, (provider, model)) in enumerate(pairs, start=first):
                # A job grading with other than the batch's provider and model carries its own.
                overrides = (
                    _target_overrides(settings.provider, provider, model)
                    if compare or (provider, model) != own
                    else {}
                )
                label = model if provider == settings.provider else f"{provider}:{model}"
                jobs.append(
                    GradingJob(
                        name=_job_name(
                            structure.naming, batch, document, model, provider, index, compare, label
                        ),
                        batch=batch,
                        document=document,
                        owner=owner or batch.owner,
                        model=model if overrides else "",
                        overrides=overrides,
                    )
                )
            GradingJob.objects.bulk_create(jobs, batch_size=500)
            identify_students(batch, documents)
            if batch.status == BatchStatus.PAUSED:
                batch._snapshot_settings(GradingJob.objects.in_batch(batch))
        return jobs

    def remove_job(self, job: GradingJob) -> None:
        """Take a job out of the batch; refused while a worker holds it.

        The job and any result are kept as a stand-alone job of the batch's
        owner, whoever uploaded it: a job follows its batch, so its uploader
        held it only through the batch and keeps nothing once it leaves.
        Unfinished work is cancelled so no worker claims it any more.
        """
        with transaction.atomic():
            batch = JobBatch.objects.select_for_update().get(pk=self.pk)
            locked = GradingJob.objects.select_for_update().filter(pk=job.pk, batch=batch).first()
            if locked is None:
                # Removed by another request (the button clicked twice) since the job was read.
                raise InvalidTransition(
                    "remove_job",
                    batch.status,
                    "This job is no longer in the batch: it was removed meanwhile.",
                )
            if locked.status == JobStatus.PROCESSING:
                raise InvalidTransition(
                    "remove_job", batch.status, "Cannot remove a job while a worker is grading it."
                )
            if batch.status == BatchStatus.ARCHIVED:
                raise InvalidTransition("remove_job", batch.status)
            locked.batch, locked.owner_id, locked.removed_from = None, batch.owner_id, batch
            if locked.status in (JobStatus.PENDING, JobStatus.QUEUED):
                locked.status = JobStatus.CANCELLED
                locked.completed_at = timezone.now()
            locked.save(update_fields=["batch", "owner", "status", "completed_at", "removed_from"])
        if batch.status in BatchStatus.active():
            batch.finalize()

    def removed_jobs_to_restore(self):
        """Graded jobs taken out of this batch that are still in no batch: restore_job puts them back."""
        return (
            GradingJob.objects.filter(removed_from=self, batch__isnull=True, result__isnull=False)
            .select_related("document", "result")
            .order_by("created_at", "id")
        )

    def restore_job(self, job: GradingJob) -> GradingJob:
        """Put back a job removed from this batch (the undo of remove_job), with its grade and review.

        Only a job that came out of this batch and has been in no batch since;
        refused once the batch is archived. A job cancelled by its removal
        waits again in a draft; elsewhere it comes back cancelled, and
        "Retry failed" queues it.
        """
        with transaction.atomic():
            batch = JobBatch.objects.select_for_update().get(pk=self.pk)
            if batch.status == BatchStatus.ARCHIVED:
                raise InvalidTransition("restore_job", batch.status, "An archived batch cannot be changed.")
            locked = (
                GradingJob.objects.select_for_update()
                .filter(pk=job.pk, removed_from=batch, batch__isnull=True)
                .first()
            )
            if locked is None:
                raise InvalidTransition(
                    "restore_job", batch.status, "This job is no longer one removed from the batch."
                )
            locked.batch, locked.removed_from = batch, None
            if (
                batch.status == BatchStatus.DRAFT
                and locked.status == JobStatus.CANCELLED
                and not hasattr(locked, "result")
            ):
                locked.status, locked.completed_at = JobStatus.PENDING, None
            locked.save(update_fields=["batch", "removed_from", "status", "completed_at"])
        return locked

    # --- editing --------------------------------------------------------------

    def edit(self, **changes: Any) -> "JobBatch":
        """Change fields under the row lock, by the rules of the batch's state.

        name, description, tags, priority and deadline may change until the
        batch is archived; settings and template only while it is a draft or
        paused, since running jobs work from a snapshot of them. Values equal to
        the current ones are not changes, so a client may send back what it read.
        """
        unknown = set(changes) - set(EDITABLE_ANY_TIME) - set(EDITABLE_WHEN_STOPPED)
        if unknown:
            raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
        with transaction.atomic():
            batch = JobBatch.objects.select_for_update().get(pk=self.pk)
            changed = {field: value for field, value in changes.items() if _differs(batch, field, value)}
            if batch.status == BatchStatus.ARCHIVED and changed:
                raise InvalidTransition("edit", batch.status, "An archived batch cannot be changed.")
            settings_changed = set(changed) & set(EDITABLE_WHEN_STOPPED)
            if settings_changed and not BatchStatus(batch.status).settings_editable:
                raise InvalidTransition(
                    "edit_settings",
                    batch.status,
                    "Settings can be changed only while the batch is a draft or paused.",
                )
            for field, value in changed.items():
                setattr(batch, field, value)
            if settings_changed:
                batch.validated_settings()
            if changed:
                batch.save(update_fields=list(changed))
            if settings_changed and batch.status == BatchStatus.PAUSED:
                batch._resnapshot_queued()
            if {"student_pattern", "template"} & set(changed):
                identify_students(batch)
        for field in changed:
            setattr(self, field, getattr(batch, field))
        return self

    def _resnapshot_queued(self) -> None:
        """Give the queued jobs of a paused batch its new settings before it resumes."""
        queued = GradingJob.objects.in_batch(self).filter(status=JobStatus.QUEUED)
        # Jobs that took the batch's model take the new one; a comparison's
        # per-job models come from their overrides again.
        queued.filter(overrides={}).update(status=JobStatus.PENDING, model="")
        queued.update(status=JobStatus.PENDING)
        self._snapshot_settings(GradingJob.objects.in_batch(self))

    # --- the state machine ---------------------------------------------------
    #
    # Every transition re-reads the row under SELECT ... FOR UPDATE inside one
    # transaction, checks the state it read (not the possibly stale state on
    # self), and writes. Two concurrent requests therefore serialise on the row
    # lock and the second sees the first's result: only one of them can succeed
    # where only one may. On SQLite the IMMEDIATE transaction mode gives the
    # same serialisation through the database-wide write lock.

    def _locked(self, action: str) -> "JobBatch":
        locked = JobBatch.objects.select_for_update().get(pk=self.pk)
        sources = TRANSITIONS.get(action)
        if sources is not None and locked.status not in sources:
            raise InvalidTransition(action, locked.status)
        return locked

    def _refresh_from(self, locked: "JobBatch") -> None:
        for field in (
            "status",
            "started_at",
            "completed_at",
            "archived_at",
            "archived_from",
            "unarchived_at",
        ):
            setattr(self, field, getattr(locked, field))

    def start_batch(self) -> "JobBatch":
        """draft -> pending: snapshot the effective settings into every job and queue them."""
        with transaction.atomic():
            batch = self._locked("start")
            jobs = GradingJob.objects.in_batch(batch)
            if not jobs.exists():
                raise InvalidTransition("start", batch.status, "A batch needs at least one job to start.")
            problems = batch.validated_settings().problems()
            if problems:
                # Every job would fail the same way: refuse now, saying what to set.
                raise InvalidTransition("start", batch.status, " ".join(problems))
            batch._snapshot_settings(jobs)
            batch.status = BatchStatus.PENDING
            batch.started_at = timezone.now()
            batch.completed_at = None
            batch.save(update_fields=["status", "started_at", "completed_at"])
            transaction.on_commit(batch._enqueue_processing)
        self._refresh_from(batch)
        return self

    def _snapshot_settings(self, jobs) -> None:
        pending = jobs.filter(status=JobStatus.PENDING)
        # Jobs with their own overrides (a model comparison's other models, say)
        # get their own snapshot; the rest share the batch's in one UPDATE.
        with_overrides = [
            GradingJob(pk=pk, overrides=overrides, model=model)
            for pk, overrides, model in pending.values_list("pk", "overrides", "model")
            if overrides
        ]
        base = validate_settings(self.effective_settings())
        pending.filter(model="").update(model=base.model)
        pending.update(
            settings=base.model_dump(mode="json"),
            provider=base.provider,
            max_attempts=base.processing.max_attempts,
            status=JobStatus.QUEUED,
            attempts=0,
            next_attempt_at=None,
        )
        for job in with_overrides:
            own = validate_settings(self.effective_settings(job.overrides))
            job.settings = own.model_dump(mode="json")
            job.provider = own.provider
            job.model = job.overrides.get("model") or own.model
            job.max_attempts = own.processing.max_attempts
        GradingJob.objects.bulk_update(
            with_overrides, ["settings", "provider", "model", "max_attempts"], batch_size=500
        )
        self._decide_delivery(base.processing.delivery)

    def _decide_delivery(self, rule: str) -> None:
        """The queued jobs of each provider get the delivery decided from the rule and the deadline
        (grading.economy.decide): every queued job was just snapshotted."""
        queued = GradingJob.objects.in_batch(self).filter(status=JobStatus.QUEUED)
        for provider in set(queued.values_list("provider", flat=True)):
            decision = economy.decide(rule, provider, self.deadline)
            queued.filter(provider=provider).update(delivery=decision.delivery)

    def _enqueue_processing(self) -> None:
        enqueue_processing(self.pk)

    def pause_batch(self) -> "JobBatch":
        """pending/processing -> paused: no new claims; calls in flight finish and are kept."""
        return self._simple_transition("pause", BatchStatus.PAUSED)

    def pause_for_provider(self, provider: str, reason: str, since: datetime) -> "JobBatch":
        """pending/processing -> paused because its provider has been down too long; its people are told."""
        with transaction.atomic():
            batch = self._locked("pause")
            batch.status = BatchStatus.PAUSED
            batch.save(update_fields=["status"])
            announce(batch_paused_for_provider, batch, provider=provider, reason=reason, since=since)
        self._refresh_from(batch)
        return self

    def resume_batch(self) -> "JobBatch":
        """paused -> processing: workers claim the batch's jobs again."""
        with transaction.atomic():
            batch = self._locked("resume")
            batch.status = BatchStatus.PROCESSING
            batch.save(update_fields=["status"])
            transaction.on_commit(batch._enqueue_processing)
        self._refresh_from(batch)
        return self

    def _simple_transition(self, action: str, target: str) -> "JobBatch":
        with transaction.atomic():
            batch = self._locked(action)
            batch.status = target
            batch.save(update_fields=["status"])
        self._refresh_from(batch)
        return self

    def cancel_batch(self) -> "JobBatch":
        """Cancel queued work; jobs already in flight finish and their results are kept."""
        with transaction.atomic():
            batch = self._locked("cancel")
            now = timezone.now()
            GradingJob.objects.in_batch(batch).filter(
                status__in=[JobStatus.PENDING, JobStatus.QUEUED]
            ).update(status=JobStatus.CANCELLED, completed_at=now, lease_expires_at=None)
            batch.status = BatchStatus.CANCELLED
            batch.completed_at = now
            batch.save(update_fields=["status", "completed_at"])
            # Runners holding its jobs ready hear of it as it commits, and start none of them.
            wakeups.announce_stopped(batch.pk)
            # Its open provider batches are cancelled once this commits; what they finished is kept.
            transaction.on_commit(lambda: economy_engine.cancel_open(batch.pk))
            announce(batch_finished, batch)
        self._refresh_from(batch)
        return self

    def retry_failed_jobs(self) -> "JobBatch":
        """Re-queue failed and cancelled jobs with their attempts reset.

        Jobs whose document cannot be graded are skipped, since they would only
        fail again: its text could not be extracted (`extraction_error`) or it
        has none. What was done is left in `self.report` (re-queued count, the
        skipped jobs and a sentence saying so) for the API and the web.
        """
        with transaction.atomic():
            batch = self._locked("retry")
            ended = GradingJob.objects.in_batch(batch).filter(
                status__in=[JobStatus.FAILED, JobStatus.CANCELLED]
            )
            if not ended.exists():
                raise InvalidTransition(
                    "retry", batch.status, "The batch has no failed or cancelled jobs to retry."
                )
            hopeless = ended.filter(_UNGRADABLE_DOCUMENT)
            skipped_count = hopeless.count()
            skipped = [
                {
                    "id": job.pk,
                    "name": job.name,
                    "document": job.document.original_name,
                    "reason": _why_ungradable(job),
                }
                for job in hopeless.select_related("document")
                .only("name", "document__original_name", "document__extraction_error")
                .order_by("created_at", "id")[:MAX_REPORTED]
            ]
            retried = ended.exclude(_UNGRADABLE_DOCUMENT)
            requeued = retried.count()
            if not requeued:
                raise InvalidTransition(
                    "retry",
                    batch.status,
                    f"Nothing to retry: {_skipped_sentence(skipped, skipped_count)} Remove "
                    f"{'it' if skipped_count == 1 else 'them'}, or upload readable documents.",
                )
            # A cancelled draft never got its settings snapshot; take it now.
            if batch.started_at is None:
                retried.update(status=JobStatus.PENDING)
                batch._snapshot_settings(GradingJob.objects.in_batch(batch))
            retried.update(
                status=JobStatus.QUEUED,
                attempts=0,
                last_error="",
                next_attempt_at=None,
                lease_expires_at=None,
                started_at=None,
                completed_at=None,
                duration_ms=None,
            )
            batch.status = BatchStatus.PENDING
            batch.started_at = batch.started_at or timezone.now()
            batch.completed_at = None
            batch.save(update_fields=["status", "started_at", "completed_at"])
            transaction.on_commit(batch._enqueue_processing)
        self._refresh_from(batch)
        self.report = {"requeued": requeued, "skipped_count": skipped_count, "skipped": skipped}
        if skipped_count:
            self.report["message"] = (
                f"Re-queued {requeued} job{'s' if requeued != 1 else ''} of “{batch.name}”; "
                f"{skipped_count} skipped: {_skipped_sentence(skipped, skipped_count)}"
            )
        return self

    def archive(self, finished_before: datetime | None = None) -> "JobBatch":
        """Archive a finished batch; with finished_before, only if it still finished before then.

        The cut-off is re-checked under the row lock: a batch retried and finished
        again since the caller selected it is no longer old enough.
        """
        with transaction.atomic():
            batch = self._locked("archive")
            if finished_before is not None and not (
                batch.completed_at and batch.completed_at < finished_before
            ):
                raise InvalidTransition("archive", batch.status, "The batch finished after the cut-off.")
            if finished_before is not None and batch.unarchived_at and batch.unarchived_at >= finished_before:
                raise InvalidTransition(
                    "archive", batch.status, "The batch was unarchived after the cut-off."
                )
            batch.archived_from = batch.status
            batch.status = BatchStatus.ARCHIVED
            batch.archived_at = timezone.now()
            batch.save(update_fields=["status", "archived_at", "archived_from"])
        self._refresh_from(batch)
        return self

    def unarchive(self) -> "JobBatch":
        """archived -> the finished state it was archived from, back in the lists.

        Batches archived before that state was kept get the state their jobs
        give (final_status). The daily archival leaves an unarchived batch
        for another ARCHIVE_AFTER.
        """
        with transaction.atomic():
            batch = self._locked("unarchive")
            batch.status = batch.archived_from or final_status(batch.progress())
            batch.archived_from = ""
            batch.archived_at = None
            batch.unarchived_at = timezone.now()
            batch.save(update_fields=["status", "archived_from", "archived_at", "unarchived_at"])
        self._refresh_from(batch)
        return self

    def as_template(self) -> dict[str, Any]:
        """A template's fields made from this batch ("save as template"): the settings it grades with.

        The effective settings (template defaults with the batch's overrides),
        every value written out, so later edits of the batch's own template do
        not reach the new one; the rules for file names and student names too.
        A batch whose template was deleted since it started (its owner may,
        once the batch is archived) takes the settings its jobs were graded with.
        """
        base = self.template.settings_layer() if self.template_id else self._graded_settings()
        settings = validate_settings(merge_into(base, self.settings)).model_dump(
            mode="json", exclude_none=True
        )
        processing = settings.pop("processing")
        job_structure = dict(self.job_structure)
        if self.effective_student_pattern():
            job_structure["student_pattern"] = self.effective_student_pattern()
        return {
            "name": with_suffix(self.name, "(template)"),
            "description": f"Made from the batch “{self.name}”."[:10_000],
            "category": self.template.category if self.template_id else "other",
            "default_settings": settings,
            "processing_rules": processing,
            "job_structure": job_structure,
        }

    def _graded_settings(self) -> dict[str, Any]:
        """The settings snapshotted into the batch's jobs when it started; {} for a batch never started.

        A job of the batch's own model (no overrides) is preferred: a compared
        model's job holds that model in its snapshot.
        """
        snapshots = GradingJob.objects.in_batch(self).exclude(settings={}).order_by("pk")
        for overrides, settings in snapshots.values_list("overrides", "settings")[:100]:
            if not overrides:
                return settings
        return snapshots.values_list("settings", flat=True).first() or {}

    def duplicate(self, owner=None, name: str | None = None) -> "JobBatch":
        """A new draft with the same settings, tags, template and documents; no results.

        A batch whose template was deleted since it started passes on the
        settings its jobs were graded with, written out, as the copy has no
        template to take the rest from.
        """
        settings = dict(self.settings)
        if self.template_id is None:
            settings = merge_into(self._graded_settings(), settings)
        with transaction.atomic():
            copy = JobBatch.objects.create(
                name=name or with_suffix(self.name, "(copy)"),
                description=self.description,
                priority=self.priority,
                tags=list(self.tags),
                settings=settings,
                template_id=self.template_id,
                owner=owner or self.owner,
                deadline=self.deadline,
                student_pattern=self.student_pattern,
            )
            GradingJob.objects.bulk_create(
                [
                    GradingJob(
                        # Names made from the batch's name ("{batch} – {filename}") follow the copy's.
                        name=job.name.replace(self.name, copy.name, 1)[:300] if self.name else job.name,
                        batch=copy,
                        document_id=job.document_id,
                        owner=copy.owner,
                        model=job.model if job.overrides.get("model") else "",
                        overrides=job.overrides,
                    )
                    for job in GradingJob.objects.in_batch(self).only(
                        "name", "document_id", "overrides", "model"
                    )
                ],
                batch_size=500,
            )
            copy_students(self, copy)
            if copy.template_id:
                copy.template.count_use()
        return copy

    def has_work_in_flight(self) -> bool:
        """Workers may hold or be about to take this batch's jobs: deleting it is refused."""
        busy = GradingJob.objects.in_batch(self).filter(status__in=JobStatus.in_flight())
        return self.status in BatchStatus.active() or busy.exists()

    def delete_batch(self) -> None:
        """Delete the batch and its jobs, refused while any job is queued or in flight."""
        with transaction.atomic():
            batch = JobBatch.objects.select_for_update().get(pk=self.pk)
            if batch.has_work_in_flight():
                raise InvalidTransition(
                    "delete",
                    batch.status,
                    "Cannot delete a batch while jobs are queued or in flight; pause or cancel it first.",
                )
            batch.delete()

    def finalize(self) -> bool:
        """Set the final status once the last job has ended. True when this call did it.

        Called after every job ends, possibly by many workers at once: the row
        lock and the status check make exactly one of them finalise.
        """
        with transaction.atomic():
            batch = JobBatch.objects.select_for_update().get(pk=self.pk)
            if batch.status not in BatchStatus.active():
                return False
            counts = batch.progress()
            if Progress.from_counts(counts).remaining:
                return False
            batch.status = final_status(counts)
            batch.completed_at = timezone.now()
            batch.save(update_fields=["status", "completed_at"])
            announce(batch_finished, batch)
        self._refresh_from(batch)
        if batch.calibration:
            self._recalibrate()
        return True

    def _recalibrate(self) -> None:
        """Calibrate again a batch calibrated before some of its grades ended (a retry, a resumed
        run), so that every grade it finishes with is on the teacher's scale, not some of them."""
        with contextlib.suppress(NothingToCalibrate, StillGrading):
            self.calibrate()

    def mark_processing(self) -> bool:
        """pending -> processing, when a worker first picks the batch up."""
        updated = JobBatch.objects.filter(pk=self.pk, status=BatchStatus.PENDING).update(
            status=BatchStatus.PROCESSING
        )
        if updated:
            self.status = BatchStatus.PROCESSING
        return bool(updated)

    def projected_completion(
        self, counts: dict[str, int] | None = None, now: datetime | None = None
    ) -> datetime | None:
        """When the batch should finish at the rate its jobs have ended so far.

        None before the batch started or before any job ended (no rate yet);
        completed_at once it has finished. counts are progress() figures, passed
        in by callers that already have them to save a query.
        """
        if self.completed_at is not None:
            return self.completed_at
        if self.started_at is None:
            return None
        now = now or timezone.now()
        progress = Progress.from_counts(counts if counts is not None else self.progress())
        if progress.remaining == 0:
            return now
        if progress.done == 0:
            return None
        elapsed = max((now - self.started_at).total_seconds(), 1e-6)
        return now + timedelta(seconds=progress.remaining * elapsed / progress.done)

    def deadline_standing(
        self,
        now: datetime | None = None,
        counts: dict[str, int] | None = None,
        projected: datetime | None = None,
    ) -> str | None:
        """on_track, at_risk (projected to finish after the deadline) or late; None without a deadline.

        `projected` is the finish batches.eta.estimate_finish worked out (from provider batches for
        economy work), which every page, the API and the warnings go through; without it, the rate
        its jobs have ended so far.
        """
        if self.deadline is None:
            return None
        now = now or timezone.now()
        if self.status in (BatchStatus.FAILED, BatchStatus.CANCELLED):
            return None  # it did not deliver: no standing to report against the deadline
        if self.completed_at is not None:
            return "late" if self.completed_at > self.deadline else "on_track"
        if now > self.deadline:
            return "late"
        if self.status == BatchStatus.DRAFT:
            # Not started: nothing is being graded, so a near deadline is at risk already.
            return "at_risk" if self.deadline - now <= conf.NOTIFY_DEADLINE_NEAR else "on_track"
        projected = projected or self.projected_completion(counts, now)
        if projected is None:
            return "on_track"
        return "at_risk" if projected > self.deadline else "on_track"


EDITABLE_ANY_TIME = ("name", "description", "tags", "priority", "deadline", "student_pattern")
EDITABLE_WHEN_STOPPED = ("settings", "template")


def _differs(batch: JobBatch, field: str, value: Any) -> bool:
    if field == "template":
        return batch.template_id != (value.pk if value is not None else None)
    return getattr(batch, field) != value


def _job_name(
    naming: str,
    batch: JobBatch,
    document: Document,
    model: str,
    provider: str,
    index: int,
    compare: bool,
    label: str,
) -> str:
    name = naming.format(
        batch=batch.name, filename=document.original_name, model=model, provider=provider, index=index
    )
    # In a model comparison each document has a job per model: keep their names apart
    # (`label` is the model, as provider:model when not the batch's provider).
    if compare and "{model}" not in naming:
        name = f"{name} [{label}]"
    return name[:300]


def _target_overrides(batch_provider: str, provider: str, model: str) -> dict[str, str]:
    """A job's own settings for one grading of a comparison: its model, and its provider when not the batch's."""
    overrides = {"model": model}
    if provider != batch_provider:
        overrides["provider"] = provider
    return overrides


# A job whose document cannot be graded: retrying it would only fail the same way.
_UNGRADABLE_DOCUMENT = ~Q(document__extraction_error="") | Q(document__text__regex=r"^\s*$")


def _why_ungradable(job: GradingJob) -> str:
    if job.document.extraction_error:
        return f"its document could not be read ({job.document.extraction_error.rstrip('.')})"
    return "its document has no text to grade"


# Skipped jobs a retry lists (its report counts them all).
MAX_REPORTED = 100


def _skipped_sentence(skipped: list[dict[str, Any]], count: int) -> str:
    """“a.txt” cannot be graded: …; “b.pdf” cannot be graded: …. — the first few, then a count."""
    shown = [f"“{item['document']}” cannot be graded: {item['reason']}" for item in skipped[:5]]
    more = f"; and {count - len(shown)} more" if count > len(shown) else ""
    return "; ".join(shown) + more + "."


def final_status(counts: dict[str, int]) -> str:
    """completed when every job succeeded, failed when none did, otherwise with errors."""
    if counts["completed"] == 0:
        return BatchStatus.FAILED
    if counts["failed"] or counts["cancelled"]:
        return BatchStatus.COMPLETED_WITH_ERRORS
    return BatchStatus.COMPLETED


@receiver(circuits.provider_outage, dispatch_uid="batches.pause_for_provider_outage")
def pause_for_provider_outage(
    sender, provider: str, reason: str, since: datetime, batch_ids, **kwargs
) -> None:
    """A provider down longer than PROVIDER_OUTAGE_PAUSE_AFTER: its batches pause rather than wait on."""
    for batch in JobBatch.objects.filter(pk__in=batch_ids, status__in=BatchStatus.active()):
        try:
            batch.pause_for_provider(provider, reason, since)
        except InvalidTransition:
            # Paused, cancelled or finished by someone else meanwhile.
            continue


class JobBatchUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(JobBatch, on_delete=models.CASCADE)


class JobBatchGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(JobBatch, on_delete=models.CASCADE)


# One-time tokens of the create forms (batches/form_tokens.py); imported here so that Django finds them.
from batches.form_tokens import FormToken  # noqa: E402, F401

# Assignment rules and the inbox live in their own module; imported here so that Django finds them.
from batches.rule_models import (  # noqa: E402, F401
    AssignmentRule,
    AssignmentRuleGroupObjectPermission,
    AssignmentRuleUserObjectPermission,
    InboxItem,
    RuleBatch,
)
