"""Documents, grading jobs and their results.

This app runs no batch lifecycle: it grades the jobs it is handed or claims.
The job's batch is a string reference, never an import; the batch statuses it
needs (which states claim jobs) come from grading.statuses, the vocabulary
batches uses too.
"""

import hashlib
from typing import Any

from django.conf import settings as conf
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from core.permissions import Level, is_signed_in, is_superuser
from grading.progress import Progress
from grading.serve_order import job_ordering
from grading.statuses import CLAIMING_BATCH_STATES, Delivery, JobStatus  # also imported from here
from grading.words import count_words

# Who may see or change documents, jobs and results. These are never shared one
# by one and never reached by who uploaded them: they follow their batch.
#
# - A job in a batch: whoever holds the level on the batch (its owner, or a
#   grant, directly or through a group). `manage` on a batch is `change` here.
# - A job in no batch (a "loose" job): its owner's alone, at every level.
# - A result: its job's.
# - A document: whoever holds the level on a job that grades it (so on its
#   batches, or on a loose job of theirs); and its uploader while no job
#   grades it at all (freshly uploaded, not yet attached).
#
# So unsharing a batch, or downgrading a grant on it, takes its jobs,
# documents and results with it, including what the grantee uploaded into it.
# Each rule is one UNION of index scans used as `pk IN (...)`, like the
# batches' own (core.permissions.accessible_ids), so a list stays one query.
# The batch model is reached through the job's string foreign key, so this
# app still imports nothing from `batches`.


def _batches_accessible_to(user, level: Level) -> models.QuerySet:
    batch_model = GradingJob._meta.get_field("batch").related_model
    # Sharing a batch at `manage` means re-sharing the batch; for its jobs it is `change`.
    return batch_model.objects.accessible_to(user, level.at_most(Level.CHANGE)).values("pk")


def _jobs_reached_by(user, level: Level, column: str) -> models.QuerySet:
    """`column` of the jobs the user holds `level` on: in such a batch, or loose and owned (a UNION)."""
    in_batches = (
        GradingJob.objects.filter(batch__in=_batches_accessible_to(user, level)).order_by().values(column)
    )
    loose = GradingJob.objects.filter(batch__isnull=True, owner=user).order_by().values(column)
    return in_batches.union(loose)


class DocumentQuerySet(models.QuerySet):
    def accessible_to(self, user, level: Level) -> "DocumentQuerySet":
        """Documents graded by a job the user holds `level` on, and those they uploaded that no job grades yet."""
        if not is_signed_in(user):
            return self.none()
        if is_superuser(user):
            return self
        unattached = (
            Document.objects.filter(owner=user)
            .exclude(models.Exists(GradingJob.objects.filter(document=models.OuterRef("pk"))))
            .order_by()
            .values("pk")
        )
        return self.filter(pk__in=_jobs_reached_by(user, level, "document_id").union(unattached))

    def visible_to(self, user) -> "DocumentQuerySet":
        return self.accessible_to(user, Level.VIEW)

    def changeable_by(self, user) -> "DocumentQuerySet":
        return self.accessible_to(user, Level.CHANGE)


