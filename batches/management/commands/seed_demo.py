import logging
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from batches.models import JobBatch
from grading.documents import store_document
from templates_app.models import BatchTemplate
from templates_app.prebuilt import install

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_BATCH_NAME = "Demo: parks instead of parking"


class Command(BaseCommand):
    help = "Seed the pre-built templates, a local admin account and a started demo batch (idempotent)."

    def handle(self, *args, **options):
        # django-q2 logs the demo batch's task as it is enqueued: noise under the admin's banner in `make run`.
        logging.getLogger("django-q").setLevel(logging.WARNING)
        install(BatchTemplate)
        admin = self._admin_account()
        self._demo_batch(admin)

    def _admin_account(self):
        User = get_user_model()
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is not None:
            return admin
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_superuser("admin", "admin@localhost", password)
        # Printed once: the password is not stored anywhere but its hash.
        banner = "=" * 72
        self.stdout.write(
            self.style.SUCCESS(
                f"{banner}\nSign in as   username: admin   password: {password}\n"
                "Shown once: it is stored only as a hash. Lost it? Set a new one with\n"
                f"  make manage ARGS='changepassword admin'\n{banner}"
            )
        )
        return admin

    @transaction.atomic
    def _demo_batch(self, owner) -> None:
        if JobBatch.objects.filter(name=DEMO_BATCH_NAME).exists():
            return
        template = BatchTemplate.objects.get(slug="academic-essay")
        batch = JobBatch.objects.create_from_template(
            owner=owner,
            name=DEMO_BATCH_NAME,
            template=template,
            description="Four sample essays graded offline by the builtin grader.",
            tags=["demo", "essays"],
        )
        documents = [
            store_document(owner, path.name, path.read_bytes())
            for path in sorted(DEMO_DIR.glob("*.txt"))
            if path.name != "README.txt"
        ]
        batch.add_documents(documents)
        batch.start_batch()
        self.stdout.write(f"Created and started the demo batch #{batch.pk} with {len(documents)} essays.")
