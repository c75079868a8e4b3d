"""The economy engine's steps as processes of their own, for tests that kill one where it stands.

    python -m tests.support.economy_process setup JOBS   # migrate, and start an economy batch of JOBS essays
    python -m tests.support.economy_process submit       # one submit step
    python -m tests.support.economy_process poll         # one poll step
    python -m tests.support.economy_process enqueue      # a round (batches.tasks.run_economy) for a cluster
    python -m tests.support.economy_process settle       # take over abandoned submissions, run rounds until
                                                         # no provider batch is open; prints the counts as JSON

Each runs against the database DATABASE_URL names (a file of its own in the tests, which
every process shares) and the provider the environment configures.
"""

import json
import sys
import time
from datetime import timedelta

import django


def setup(jobs: int) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from batches.models import JobBatch
    from grading.models import Document
    from templates_app.models import BatchTemplate
    from templates_app.prebuilt import install

    call_command("migrate", verbosity=0)
    install(BatchTemplate)
    owner = User.objects.create(username="olivia")
    documents = []
    for number in range(jobs):
        text = f"Essay {number} argues that parks beat parking. Evidence shows walking rises near parks."
        documents.append(
            Document.objects.create(
                file=f"documents/essay-{number}.txt",
                original_name=f"essay-{number}.txt",
                content_type="text/plain",
                size=len(text),
                sha256=Document.digest(text.encode()),
                text=text,
                owner=owner,
            )
        )
    batch = JobBatch.objects.create_from_template(
        owner=owner,
        name="Economy",
        template=BatchTemplate.objects.get(slug="academic-essay"),
        settings={"provider": "openai", "model": "gpt-4o-mini"},
        deadline=timezone.now() + timedelta(days=3),
    )
    batch.add_documents(documents)
    batch.start_batch()


def settle() -> dict:
    from django.utils import timezone

    from batches.tasks import run_economy
    from grading.models import GradingJob, GradingResult, ProviderBatch

    # Its submitter is gone: the lease it held need not run out first.
    ProviderBatch.objects.filter(status="preparing").update(
        preparing_until=timezone.now() - timedelta(seconds=1)
    )
    for _ in range(400):
        run_economy()
        if not ProviderBatch.objects.open().exists():
            break
        time.sleep(0.05)
    return {
        "jobs": GradingJob.objects.count(),
        "completed": GradingJob.objects.filter(status="completed").count(),
        "results": GradingResult.objects.count(),
        "jobs_with_a_result": GradingResult.objects.values("job_id").distinct().count(),
        "provider_batches": list(ProviderBatch.objects.values_list("status", flat=True)),
    }


def main(argv: list[str]) -> None:
    django.setup()
    from grading.economy_engine import TickReport, poll, submit_due

    command = argv[0]
    if command == "setup":
        setup(int(argv[1]))
    elif command == "submit":
        submit_due(TickReport())
    elif command == "poll":
        poll(TickReport())
    elif command == "enqueue":
        from django_q.tasks import async_task

        async_task("batches.tasks.run_economy")
    elif command == "settle":
        print(json.dumps(settle()))
    else:
        raise SystemExit(f"Unknown step “{command}”: use setup, submit, poll, enqueue or settle.")


if __name__ == "__main__":
    main(sys.argv[1:])
