"""A comparison batch for the review queue's tests: documents graded by two models, out of 100."""

import re
from datetime import timedelta

from django.utils import timezone

from batches.models import BatchStatus
from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_batch, make_document

BUILTIN = ("builtin", "builtin-v1")
OPENAI = ("openai", "gpt-4o-mini")

# (document, model, score out of 100, or None for a failed job, reviewed score). In upload order:
GRADES = [
    ("alpha.txt", BUILTIN, 75, None),
    ("alpha.txt", OPENAI, 76, 77),  # reviewed
    ("bravo.txt", BUILTIN, 45, None),  # the models differ by 40 points
    ("bravo.txt", OPENAI, 85, None),
    ("charlie.txt", BUILTIN, 69, None),  # 1 point under the 70 % boundary
    ("charlie.txt", OPENAI, 65, None),
    ("delta.txt", BUILTIN, None, None),  # failed
    ("delta.txt", OPENAI, 35, None),
]


def comparison_batch(owner, grades=GRADES, name="Week 6 essays"):
    """A completed batch graded by two models; returns it and its jobs by (document, provider)."""
    batch = make_batch(owner, jobs=0, name=name)
    documents, jobs = {}, {}
    start = timezone.now() - timedelta(hours=1)
    for index, (document, (provider, model), score, reviewed) in enumerate(grades):
        if document not in documents:
            documents[document] = make_document(owner, document, f"The essay called {document}.")
        job = GradingJob.objects.create(
            name=f"{document} · {model}",
            batch=batch,
            document=documents[document],
            owner=owner,
            provider=provider,
            model=model,
            status=JobStatus.FAILED if score is None else JobStatus.COMPLETED,
            last_error="The provider refused the request." if score is None else "",
            created_at=start + timedelta(seconds=index),
        )
        if score is not None:
            result = GradingResult.objects.create(
                job=job,
                provider=provider,
                model=model,
                score=score,
                max_score=100,
                criteria=[{"key": "content", "name": "Content", "score": score, "max_score": 100}],
            )
            if reviewed is not None:
                result.record_review(owner, reviewed)
        jobs[(document, provider)] = job
    batch.status = BatchStatus.COMPLETED
    batch.started_at = start
    batch.save(update_fields=["status", "started_at"])
    return batch, jobs


CALIBRATION_RAW = [30, 42, 55, 61, 70, 78, 84, 90]


def calibrated_comparison_batch(owner, name="Week 6 essays"):
    """Two models graded eight essays; the teacher reviewed six of the builtin grader's as exemplars,
    documents the other model failed to grade (so it has nothing to learn the teacher's scale from),
    and calibrated the batch: the teacher is twenty points harsher than the builtin grader."""
    raw = CALIBRATION_RAW
    grades = [(f"essay-{i}.txt", ("builtin", "builtin-v1"), score, None) for i, score in enumerate(raw)]
    grades += [
        (f"essay-{i}.txt", ("openai", "gpt-4o-mini"), score + 5 if i >= 6 else None, None)
        for i, score in enumerate(raw)
    ]
    batch, jobs = comparison_batch(owner, grades, name=name)
    for i in range(6):
        jobs[(f"essay-{i}.txt", "builtin")].result.record_review(owner, max(raw[i] - 20, 0), exemplar=True)
    batch.calibrate()
    return batch, jobs


def job_ids_in_table(html: str, batch) -> list[int]:
    """The jobs linked from the batch page's jobs table, in the table's order."""
    table = html[html.index('id="batch-jobs"') :]
    table = table[: table.index("</table>")] if "</table>" in table else ""
    return [int(pk) for pk in re.findall(rf'href="/batches/{batch.pk}/jobs/(\d+)[?"]', table)]
