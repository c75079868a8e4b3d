from django.core.management.base import BaseCommand

from core.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update the recurring django-q2 schedules (archival, notification scans, heartbeat)."

    def handle(self, *args, **options):
        for name, outcome in ensure_schedules():
            self.stdout.write(f"{outcome:>7}  {name}")
