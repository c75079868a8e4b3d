from django.core.management.base import BaseCommand, CommandError

from batches.archival import archive_finished_batches, parse_statuses
from core.env import parse_duration


class Command(BaseCommand):
    help = "Archive finished batches that ended longer ago than --older-than (the daily cleanup, by hand)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            default="30d",
            help="How long ago the batch must have finished: a number with d, h or m (default 30d).",
        )
        parser.add_argument(
            "--status",
            default=None,
            help="Comma-separated finished states to archive (default: completed, completed_with_errors, "
            "failed, cancelled).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be archived; change nothing."
        )

    def handle(self, *args, older_than: str, status: str | None, dry_run: bool, **options):
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}")
        try:
            statuses = parse_statuses(status)
        except ValueError as exc:
            raise CommandError(str(exc))
        report = archive_finished_batches(age, statuses, dry_run=dry_run)
        for batch in report.archived:
            finished = f"{batch.completed_at:%Y-%m-%d %H:%M}" if batch.completed_at else "?"
            self.stdout.write(f"  #{batch.pk} {batch.name} ({batch.status}, finished {finished})")
        for batch, reason in report.skipped:
            self.stdout.write(f"  skipped #{batch.pk} {batch.name}: {reason}")
        self.stdout.write(self.style.SUCCESS(report.summary()) if not dry_run else report.summary())