class Document(models.Model):
    file = models.FileField(upload_to="documents/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255)
    # Where the file sat inside an uploaded ZIP ("Ada Lovelace_123_assignsubmission_file_/essay.docx"),
    # when it came in one: an LMS's download may name the student in the folder, not the file.
    source_path = models.CharField(max_length=500, blank=True)
    content_type = models.CharField(max_length=120, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    text = models.TextField(blank=True)
    # Why extraction failed, when it did; a job on this document then fails at once.
    extraction_error = models.CharField(max_length=500, blank=True)
    owner = models.ForeignKey(conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    created_at = models.DateTimeField(default=timezone.now)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.original_name

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    @property
    def word_count(self) -> int:
        """Words of the extracted text, counted as the builtin grader's feedback counts them."""
        return count_words(self.text)

    @property
    def name_as_uploaded(self) -> str:
        """The name a student pattern reads: the path inside the ZIP, else the file's name."""
        return self.source_path or self.original_name


class GradingJobQuerySet(models.QuerySet):
    def accessible_to(self, user, level: Level) -> "GradingJobQuerySet":
        """Jobs of a batch the user holds `level` on, and the user's own jobs that are in no batch.

        Who created a job in a batch does not matter: it follows its batch.
        """
        if not is_signed_in(user):
            return self.none()
        if is_superuser(user):
            return self
        return self.filter(pk__in=_jobs_reached_by(user, level, "pk"))

    def visible_to(self, user) -> "GradingJobQuerySet":
        return self.accessible_to(user, Level.VIEW)

    def changeable_by(self, user) -> "GradingJobQuerySet":
        return self.accessible_to(user, Level.CHANGE)

    def in_batch(self, batch) -> "GradingJobQuerySet":
        return self.filter(batch=batch)

    def unfinished(self) -> "GradingJobQuerySet":
        return self.filter(status__in=JobStatus.unfinished())

    def due(self, now=None) -> "GradingJobQuerySet":
        """Queued jobs whose backoff, if any, has passed (the job_claimable partial index)."""
        now = now or timezone.now()
        return self.filter(status=JobStatus.QUEUED).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )

    def claimable(self, now=None) -> "GradingJobQuerySet":
        """Jobs a free worker may take now, in the order it must take them.

        Highest batch priority first, then the earliest deadline (none last), then
        the oldest job. Paused, cancelled and finished batches drop out here, which
        is how pause and cancel act on work that is not yet in flight; so do economy
        jobs, which the economy engine submits in provider batches instead.
        """
        return (
            self.due(now)
            .filter(batch__status__in=CLAIMING_BATCH_STATES, delivery=Delivery.REALTIME)
            .order_by(*job_ordering())
        )

    def waiting(self) -> "GradingJobQuerySet":
        """Queued real-time jobs of claiming batches, due now or later (backoff, Retry-After).

        Economy jobs wait for the economy engine's submission (grading/economy_engine.py), not for a runner.
        """
        return self.filter(
            status=JobStatus.QUEUED, batch__status__in=CLAIMING_BATCH_STATES, delivery=Delivery.REALTIME
        )

    def processing(self) -> "GradingJobQuerySet":
        return self.filter(status=JobStatus.PROCESSING)

    def lease_expired(self, now=None) -> "GradingJobQuerySet":
        """Jobs whose worker stopped renewing their lease: it died or lost the database."""
        return self.processing().filter(lease_expires_at__lt=now or timezone.now())

    def progress(self) -> dict[str, int]:
        """Counts per status and percent done (Progress.as_dict()), in one aggregate query."""
        counts = self.aggregate(
            total=models.Count("id"),
            **{status.value: models.Count("id", filter=Q(status=status.value)) for status in JobStatus},
        )
        return Progress.from_counts(counts).as_dict()


class GradingJob(models.Model):
    name = models.CharField(max_length=300)
    batch = models.ForeignKey(
        "batches.JobBatch", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="jobs")
    owner = models.ForeignKey(conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grading_jobs")
    # Who wrote the document, in this batch (batches.students): read from its file name
    # or matched against the batch's roster; null while unknown.
    student = models.ForeignKey(
        "batches.Student", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    provider = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # Per-job settings on top of the batch's (e.g. {"model": ...} for a model comparison).
    overrides = models.JSONField(default=dict, blank=True)
    # The effective settings, snapshotted when the batch starts: later template or
    # batch edits never change work in flight.
    settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    # Taken over from a claimant that died with other jobs in flight: which of
    # them killed it is unknown, so the job is claimed alone until it ends
    # (README, Processing: Recovery). Its attempt was given back.
    suspect = models.BooleanField(default=False)
    # Failures that were the provider's (connection refused, timeouts, 5xx, 429):
    # they use up no attempt, but a document the provider fails on again and
    # again while it answers others ends failed (grading.claims.PROVIDER_RETRY_LIMIT).
    provider_retries = models.PositiveIntegerField(default=0)
    # What the provider billed for calls of this job that left no result: the first reply of a
    # repair whose own call failed (a 5xx, a timeout), or two replies that did not fit. The batch's
    # token and cost figures add these to its results' (grading.claims._billed_counters).
    billed_input_tokens = models.PositiveIntegerField(default=0)
    billed_output_tokens = models.PositiveIntegerField(default=0)
    billed_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # Decided when the batch starts (grading.economy.decide): economy jobs are not claimed by
    # the runners but submitted in provider batches (grading.economy); realtime is what every
    # job was before, and what the existing rows keep.
    delivery = models.CharField(
        max_length=10, choices=Delivery.choices, default=Delivery.REALTIME, db_default=Delivery.REALTIME
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The batch this job was taken out of (JobBatch.remove_job), while it is in
    # no batch: the batch's page offers to put a graded job back (restore_job).
    removed_from = models.ForeignKey(
        "batches.JobBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="removed_jobs"
    )

    objects = GradingJobQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="gradingjob_status_valid"),
        ]
        indexes = [
            # Progress counts and per-batch job lists: one aggregate per batch.
            models.Index(fields=["batch", "status"], name="job_batch_status"),
            # The claim query scans only runnable jobs: queued ones whose backoff
            # has passed. The partial index keeps it small however many jobs finished.
            models.Index(
                fields=["next_attempt_at", "created_at"],
                name="job_claimable",
                condition=Q(status="queued"),
            ),
            # A claim reads each active batch's queued jobs in order, a few at a time.
            models.Index(
                fields=["batch", "created_at", "id"],
                name="job_queued_in_batch",
                condition=Q(status="queued"),
            ),
            # Suspect jobs (taken over from a dead claimant) are claimed first and alone.
            models.Index(
                fields=["batch", "created_at", "id"],
                name="job_suspect_queued",
                condition=Q(status="queued", suspect=True),
            ),
            # The economy submitter (grading.economy.submit_due) reads the queued economy
            # jobs of each provider; the runners' claims never see them.
            models.Index(
                fields=["provider", "batch", "created_at", "id"],
                name="job_economy_queued",
                condition=Q(status="queued", delivery="economy"),
            ),
            # The analytics' duration percentiles on SQLite read two rows at an
            # offset in duration order (batches.analytics.percentile_by_offset):
            # from this index, rather than sorting every job of the batch each time.
            models.Index(fields=["batch", "duration_ms"], name="job_batch_duration"),
            # The lease reaper looks only at jobs being processed.
            models.Index(
                fields=["lease_expires_at"],
                name="job_lease_expiry",
                condition=Q(status="processing"),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GradingResultQuerySet(models.QuerySet):
    def accessible_to(self, user, level: Level) -> "GradingResultQuerySet":
        """Results of the jobs the user may see (or change): a result follows its job."""
        if not is_signed_in(user):
            return self.none()
        if is_superuser(user):
            return self
        return self.filter(job__in=_jobs_reached_by(user, level, "pk"))

    def visible_to(self, user) -> "GradingResultQuerySet":
        return self.accessible_to(user, Level.VIEW)

    def changeable_by(self, user) -> "GradingResultQuerySet":
        return self.accessible_to(user, Level.CHANGE)


class GradingResult(models.Model):
    job = models.OneToOneField(GradingJob, on_delete=models.CASCADE, related_name="result")
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=200)
    score = models.FloatField()
    max_score = models.FloatField()
    # [{"key", "name", "score", "max_score", "feedback"}, ...]
    criteria = models.JSONField(default=list)
    feedback = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    raw_response = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # A human reviewer's grade sits beside the AI's, which is never overwritten.
    reviewed_score = models.FloatField(null=True, blank=True)
    reviewed_criteria = models.JSONField(default=list, blank=True)
    review_comment = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        conf.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # The provider's own grade when a calibration to the teacher's scale replaced
    # `score` and `criteria` (null: never calibrated, `score` is the provider's).
    raw_score = models.FloatField(null=True, blank=True)
    raw_criteria = models.JSONField(default=list, blank=True)
    # The reviewer let the grader learn from this review (an Exemplar of the batch).
    is_exemplar = models.BooleanField(default=False)

    objects = GradingResultQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(max_score__gt=0), name="result_max_score_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.score:g}/{self.max_score:g} for {self.job_id}"

    @classmethod
    def from_grade(cls, grade, *, job_id: int, provider: str, model: str, latency_ms: int) -> "GradingResult":
        """An unsaved result holding what the provider returned (a grading.providers.Grade)."""
        return cls(
            job_id=job_id,
            provider=provider,
            model=grade.model or model,
            score=grade.score,
            max_score=grade.max_score,
            criteria=grade.as_criteria_json(),
            feedback=grade.feedback,
            input_tokens=grade.input_tokens,
            output_tokens=grade.output_tokens,
            cost=grade.cost,
            latency_ms=latency_ms,
            raw_response=grade.raw,
        )

    @property
    def provider_score(self) -> float:
        """The provider's score before any calibration."""
        return self.raw_score if self.raw_score is not None else self.score

    @property
    def is_calibrated(self) -> bool:
        return self.raw_score is not None

    @property
    def final_score(self) -> float:
        return self.reviewed_score if self.reviewed_score is not None else self.score

    @property
    def is_reviewed(self) -> bool:
        return self.reviewed_score is not None

    @property
    def percent(self) -> float:
        return round(100 * self.final_score / self.max_score, 2)

    def rubric_points(self) -> dict[str, float]:
        """Each criterion's maximum, as graded: the result's own criteria, else the job's rubric."""
        points = {
            str(item["key"]): float(item.get("max_score") or 0)
            for item in self.criteria or []
            if isinstance(item, dict) and item.get("key")
        }
        if points:
            return points
        rubric = (self.job.settings or {}).get("rubric") or {}
        return {
            str(item["key"]): float(item.get("points") or 0)
            for item in rubric.get("criteria") or []
            if isinstance(item, dict) and item.get("key")
        }

    def clean_review(self, score: float | None, criteria: list[dict[str, Any]] | None) -> tuple[float, list]:
        """The review's score and criteria, checked against the rubric; raises ReviewError.

        Criteria are [{"key", "score", "comment"?}] for any subset of the rubric.
        The score may be left out when every criterion is scored (it is then
        their sum); when both are given for every criterion they must agree.
        """
        names = {
            str(item["key"]): item.get("name")
            for item in self.criteria or []
            if isinstance(item, dict) and item.get("key")
        }
        reviewed = clean_review_criteria(criteria or [], self.rubric_points(), names)
        complete = {item["key"] for item in reviewed} == set(self.rubric_points()) and bool(reviewed)
        total = sum(item["score"] for item in reviewed)
        if score is None:
            if not complete:
                raise ReviewError("score", "Give a score, or a score for every criterion of the rubric.")
            score = total
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= self.max_score:
            raise ReviewError(
                "score", f"The reviewed score must be a number between 0 and {self.max_score:g}."
            )
        if complete and abs(total - score) > 1e-6:
            raise ReviewError(
                "score",
                f"The score {score:g} differs from the sum of the criterion scores ({total:g}); "
                "leave the score out to use the sum.",
            )
        return float(score), reviewed

    def record_review(
        self,
        reviewer,
        score: float | None,
        criteria: list[dict[str, Any]] | None = None,
        comment: str = "",
        exemplar: bool = False,
    ) -> None:
        """Record a reviewer's grade beside the AI's, which is kept; raises ReviewError.

        With `exemplar`, the review also becomes an exemplar of the job's batch:
        the teacher's grade of this document, for the grader to learn from and
        for the batch's calibration.
        """
        self.reviewed_score, self.reviewed_criteria = self.clean_review(score, criteria)
        self.review_comment = comment or ""
        self.reviewer = reviewer
        self.reviewed_at = timezone.now()
        self.is_exemplar = bool(exemplar) and self.job.batch_id is not None
        with transaction.atomic():
            self.save(update_fields=REVIEW_FIELDS)
            self._keep_exemplar()

    def accept_ai_grade(self, reviewer) -> bool:
        """Record the AI's grade as the review: a person checked it and agrees.

        The criteria go with it when they add up to the score; a calibrated
        total that is not their sum is accepted as the total alone. A review
        already recorded is kept (ReviewError): a page opened before it was
        saved, or a colleague's review, must not overwrite a teacher's grade
        and comment with the AI's. False when this reviewer already accepted
        it as it stands (the key pressed twice): nothing is done.
        """
        with transaction.atomic():
            # Locked, so a review saved at the same moment is seen rather than overwritten.
            current = GradingResult.objects.select_for_update(of=("self",)).filter(pk=self.pk)
            reviewed = current.values_list("reviewed_score", "reviewer__username", "review_comment").first()
            if reviewed and reviewed[0] is not None:
                score, by, comment = reviewed
                if score == self.score and by == reviewer.get_username() and not comment:
                    return False
                raise ReviewError(
                    "score",
                    f"this job is already reviewed ({score:g} / {self.max_score:g}"
                    f"{f' by {by}' if by else ''}), and that review is kept. "
                    "Change it in the form, or withdraw it first.",
                )
            self._accept_ai_grade(reviewer)
        return True

    def _accept_ai_grade(self, reviewer) -> None:
        criteria = [
            {"key": str(item["key"]), "score": item["score"]}
            for item in self.criteria or []
            if isinstance(item, dict) and item.get("key") and isinstance(item.get("score"), int | float)
        ]
        if abs(sum(item["score"] for item in criteria) - self.score) > 1e-6:
            criteria = []
        self.record_review(reviewer, self.score, criteria)

    def clear_review(self) -> None:
        """Withdraw a review: the AI's score is final again, and the review no exemplar."""
        self.reviewed_score, self.reviewed_criteria, self.review_comment = None, [], ""
        self.reviewer, self.reviewed_at, self.is_exemplar = None, None, False
        with transaction.atomic():
            self.save(update_fields=REVIEW_FIELDS)
            self._keep_exemplar()

    def _keep_exemplar(self) -> None:
        """The batch's exemplar of this document follows the review's tick."""
        job = self.job
        if job.batch_id is None:
            return
        ticked = self
        if not self.is_exemplar:
            # A batch holds one exemplar per document, but each model's job of it has a review:
            # unticking one leaves the document an exemplar while another review is ticked.
            ticked = (
                GradingResult.objects.filter(
                    job__batch_id=job.batch_id, job__document_id=job.document_id, is_exemplar=True
                )
                .exclude(pk=self.pk)
                .select_related("reviewer")
                .order_by("-reviewed_at", "-pk")
                .first()
            )
        if ticked is None:
            Exemplar.objects.filter(batch_id=job.batch_id, document_id=job.document_id).delete()
            return
        Exemplar.objects.update_or_create(
            batch_id=job.batch_id,
            document_id=job.document_id,
            defaults={
                "score": ticked.reviewed_score,
                "criteria": {item["key"]: item["score"] for item in ticked.reviewed_criteria},
                "owner": ticked.reviewer or job.owner,
            },
        )


REVIEW_FIELDS = [
    "reviewed_score",
    "reviewed_criteria",
    "review_comment",
    "reviewer",
    "reviewed_at",
    "is_exemplar",
]


class ReviewError(ValueError):
    """A review that cannot be recorded, with the field it is about."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def clean_review_criteria(
    criteria: list, points: dict[str, float], names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """[{"key", "score", "comment"?}], each key in the rubric once, each score within its points.

    A score out of range is named by the criterion's name when `names` has it.
    """
    if not isinstance(criteria, list):
        raise ReviewError("criteria", "Give the criteria as a list of {key, score} objects.")
    cleaned, seen = [], set()
    for item in criteria:
        if not isinstance(item, dict) or "key" not in item or "score" not in item:
            raise ReviewError("criteria", "Each criterion needs a key and a score.")
        key, score = str(item["key"]), item["score"]
        if key not in points:
            known = ", ".join(points) or "none"
            raise ReviewError(
                "criteria", f"“{key}” is not a criterion of the rubric (criteria: {known})."
            )
        if key in seen:
            raise ReviewError("criteria", f"“{key}” is scored twice.")
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= points[key]:
            label = (names or {}).get(key) or key
            raise ReviewError(
                "criteria", f"The score for “{label}” must be a number between 0 and {points[key]:g}."
            )
        seen.add(key)
        entry: dict[str, Any] = {"key": key, "score": float(score)}
        if item.get("comment"):
            entry["comment"] = str(item["comment"])[:2000]
        cleaned.append(entry)
    return cleaned


class Exemplar(models.Model):
    """A document with the teacher's own grade on the rubric, for the grader to learn from.

    An exemplar belongs to a template (an exemplar set every batch of it reuses)
    or to a batch (a job a reviewer marked "use as exemplar", or one given with
    the teacher's score when the batch was made). The providers see exemplars as
    graded examples; a batch's calibration maps the provider's scores on its own
    exemplar jobs onto the teacher's.
    """

    template = models.ForeignKey(
        "templates_app.BatchTemplate",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="exemplars",
    )
    batch = models.ForeignKey(
        "batches.JobBatch", null=True, blank=True, on_delete=models.CASCADE, related_name="exemplars"
    )
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="exemplars")
    score = models.FloatField()
    # {"criterion key": score, ...}: the criteria the teacher scored, possibly none.
    criteria = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exemplars")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(template__isnull=False, batch__isnull=True)
                | Q(template__isnull=True, batch__isnull=False),
                name="exemplar_of_a_template_or_a_batch",
            ),
            models.UniqueConstraint(fields=["batch", "document"], name="exemplar_once_per_batch_document"),
            models.CheckConstraint(condition=Q(score__gte=0), name="exemplar_score_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.document} = {self.score:g}"


class PaceClock(models.Model):
    """The earliest moment the next call under a pacing key may start.

    Keys are "provider:<name>" (requests per minute across all workers) and
    "batch:<id>" (stagger_ms and the batch's own request rate). Claims read and
    advance these clocks while they hold the claim lock, so two workers never
    hand out the same start slot.
    """

    key = models.CharField(max_length=100, primary_key=True)
    next_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} at {self.next_at.isoformat()}"


class LiveRunner(models.Model):
    """A job runner that is running now, so the others can leave it its share of a provider.

    Each runner writes its row when it starts and every few seconds after, and
    deletes it when it stops; a row not refreshed for RUNNER_STALE_S belongs to
    a runner that died. Runners divide a capped provider's call slots by this
    count (see grading.runner.Runner._slot_targets).
    """

    claimant = models.CharField(max_length=120, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.claimant


class CallSlot(models.Model):
    """One of a capped provider's concurrent-call slots, held by one runner at a time.

    A provider capped at N calls (OPENAI_MAX_CONCURRENCY) has slots 0..N-1. A runner
    makes at most as many calls at once as it holds slots, and holds each under a lease
    it renews while it lives; a dead runner's slots become free when their lease ends.
    Counting calls by slots rather than by jobs in `processing` lets a runner keep its
    next jobs claimed and ready, so a finished call is followed by the next one at
    once instead of after a round of recording and claiming. See grading.claims.hold_slots.
    """

    provider = models.CharField(max_length=50)
    number = models.PositiveIntegerField()
    holder = models.CharField(max_length=120, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "number"], name="call_slot_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} slot {self.number}: {self.holder or 'free'}"


class ProviderCircuit(models.Model):
    """A provider's health as every worker sees it: closed (no row, or open_until null) or open.

    Failures that are the provider's (connection refused, timeouts, 5xx, 429)
    count here instead of against the jobs (a 429 for calls at once only while the
    provider has not answered for a while); after CIRCUIT_FAILURES of them in a
    row, with no answer between, the circuit opens: no job of the provider is
    claimed until open_until. Then one claim takes a single job, the probe
    (probe_by is its claim token, probe_until when another may be tried); an
    answer closes the circuit, another failure opens it again for longer
    (grading.circuits). `since` is when the outage began, for the batches'
    "waiting for provider" and the pause after PROVIDER_OUTAGE_PAUSE_AFTER.
    """

    provider = models.CharField(max_length=50, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    opens = models.PositiveIntegerField(default=0)
    open_until = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    probe_by = models.CharField(max_length=120, blank=True)
    probe_until = models.DateTimeField(null=True, blank=True)
    # When the provider last answered a call (written at most every ANSWER_STAMP_S): a 429
    # that comes while it answers others says "slow down", not that it is down.
    answered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.provider}: {'open' if self.open_until else 'closed'}"


class ProviderLimitState(models.Model):
    """What a provider's replies taught about its limits, as every worker sees them.

    Concurrency (AIMD, grading.learnt_limits): `concurrency` is the calls in flight the
    provider is given now, cut when it answers 429 or 529 overloaded and grown again after
    runs of answers; `wall` is how many calls were in flight when it last refused. Requests
    and tokens: buckets that mirror the provider's per-minute limits (`*_limit`, from its
    rate-limit headers or the configured TPM), holding what was left at `*_at` and refilling
    at a minute's limit per minute; claims spend from them, recorded replies true them up.
    Written in the claim and record transactions, like the call slots and the circuits.
    """

    provider = models.CharField(max_length=50, primary_key=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    wall = models.PositiveIntegerField(null=True, blank=True)
    successes = models.PositiveIntegerField(default=0)
    cut_at = models.DateTimeField(null=True, blank=True)
    # Calls refused since cut_at (one refusal event), and in all; whether the event is the
    # provider's first (the wall it set is the first one known).
    cut_refusals = models.PositiveIntegerField(default=0)
    wall_first = models.BooleanField(default=False)
    # Whether the refusal event since cut_at came with too few calls in flight to be a wall
    # (grading.learnt_limits: random refusals cut nothing).
    cut_ignored = models.BooleanField(default=False)
    refusals = models.PositiveIntegerField(default=0)
    requests_limit = models.PositiveIntegerField(null=True, blank=True)
    requests_left = models.FloatField(null=True, blank=True)
    requests_at = models.DateTimeField(null=True, blank=True)
    requests_reset_at = models.DateTimeField(null=True, blank=True)
    tokens_limit = models.PositiveIntegerField(null=True, blank=True)
    tokens_left = models.FloatField(null=True, blank=True)
    tokens_at = models.DateTimeField(null=True, blank=True)
    tokens_reset_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.provider}: {self.concurrency or 'configured'} at once"


class ProviderBatchQuerySet(models.QuerySet):
    def open(self) -> "ProviderBatchQuerySet":
        """Provider batches whose results are not all recorded yet: the poller's work."""
        return self.filter(status__in=ProviderBatch.Status.open())

    def of_batch(self, batch_id: int) -> "ProviderBatchQuerySet":
        return self.filter(batch_id=batch_id)


class ProviderBatch(models.Model):
    """One submission of economy jobs to a provider's batch API, recorded before it is sent.

    The row is written, with its jobs claimed under its own claim token, before the
    upload; the external ids follow as they are known. A submitter that died between
    the upload and the create leaves the row `preparing` with its `marker` (also sent as
    the provider batch's metadata) and maybe the uploaded file's id, so that the
    reconcile finds what was sent instead of sending it twice (grading.economy).
    """

    class Status(models.TextChoices):
        PREPARING = "preparing", "Preparing"
        SUBMITTED = "submitted", "Submitted"
        CANCELLING = "cancelling", "Cancelling"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

        @classmethod
        def open(cls) -> list[str]:
            return [cls.PREPARING, cls.SUBMITTED, cls.CANCELLING]

    batch = models.ForeignKey(
        "batches.JobBatch", null=True, blank=True, on_delete=models.CASCADE, related_name="provider_batches"
    )
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PREPARING)
    # Sent as the provider batch's metadata, so a reconcile can find it.
    marker = models.CharField(max_length=64, unique=True)
    # The claim token its jobs are held under (claimed_by), and [[job id, attempt], ...].
    token = models.CharField(max_length=120)
    jobs = models.JSONField(default=list)
    input_file_id = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    # Who is sending it, until when: a reconcile leaves a row alone while this holds.
    preparing_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    expected_by = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The provider's own status and counts, as last polled.
    remote_status = models.CharField(max_length=40, blank=True)
    finished = models.PositiveIntegerField(default=0)
    recorded = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)

    objects = ProviderBatchQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The poller reads only the open ones.
            models.Index(
                fields=["status", "created_at"],
                name="provider_batch_open",
                condition=Q(status__in=["preparing", "submitted", "cancelling"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} batch {self.external_id or self.marker} ({self.status})"

    @property
    def job_ids(self) -> list[int]:
        return [job_id for job_id, _ in self.jobs]

    @property
    def submitted(self) -> int:
        return len(self.jobs)
