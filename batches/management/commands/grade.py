"""manage.py grade DIR --template SLUG: grade a folder of documents from the terminal.

Exit status: 0 when the batch completed (or, without --wait/--inline, was started),
1 when it ended otherwise, 2 on bad input (nothing is created then).

The steps are separate methods — plan (validate everything), create, process, report —
and --export FILE writes the results ZIP after `report`, however the batch ended.
"""

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from batches.exceptions import NothingToCalibrate
from batches.exemplar_sheet import SheetError, number, read_sheet
from batches.models import BatchStatus, JobBatch
from grading.documents import store_document
from grading.extraction import SUPPORTED_EXTENSIONS
from grading.models import Exemplar, GradingJob, GradingResult, JobStatus
from grading.progress import Progress
from grading.schema import SettingsError
from templates_app.models import BatchTemplate

BAD_INPUT = 2
ENDED_OTHERWISE = 1
POLL_S = 0.5


@dataclass
class Plan:
    """Everything the command will do, checked before anything is stored."""

    folder: Path
    files: list[Path]
    skipped: list[str]
    template: BatchTemplate
    owner: object
    name: str
    priority: int
    settings: dict = field(default_factory=dict)
    export: Path | None = None
    # File name -> (the teacher's total, {criterion key: score}), from --exemplars.
    exemplars: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


