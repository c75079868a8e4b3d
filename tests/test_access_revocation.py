"""Revoked access does not linger: after an unshare or a downgrade, every API route answers as if it never was.

The world is the permission matrix's (tests/test_permission_matrix.py): olivia
owns a batch and a template and shares both with vera (view) and chad
(change). Before the revocation, each of them does what once let access
outlive the share:

- chad, who may change, uploads a document into olivia's batch, so he is
  the owner of its document and job; the job is then graded. It becomes the
  world's `job`, the one the job routes ask about.
- vera, who may only view, asks to attach olivia's documents to a batch of
  her own (POST /api/batches/{id}/jobs), which must be refused.

Then olivia revokes, on the batch, the template and her assignment rule alike
(the rule is made, and shared, by the routes that need it: it is revoked
right after):

- unshare: the persona answers every route as a stranger does (the matrix's
  stranger column) and no answer holds anything of olivia's;
- downgrade, change -> view (chad only; vera holds no more than view): chad
  answers every route as a viewer does (the matrix's viewer column), so he
  may read but no longer review his own upload, nor change anything.

Jobs, documents and results follow their batch, not whoever uploaded them.
The routes are the matrix's EXPECTATIONS, which
`test_every_api_route_has_expectations` keeps complete.
"""

from dataclasses import replace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse

from batches.models import AssignmentRule, BatchStatus
from core.permissions import Level, unshare
from grading.models import Document, GradingJob, GradingResult, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch
from tests.test_permission_matrix import (
    CHANGER,
    EXPECTATIONS,
    PRIVATE_MARK,
    STRANGER,
    VIEWER,
    Expect,
    World,
    _request,
    answer_problems,
    build_world,
)

pytestmark = pytest.mark.django_db

UPLOADED_MARK = f"{PRIVATE_MARK}-chads-upload"


def chad_uploads_a_graded_job(world: World) -> World:
    """chad uploads through the API into olivia's batch; his job is graded and becomes the world's job."""
    batch = world.batch
    response = client_for(world.user(CHANGER)).post(
        reverse("batch-documents", kwargs={"pk": batch.pk}),
        {"files": [SimpleUploadedFile(f"{UPLOADED_MARK}.txt", b"Chad's essay about the river.")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content[:300]
    job = GradingJob.objects.get(pk=response.json()["jobs"][0]["id"])
    assert job.owner == world.user(CHANGER) and job.document.owner == world.user(CHANGER)
    GradingResult.objects.create(
        job=job, provider="builtin", model="builtin", score=5, max_score=10, feedback=f"{PRIVATE_MARK} notes"
    )
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT
    return replace(world, job=GradingJob.objects.get(pk=job.pk))


def vera_attaches_olivias_documents(world: World) -> World:
    """vera, a viewer, asks to attach olivia's documents to a batch of her own; the answer is not checked here."""
    own = make_batch(world.user(VIEWER), jobs=0, name="Vera's own")
    documents = list(world.batch.jobs.values_list("document_id", flat=True))
    client_for(world.user(VIEWER)).post(
        reverse("batch-jobs", kwargs={"pk": own.pk}), {"documents": documents}, format="json"
    )
    return world


SCENARIOS = {
    CHANGER: chad_uploads_a_graded_job,
    VIEWER: vera_attaches_olivias_documents,
}
# (the persona who acts, the revocation, the matrix column the persona must then answer as)
CASES = [
    pytest.param(CHANGER, "unshare", STRANGER, id="changer-who-uploaded-unshared"),
    pytest.param(CHANGER, "downgrade", VIEWER, id="changer-who-uploaded-downgraded-to-view"),
    pytest.param(VIEWER, "unshare", STRANGER, id="viewer-who-tried-to-attach-unshared"),
]


def revoke(world: World, persona: str, how: str, objects=None) -> None:
    level = Level.VIEW if how == "unshare" else Level.CHANGE
    for obj in objects if objects is not None else (world.batch, world.template):
        unshare(obj, world.user(persona), level)


def revoked_world(persona: str, how: str) -> World:
    world = SCENARIOS[persona](build_world())
    revoke(world, persona, how)
    return world


def _problems(world: World, expect: Expect, persona: str, column: str, response) -> list[str]:
    # Answered as a stranger, nothing of olivia's may show; as a viewer, what viewers see.
    return answer_problems(world, expect, persona, column, response, private_forbidden=column == STRANGER)


@pytest.mark.parametrize(("persona", "how", "column"), CASES)
def test_every_route_answers_as_if_the_access_never_was(persona, how, column):
    world = revoked_world(persona, how)
    failures = {}
    for route, expect in sorted(EXPECTATIONS.items()):
        # Each route starts from the same world: its request runs in a savepoint rolled back after.
        with transaction.atomic():
            if expect.prepare:
                expect.prepare(world)
                revoke(world, persona, how, AssignmentRule.objects.all())
            response = _request(world, route, expect, persona)
            problems = _problems(world, expect, persona, column, response)
            transaction.set_rollback(True)
        if problems:
            failures[route] = problems
    assert not failures, f"{persona} after {how}, answering as {column}:\n" + "\n".join(
        f"  {route}: {'; '.join(msgs)}" for route, msgs in failures.items()
    )


def _olivias(world: World) -> dict[str, set[int]]:
    jobs = GradingJob.objects.filter(document__in=Document.objects.filter(jobs__batch=world.batch))
    return {
        "jobs": set(jobs.values_list("pk", flat=True)),
        "documents": set(jobs.values_list("document_id", flat=True)),
        "results": set(GradingResult.objects.filter(job__in=jobs).values_list("pk", flat=True)),
    }


@pytest.mark.parametrize(("persona", "how", "column"), CASES)
def test_nothing_of_the_owners_is_reachable_beyond_what_the_column_allows(persona, how, column):
    """The querysets behind every route: after an unshare nothing is visible, after a downgrade nothing changeable.

    "Olivia's" is every job on a document of her batch, wherever the job is
    (vera's batch too, had the attach gone through).
    """
    world = revoked_world(persona, how)
    user = world.user(persona)
    olivias = _olivias(world)
    assert world.job.pk in olivias["jobs"]
    models = {"jobs": GradingJob, "documents": Document, "results": GradingResult}
    leaks = {}
    for name, model in models.items():
        reachable = (
            model.objects.visible_to(user) if column == STRANGER else model.objects.changeable_by(user)
        )
        leaked = set(reachable.values_list("pk", flat=True)) & olivias[name]
        if leaked:
            leaks[name] = sorted(leaked)
    verb = "sees" if column == STRANGER else "may change"
    assert not leaks, f"{persona} after {how} still {verb} olivia's {leaks}"