class Command(BaseCommand):
    help = (
        "Grade every document in a folder: create a batch from a template with one job per "
        "document and start it; --wait follows it to the end, --inline grades it in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", metavar="DIR", help="Folder of .txt, .md, .pdf or .docx documents.")
        parser.add_argument("--template", required=True, metavar="SLUG", help="Slug of the batch template.")
        parser.add_argument("--name", help="Batch name (default: the folder's name and the time).")
        parser.add_argument(
            "--provider",
            help="Connection to grade with: builtin, openai, anthropic, or one PROVIDERS declares.",
        )
        parser.add_argument("--model", help="Model name for the provider.")
        parser.add_argument("--priority", type=int, default=5, help="Batch priority, 1 (low) to 10 (high).")
        parser.add_argument("--concurrency", type=int, help="Calls in flight for this batch at most.")
        parser.add_argument(
            "--owner", metavar="USERNAME", help="Owner of the batch (default: first superuser)."
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--wait", action="store_true", help="Show progress until the batch ends.")
        mode.add_argument("--inline", action="store_true", help="Grade in this process, no cluster needed.")
        parser.add_argument(
            "--exemplars",
            metavar="FILE.csv",
            help=(
                "The teacher's grades of some of the documents (columns file, score and optionally one "
                "per criterion key; files named relative to DIR): they become the batch's exemplars, the "
                "rest is graded with them and calibrated to the teacher's scale. Needs --wait or --inline."
            ),
        )
        parser.add_argument(
            "--export",
            metavar="FILE",
            help="When the batch ends, write its results ZIP (as GET /api/batches/{id}/export) to FILE.",
        )

    def handle(self, *args, **options):
        # django-q2 logs every task it enqueues; here that is noise between the command's own lines.
        logging.getLogger("django-q").setLevel(logging.WARNING)
        plan = self.plan(options)
        if options["wait"]:
            self.require_cluster()
        batch = self.create(plan)
        self.stdout.write(f"Batch #{batch.pk} “{batch.name}”: {batch.jobs.count()} jobs, started.")
        if not (options["wait"] or options["inline"]):
            self.stdout.write(
                "A running cluster grades it; follow it with --wait next time, or in the web app."
            )
            return
        self.process(batch, inline=options["inline"])
        if plan.exemplars:
            self.calibrate(batch, plan)
        self.report(batch, plan)
        if plan.export:
            self.export(batch, plan.export)
        self.conclude(batch)

    # --- plan: validate everything before storing anything ---------------------

    def plan(self, options) -> Plan:
        folder = Path(options["folder"]).expanduser()
        if not folder.is_dir():
            raise bad_input(f"{folder} is not a folder.")
        owner = self.owner(options["owner"])
        # The owner's templates only: a private template of someone else's is as good as absent.
        usable = BatchTemplate.objects.visible_to(owner)
        template = usable.filter(slug=options["template"]).first()
        if template is None:
            known = ", ".join(usable.order_by("slug").values_list("slug", flat=True)) or "none"
            raise bad_input(f"There is no template “{options['template']}”; templates: {known}.")
        priority = options["priority"]
        if not 1 <= priority <= 10:
            raise bad_input(f"--priority must be between 1 and 10, got {priority}.")
        name = options["name"] or f"{folder.resolve().name} – graded {time.strftime('%Y-%m-%d %H:%M')}"
        if not name.strip() or len(name) > 200:
            raise bad_input("--name must be 1 to 200 characters.")
        files, skipped = self.documents_in(folder)
        plan = Plan(
            folder=folder,
            files=files,
            skipped=skipped,
            template=template,
            owner=owner,
            name=name,
            priority=priority,
            settings=self.overrides(options),
            export=self.export_target(options),
        )
        self.check_settings(plan)
        plan.exemplars = self.exemplars_of(options, plan)
        return plan

    def exemplars_of(self, options, plan: Plan) -> dict[str, tuple[float, dict[str, float]]]:
        """The teacher's grades from --exemplars, each checked against the folder and the rubric."""
        if not options["exemplars"]:
            return {}
        if not (options["wait"] or options["inline"]):
            raise bad_input("--exemplars calibrates the grades when the batch ends: add --wait or --inline.")
        source = Path(options["exemplars"]).expanduser()
        try:
            columns, rows = read_sheet(source)
        except SheetError as error:
            raise bad_input(f"--exemplars {error}.") from None
        if not {"file", "score"} <= set(columns):
            found = ", ".join(column for column in columns if column) or "none"
            raise bad_input(f"--exemplars {source} needs the columns file and score (found: {found}).")
        rubric = JobBatch(template=plan.template, settings=plan.settings).validated_settings().rubric
        points = {criterion.key: criterion.points for criterion in rubric.criteria}
        # Headers are read lower-cased: a criterion column is matched to its key whatever its case.
        keys = {key.lower(): key for key in points}
        names = {path.name for path in plan.files}
        grades: dict[str, tuple[float, dict[str, float]]] = {}
        lines: dict[str, int] = {}
        for row in rows:
            values = {keys.get(column, column): value for column, value in row.values.items()}
            name, grade = self.exemplar_row(values, row.line, names, points)
            if name in grades:
                raise bad_input(
                    f"--exemplars line {row.line}: “{name}” is graded on line {lines[name]} already."
                )
            grades[name], lines[name] = grade, row.line
        if not grades:
            raise bad_input(f"--exemplars {source} has no rows (columns: file, score).")
        if len(grades) >= len(names):
            raise bad_input("--exemplars grades every document of the folder; leave some for the grader.")
        return grades

    @staticmethod
    def exemplar_row(row: dict, number: int, names: set[str], points: dict[str, float]):
        where = f"--exemplars line {number}"
        name = (row.get("file") or "").strip().removeprefix("./")
        if not name:
            raise bad_input(f"{where}: the file name is empty.")
        if name not in names:
            raise bad_input(f"{where}: “{name}” is not a document of the folder.")
        criteria = {
            key: _score(value, f"{where}: “{key}”") for key, value in row.items() if key in points and value
        }
        if row.get("score"):
            score = _score(row["score"], f"{where}: the score")
        elif set(criteria) == set(points):
            score = sum(criteria.values())  # every criterion given: the total is their sum
        else:
            raise bad_input(f"{where}: the score is missing (give it, or every criterion's).")
        if not 0 <= score <= sum(points.values()):
            raise bad_input(f"{where}: the score must be between 0 and {sum(points.values()):g}.")
        for key, value in criteria.items():
            if not 0 <= value <= points[key]:
                raise bad_input(f"{where}: “{key}” must be between 0 and {points[key]:g}.")
        unknown = set(row) - {"file", "score", *points}
        if unknown:
            raise bad_input(
                f"{where}: unknown columns {', '.join(sorted(unknown))}; criteria: {', '.join(points)}."
            )
        return name, (score, criteria)

    def export_target(self, options) -> Path | None:
        """Where --export writes, checked now so that a typo fails before any grading is paid for."""
        if not options["export"]:
            return None
        if not (options["wait"] or options["inline"]):
            raise bad_input("--export writes the results when the batch ends: add --wait or --inline.")
        target = Path(options["export"]).expanduser()
        if target.is_dir():
            raise bad_input(
                f"--export {target} is a folder; give a file name such as {target / 'grades.zip'}."
            )
        if not target.parent.is_dir():
            raise bad_input(f"--export {target}: there is no folder {target.parent}.")
        if not os.access(target.parent, os.W_OK):
            raise bad_input(f"--export {target}: the folder {target.parent} is not writable.")
        return target

    def documents_in(self, folder: Path) -> tuple[list[Path], list[str]]:
        limit = settings.MAX_DOCUMENT_MB * 1024 * 1024
        files, skipped = [], []
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                skipped.append(f"{path.name} (not a {', '.join(SUPPORTED_EXTENSIONS)} file)")
            elif path.stat().st_size > limit:
                skipped.append(f"{path.name} (larger than {settings.MAX_DOCUMENT_MB} MB)")
            else:
                files.append(path)
        if not files:
            raise bad_input(f"{folder} has no {', '.join(SUPPORTED_EXTENSIONS)} documents to grade.")
        return files, skipped

    def owner(self, username: str | None):
        users = get_user_model().objects
        if username:
            user = users.filter(username=username).first()
            if user is None:
                raise bad_input(f"There is no user “{username}”.")
            return user
        user = users.filter(is_superuser=True).order_by("pk").first()
        if user is None:
            raise bad_input("No superuser owns the batch: create one with createsuperuser, or pass --owner.")
        return user

    def overrides(self, options) -> dict:
        overrides: dict = {}
        if options["provider"]:
            overrides["provider"] = options["provider"]
        if options["model"]:
            overrides["model"] = options["model"]
        if options["concurrency"] is not None:
            overrides["processing"] = {"concurrency": options["concurrency"]}
        return overrides

    def check_settings(self, plan: Plan) -> None:
        draft = JobBatch(owner=plan.owner, name=plan.name, template=plan.template, settings=plan.settings)
        try:
            draft.validated_settings()
        except SettingsError as error:
            problems = "; ".join(f"{path}: {' '.join(messages)}" for path, messages in error.errors.items())
            raise bad_input(f"The settings are invalid — {problems}") from None

    def require_cluster(self) -> None:
        from core.cluster import check_cluster

        cluster = check_cluster()
        if not cluster["ok"]:
            raise bad_input(
                f"{cluster.get('error', 'No cluster is running.')} "
                "To grade without a cluster, use --inline instead of --wait."
            )

    # --- create and start -------------------------------------------------------

    def create(self, plan: Plan) -> JobBatch:
        for note in plan.skipped:
            self.stdout.write(f"Skipped {note}.")
        with transaction.atomic():
            batch = JobBatch.objects.create_from_template(
                owner=plan.owner,
                name=plan.name,
                template=plan.template,
                settings=plan.settings,
                priority=plan.priority,
                description=f"Graded from {plan.folder.resolve()} with manage.py grade.",
            )
            documents = [store_document(plan.owner, path.name, path.read_bytes()) for path in plan.files]
            batch.add_documents(documents)
            # Before the start, so that every job is graded with them.
            Exemplar.objects.bulk_create(
                Exemplar(batch=batch, document=document, score=score, criteria=criteria, owner=plan.owner)
                for document in documents
                if document.original_name in plan.exemplars
                for score, criteria in [plan.exemplars[document.original_name]]
            )
            batch.start_batch()
        return batch

    # --- process: follow the cluster, or grade here ----------------------------------

    def process(self, batch: JobBatch, inline: bool) -> None:
        bar = ProgressBar(self.stdout)
        try:
            if inline:
                self.grade_here(batch, bar)
            while not self.finished(batch, bar):
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            bar.done()
            raise CommandError(
                f"Stopped following batch #{batch.pk}; it keeps its progress and a cluster can finish it.",
                returncode=ENDED_OTHERWISE,
            ) from None
        bar.done()

    def grade_here(self, batch: JobBatch, bar: "ProgressBar") -> None:
        from batches.tasks import update_batch_progress
        from grading.runner import Runner

        batch.mark_processing()
        Runner(
            scope=[batch.pk],
            # Wait out every retry: the command's promise is to grade the batch to its end.
            linger_s=float("inf"),
            on_batch_touched=update_batch_progress,
            on_progress=lambda _: self.finished(batch, bar),
            progress_every_s=POLL_S,
        ).run()
        update_batch_progress(batch.pk)

    def finished(self, batch: JobBatch, bar: "ProgressBar") -> bool:
        batch.refresh_from_db(fields=["status", "completed_at"])
        bar.show(batch.progress(), batch.status)
        return batch.status in BatchStatus.finished()

    # --- calibrate -------------------------------------------------------------------

    def calibrate(self, batch: JobBatch, plan: Plan) -> None:
        """The exemplar jobs take the teacher's grade as their review, then the batch is calibrated."""
        graded = GradingResult.objects.filter(
            job__batch=batch, job__status=JobStatus.COMPLETED, job__document__exemplars__batch=batch
        ).select_related("job__document")
        for result in graded:
            score, criteria = plan.exemplars[result.job.document.original_name]
            result.record_review(
                plan.owner,
                score,
                [{"key": key, "score": value} for key, value in criteria.items()],
                comment="The teacher's grade, given with --exemplars.",
                exemplar=True,
            )
        try:
            calibration = batch.calibrate()
        except NothingToCalibrate as refusal:
            self.stdout.write(f"Not calibrated: {refusal}")
            return
        for group in calibration["models"]:
            model = f"{group['provider']} · {group['model']}"
            if group["method"] is None:
                reason = group.get("reason") or "too few exemplars"
                self.stdout.write(
                    f"Not calibrated ({model}): {group['exemplars']} exemplar(s) graded by it; {reason}."
                )
            else:
                note = f" ({group['note']})" if group.get("note") else ""
                self.stdout.write(
                    f"Calibrated ({model}) from {group['exemplars']} exemplars, {group['method']} map{note}: "
                    f"agreement with the teacher (QWK, leave-one-out) {_figure(group['qwk_before'])} before, "
                    f"{_figure(group['qwk_after'])} after."
                )

    # --- report ----------------------------------------------------------------------

    def report(self, batch: JobBatch, plan: Plan) -> None:
        counts = batch.progress()
        self.stdout.write(f"Batch #{batch.pk} ended {batch.status.replace('_', ' ')}.")
        self.stdout.write(
            f"{counts['total']} jobs: {counts['completed']} completed, {counts['failed']} failed, "
            f"{counts['cancelled']} cancelled."
        )
        jobs = list(
            GradingJob.objects.in_batch(batch)
            .select_related("document", "result")
            .order_by("document__original_name", "pk")
        )
        width = max((len(job.document.original_name) for job in jobs), default=0)
        for job in jobs:
            if job.document.original_name not in plan.exemplars:
                self.stdout.write(f"  {job.document.original_name:<{width}}  {self.outcome(job)}")
        if plan.exemplars:
            self.stdout.write("Exemplars (the teacher's grade):")
            for name, (score, _) in sorted(plan.exemplars.items()):
                self.stdout.write(f"  {name:<{width}}  {score:g}")

    @staticmethod
    def outcome(job: GradingJob) -> str:
        if job.status == JobStatus.COMPLETED and hasattr(job, "result"):
            result = job.result
            model = f"  ({job.model})" if job.model else ""
            return f"{result.final_score:g} / {result.max_score:g}{model}"
        if job.status == JobStatus.FAILED:
            return f"failed: {job.last_error}"
        return job.status

    def export(self, batch: JobBatch, target: Path) -> None:
        """The same ZIP as the API's export, written whole or not at all, whatever the batch's end."""
        from batches.export import write_zip

        size = write_zip(batch, target)
        self.stdout.write(f"Wrote the results to {target} ({size / 1024:,.0f} KB).")

    def conclude(self, batch: JobBatch) -> None:
        if batch.status != BatchStatus.COMPLETED:
            raise CommandError(
                f"Batch #{batch.pk} ended {batch.status.replace('_', ' ')}.", returncode=ENDED_OTHERWISE
            )


def _score(text: str, what: str) -> float:
    try:
        return number(text)
    except ValueError:
        raise bad_input(f"{what} “{text}” is not a number.") from None


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


class ProgressBar:
    """A one-line bar redrawn in place on a terminal; a line per change of ten percent elsewhere."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.last: tuple | None = None

    def show(self, counts: dict, status: str) -> None:
        done = Progress.from_counts(counts).done
        total = counts["total"] or 1
        filled = round(self.WIDTH * done / total)
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{counts['total']} "
            f"({counts['failed']} failed) {status.replace('_', ' ')}"
        )
        key = (done // max(total // 10, 1), status) if not self.tty else (line,)
        if key == self.last:
            return
        self.last = key
        if self.tty:
            self.stream.write(f"\r{line}", ending="")
            self.stream.flush()
        else:
            self.stream.write(line)

    def done(self) -> None:
        if self.tty and self.last is not None:
            self.stream.write("")
