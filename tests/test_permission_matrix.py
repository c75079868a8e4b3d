"""Every API route and method x every persona: the status each one gets, and no foreign row in any answer.

The routes are read from the URLconf, not listed by hand: a route added
under /api/ without a line in EXPECTATIONS fails
`test_every_api_route_has_expectations`, naming it. To add one, pick the
profile that says who may do it (READ, CHANGE, MANAGE, OWNER_ONLY,
SIGNED_IN, PERSONAL, ANYONE), the success status, and, when needed, a body
and a `prepare` that puts the batch in a state where the action succeeds.

The world: olivia owns a batch and a private template, shares both with vera
(view), chad (change) and the group "managers" (manage) of which mona is a
member. stella is a stranger, sam a staff member who is not a superuser, and
anonymous is not signed in. zed, who is none of them, owns a batch, a
template and documents whose names carry a marker that must never appear in
anyone's answer; olivia's objects carry another that only those she shared
with may see.

Each persona's request runs inside a savepoint rolled back afterwards, so
every cell starts from the same world.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from batches.models import AssignmentRule, BatchStatus, InboxItem, JobBatch
from core.permissions import Level, share
from grading.models import Exemplar, GradingJob, GradingResult, JobStatus
from notifications.models import BatchWebhook, Channel, Event, Notification
from templates_app.models import BatchTemplate
from tests.api_support import client_for
from tests.conftest import make_batch, make_document, prebuilt, set_status

OWNER, VIEWER, CHANGER, MANAGER = "owner", "viewer", "changer", "manager"
STRANGER, STAFF, ANONYMOUS = "stranger", "staff", "anonymous"
PERSONAS = [OWNER, VIEWER, CHANGER, MANAGER, STRANGER, STAFF, ANONYMOUS]
PRIVATE_MARK = "OLIVIA-PRIVATE"
FOREIGN_MARK = "ZZ-FOREIGN"


# --- who may do what ------------------------------------------------------------


def READ(ok: int = 200) -> dict[str, int]:
    """Anyone the object is shared with; those who may not see it get 404."""
    return {OWNER: ok, VIEWER: ok, CHANGER: ok, MANAGER: ok, STRANGER: 404, STAFF: 404, ANONYMOUS: 401}


def CHANGE(ok: int = 200) -> dict[str, int]:
    return {**READ(ok), VIEWER: 403}


def MANAGE(ok: int = 200) -> dict[str, int]:
    return {**CHANGE(ok), CHANGER: 403}


def OWNER_ONLY(ok: int = 200) -> dict[str, int]:
    return {**MANAGE(ok), MANAGER: 403}


def SIGNED_IN(ok: int = 200) -> dict[str, int]:
    return {persona: ok for persona in PERSONAS} | {ANONYMOUS: 401}


def PERSONAL(ok: int = 200) -> dict[str, int]:
    """Something of the owner's own (a notification): everyone else, even those shared with, gets 404."""
    return {persona: 404 for persona in PERSONAS} | {OWNER: ok, ANONYMOUS: 401}


def ANYONE(ok: int = 200) -> dict[str, int]:
    return {persona: ok for persona in PERSONAS}


# --- the world ------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User | None]
    batch: JobBatch
    job: GradingJob
    spare_job: GradingJob
    template: BatchTemplate
    foreign_batch: JobBatch
    notification: Notification
    webhook: BatchWebhook
    extra: User
    exemplar: Exemplar

    def user(self, persona: str) -> User | None:
        return self.users[persona]


def build_world() -> World:
    users = {
        OWNER: User.objects.create_user("olivia", password="pw"),
        VIEWER: User.objects.create_user("vera", password="pw"),
        CHANGER: User.objects.create_user("chad", password="pw"),
        MANAGER: User.objects.create_user("mona", password="pw"),
        STRANGER: User.objects.create_user("stella", password="pw"),
        STAFF: User.objects.create_user("sam", password="pw", is_staff=True),
        ANONYMOUS: None,
    }
    managers = Group.objects.create(name="managers")
    users[MANAGER].groups.add(managers)
    owner, essay = users[OWNER], prebuilt("academic-essay")

    # Waits for olivia's start: uploads into it must not start it (the essay template would).
    batch = make_batch(
        owner, essay, jobs=0, name=f"{PRIVATE_MARK} essays", settings={"processing": {"auto_start": False}}
    )
    batch.add_documents([make_document(owner, f"{PRIVATE_MARK}-{i}.txt") for i in range(2)])
    job, spare_job = batch.jobs.order_by("pk")
    GradingResult.objects.create(
        job=job,
        provider="builtin",
        model="builtin",
        score=6,
        max_score=10,
        feedback=f"{PRIVATE_MARK} feedback",
    )
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    template = BatchTemplate.objects.create(
        name=f"{PRIVATE_MARK} rubric",
        slug="olivia-rubric",
        default_settings=essay.default_settings,
        owner=owner,
    )
    for obj in (batch, template):
        share(obj, users[VIEWER], Level.VIEW)
        share(obj, users[CHANGER], Level.CHANGE)
        share(obj, managers, Level.MANAGE)

    zed = User.objects.create_user("zed", password="pw")
    foreign_batch = make_batch(zed, essay, jobs=0, name=f"{FOREIGN_MARK} batch")
    foreign_batch.add_documents([make_document(zed, f"{FOREIGN_MARK}.txt")])
    BatchTemplate.objects.create(
        name=f"{FOREIGN_MARK} rubric", slug="zed-rubric", default_settings=essay.default_settings, owner=zed
    )
    GradingJob.objects.create(
        name=f"{FOREIGN_MARK} loose job", document=make_document(zed, "z.txt"), owner=zed
    )

    notification = Notification.objects.create(
        event=Event.BATCH_FINISHED,
        key="k",
        batch=batch,
        channel=Channel.IN_APP,
        recipient=owner,
        title="Done",
    )
    webhook = BatchWebhook.objects.create(
        batch=batch, url="https://hooks.example.com/olivia", created_by=owner
    )
    extra = User.objects.create_user("extra", password="pw")
    exemplar = Exemplar.objects.create(
        template=template, document=make_document(owner, f"{PRIVATE_MARK}-exemplar.txt"), score=7, owner=owner
    )
    return World(
        users, batch, job, spare_job, template, foreign_batch, notification, webhook, extra, exemplar
    )


# --- what each route expects ------------------------------------------------------


def batch_pk(world: World) -> dict[str, Any]:
    return {"pk": world.batch.pk}


def job_pk(world: World) -> dict[str, Any]:
    return {"pk": world.job.pk}


def template_pk(world: World) -> dict[str, Any]:
    return {"pk": world.template.pk}


def webhook_pk(world: World) -> dict[str, Any]:
    return {"batch_id": world.batch.pk, "pk": world.webhook.pk}


def no_kwargs(world: World) -> dict[str, Any]:
    return {}


def in_state(status: str, job_status: str | None = None) -> Callable[[World], None]:
    return lambda world: set_status(world.batch, status, job_status)


def visible_batches(user: User) -> set[int]:
    return set(JobBatch.objects.visible_to(user).values_list("pk", flat=True))


def visible_jobs(user: User) -> set[int]:
    return set(GradingJob.objects.visible_to(user).values_list("pk", flat=True))


def visible_templates(user: User) -> set[int]:
    return set(BatchTemplate.objects.visible_to(user).values_list("pk", flat=True))


def own_notifications(user: User) -> set[int]:
    return set(Notification.objects.in_app_for(user).values_list("pk", flat=True))


def batch_webhooks(user: User) -> set[int]:
    return set(BatchWebhook.objects.filter(batch__owner=user).values_list("pk", flat=True))


def share_body(world: World) -> dict[str, str]:
    return {"user": world.extra.username, "permission": "view"}


def upload_body(world: World) -> dict[str, Any]:
    return {"files": [SimpleUploadedFile("new-essay.txt", b"A new essay about rivers and towns.")]}


def roster_body(world: World) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("roster.csv", b"id,name,email\n1,Ada Lovelace,ada@example.com\n")}


def exemplar_body(world: World) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("graded-essay.txt", b"An essay the teacher graded."), "score": "12"}


def with_rule(world: World) -> None:
    """olivia's assignment rule, marked private, shared as her batch and template are."""
    made = AssignmentRule.objects.create(
        owner=world.user(OWNER), name=f"{PRIVATE_MARK} rule", position=1, template=world.batch.template
    )
    share(made, world.user(VIEWER), Level.VIEW)
    share(made, world.user(CHANGER), Level.CHANGE)
    share(made, Group.objects.get(name="managers"), Level.MANAGE)


def rule_pk(world: World) -> dict[str, Any]:
    return {"pk": AssignmentRule.objects.get(name=f"{PRIVATE_MARK} rule").pk}


def visible_rules(user: User) -> set[int]:
    return set(AssignmentRule.objects.visible_to(user).values_list("pk", flat=True))


def with_inboxes(world: World) -> None:
    """A document waiting in everyone's inbox: olivia's and zed's marked."""
    for persona, user in world.users.items():
        if user is not None:
            mark = PRIVATE_MARK if persona == OWNER else "plain"
            InboxItem.objects.create(document=make_document(user, f"{mark}-inbox.txt"), owner=user)
    zed = User.objects.get(username="zed")
    InboxItem.objects.create(document=make_document(zed, f"{FOREIGN_MARK}-inbox.txt"), owner=zed)


def own_inbox_pk(world: World) -> dict[str, Any]:
    return {"pk": InboxItem.objects.get(owner=world.user(OWNER)).pk}


def own_inbox(user: User) -> set[int]:
    return set(InboxItem.objects.of(user).values_list("pk", flat=True))


def running(world: World) -> None:
    """olivia's and zed's batches in the queue, each with a job waiting."""
    set_status(world.batch, BatchStatus.PROCESSING)
    GradingJob.objects.filter(pk=world.spare_job.pk).update(status=JobStatus.QUEUED)
    set_status(world.foreign_batch, BatchStatus.PENDING, JobStatus.QUEUED)


def queue_rows(response, persona: str, world: World) -> str | None:
    """Only batches the persona may view are listed; zed's (and, for strangers, olivia's) only as totals."""
    body = response.json()
    listed = {row["id"] for row in body["batches"]}
    user = world.user(persona)
    foreign = listed - (visible_batches(user) if user else set())
    if foreign:
        return f"the queue lists batches the persona may not view: {sorted(foreign)}"
    if READ()[persona] == 200 and listed != {world.batch.pk}:
        return f"the queue should list olivia's batch to {persona}, listed {sorted(listed)}"
    if body["total"]["batches"] != 2 or body["others"]["batches"] != 2 - len(listed):
        return f"the totals are off: {body['total']}, {body['others']}"
    return None


BULK_OUTCOMES = {200: "ok", 403: "permission_denied", 404: "not_found"}


def bulk_outcomes(response, persona: str, world: World) -> str | None:
    """Each id's outcome follows the CHANGE profile; zed's batch is not found for everyone."""
    outcomes = {row["id"]: row for row in response.json()["results"]}
    wanted = BULK_OUTCOMES[CHANGE()[persona]]
    got = "ok" if outcomes[world.batch.pk]["ok"] else outcomes[world.batch.pk]["code"]
    if got != wanted:
        return f"own batch outcome {got!r}, expected {wanted!r}"
    if outcomes[world.foreign_batch.pk].get("code") != "not_found":
        return f"zed's batch outcome {outcomes[world.foreign_batch.pk]!r}, expected not_found"
    return None


@dataclass(frozen=True)
class Expect:
    access: dict[str, int]
    kwargs: Callable[[World], dict[str, Any]] = batch_pk
    body: Callable[[World], Any] | None = None
    prepare: Callable[[World], None] | None = None
    multipart: bool = False
    # For lists: the ids the persona may see; every row listed must be among them.
    rows: Callable[[User], set[int]] | None = None
    check: Callable[..., str | None] | None = None
    notes: str = field(default="", compare=False)


EXPECTATIONS: dict[str, Expect] = {
    # batches
    "GET batch-list": Expect(SIGNED_IN(), no_kwargs, rows=visible_batches),
    "POST batch-list": Expect(
        SIGNED_IN(201), no_kwargs, body=lambda w: {"name": "New batch", "template": "academic-essay"}
    ),
    "GET batch-detail": Expect(READ()),
    "PUT batch-detail": Expect(CHANGE(), body=lambda w: {"name": "Renamed"}),
    "PATCH batch-detail": Expect(CHANGE(), body=lambda w: {"priority": 7}),
    "DELETE batch-detail": Expect(OWNER_ONLY(204)),
    "POST batch-start": Expect(CHANGE()),
    "POST batch-pause": Expect(CHANGE(), prepare=in_state(BatchStatus.PROCESSING)),
    "POST batch-resume": Expect(CHANGE(), prepare=in_state(BatchStatus.PAUSED)),
    "POST batch-cancel": Expect(CHANGE()),
    "POST batch-retry": Expect(CHANGE(), prepare=in_state(BatchStatus.FAILED, JobStatus.FAILED)),
    "POST batch-archive": Expect(CHANGE(), prepare=in_state(BatchStatus.COMPLETED)),
    "POST batch-unarchive": Expect(CHANGE(), prepare=in_state(BatchStatus.ARCHIVED)),
    "POST batch-duplicate": Expect(CHANGE(201)),
    "GET batch-jobs": Expect(READ(), rows=visible_jobs),
    "POST batch-jobs": Expect(CHANGE(201), body=lambda w: {"documents": [w.job.document_id]}),
    "DELETE batch-remove-job": Expect(
        CHANGE(204), kwargs=lambda w: {"pk": w.batch.pk, "job_id": w.spare_job.pk}
    ),
    "POST batch-documents": Expect(CHANGE(201), body=upload_body, multipart=True),
    "POST batch-bulk-operations": Expect(
        SIGNED_IN(),
        no_kwargs,
        body=lambda w: {"action": "cancel", "batch_ids": [w.batch.pk, w.foreign_batch.pk]},
        check=bulk_outcomes,
    ),
    "GET batch-permissions": Expect(MANAGE()),
    "POST batch-share": Expect(MANAGE(), body=share_body),
    "POST batch-unshare": Expect(MANAGE(), body=share_body),
    "GET batch-analytics": Expect(READ()),
    "GET batch-estimate": Expect(READ()),
    "GET batch-export": Expect(READ()),
    "POST batch-calibrate": Expect(CHANGE()),
    "GET batch-roster": Expect(READ()),
    "POST batch-roster": Expect(CHANGE(201), body=roster_body, multipart=True),
    # webhooks: the batch owner's alone
    "GET batch-webhook-list": Expect(OWNER_ONLY(), lambda w: {"batch_id": w.batch.pk}, rows=batch_webhooks),
    "POST batch-webhook-list": Expect(
        OWNER_ONLY(201),
        lambda w: {"batch_id": w.batch.pk},
        body=lambda w: {"url": "https://hooks.example.com/new"},
    ),
    "GET batch-webhook-detail": Expect(OWNER_ONLY(), webhook_pk),
    "PUT batch-webhook-detail": Expect(
        OWNER_ONLY(), webhook_pk, body=lambda w: {"url": "https://hooks.example.com/moved"}
    ),
    "PATCH batch-webhook-detail": Expect(OWNER_ONLY(), webhook_pk, body=lambda w: {"is_active": False}),
    "DELETE batch-webhook-detail": Expect(OWNER_ONLY(204), webhook_pk),
    "GET batch-webhook-deliveries": Expect(OWNER_ONLY(), webhook_pk),
    "POST batch-webhook-rotate-secret": Expect(OWNER_ONLY(), webhook_pk),
    # templates
    "GET batch-template-list": Expect(SIGNED_IN(), no_kwargs, rows=visible_templates),
    "POST batch-template-list": Expect(
        SIGNED_IN(201),
        no_kwargs,
        body=lambda w: {
            "name": "Fresh rubric",
            "slug": "fresh-rubric",
            "default_settings": prebuilt("academic-essay").default_settings,
        },
    ),
    "GET batch-template-detail": Expect(READ(), template_pk),
    "PUT batch-template-detail": Expect(
        CHANGE(),
        template_pk,
        body=lambda w: {
            "name": "Renamed rubric",
            "slug": "olivia-rubric",
            "default_settings": w.template.default_settings,
        },
    ),
    "PATCH batch-template-detail": Expect(CHANGE(), template_pk, body=lambda w: {"description": "Sharper"}),
    "DELETE batch-template-detail": Expect(OWNER_ONLY(204), template_pk),
    "GET batch-template-permissions": Expect(MANAGE(), template_pk),
    "POST batch-template-share": Expect(MANAGE(), template_pk, body=share_body),
    "POST batch-template-unshare": Expect(MANAGE(), template_pk, body=share_body),
    "GET template-exemplars": Expect(READ(), template_pk),
    "POST template-exemplars": Expect(CHANGE(201), template_pk, body=exemplar_body, multipart=True),
    "DELETE template-exemplar": Expect(CHANGE(204), lambda w: {"pk": w.template.pk, "eid": w.exemplar.pk}),
    # jobs and results
    "GET job-list": Expect(SIGNED_IN(), no_kwargs, rows=visible_jobs),
    "GET job-detail": Expect(READ(), job_pk),
    "POST job-review": Expect(CHANGE(), job_pk, body=lambda w: {"score": 8}),
    "DELETE job-review": Expect(CHANGE(), job_pk),
    "GET job-feedback": Expect(READ(), job_pk),
    # notifications: each user's own
    "GET notification-list": Expect(SIGNED_IN(), no_kwargs, rows=own_notifications),
    "GET notification-detail": Expect(PERSONAL(), lambda w: {"pk": w.notification.pk}),
    "POST notification-read": Expect(PERSONAL(), lambda w: {"pk": w.notification.pk}),
    "POST notification-read-all": Expect(SIGNED_IN(), no_kwargs),
    "GET notification-preferences": Expect(SIGNED_IN(), no_kwargs),
    "PUT notification-preferences": Expect(
        SIGNED_IN(), no_kwargs, body=lambda w: {"email": {"progress_milestone": True}}
    ),
    "PATCH notification-preferences": Expect(
        SIGNED_IN(), no_kwargs, body=lambda w: {"in_app": {"progress_milestone": False}}
    ),
    # assignment rules: shared like batches and templates
    "GET assignment-rule-list": Expect(SIGNED_IN(), no_kwargs, prepare=with_rule, rows=visible_rules),
    "POST assignment-rule-list": Expect(
        SIGNED_IN(201), no_kwargs, body=lambda w: {"name": "New rule", "template": "academic-essay"}
    ),
    "GET assignment-rule-detail": Expect(READ(), rule_pk, prepare=with_rule),
    "PUT assignment-rule-detail": Expect(
        CHANGE(),
        rule_pk,
        prepare=with_rule,
        body=lambda w: {"name": "Renamed", "template": "academic-essay"},
    ),
    "PATCH assignment-rule-detail": Expect(
        CHANGE(), rule_pk, prepare=with_rule, body=lambda w: {"priority": 8}
    ),
    "DELETE assignment-rule-detail": Expect(OWNER_ONLY(204), rule_pk, prepare=with_rule),
    "GET assignment-rule-permissions": Expect(MANAGE(), rule_pk, prepare=with_rule),
    "POST assignment-rule-share": Expect(MANAGE(), rule_pk, prepare=with_rule, body=share_body),
    "POST assignment-rule-unshare": Expect(MANAGE(), rule_pk, prepare=with_rule, body=share_body),
    # the inbox: each user's own; assigning needs change on the batch
    "GET inbox": Expect(SIGNED_IN(), no_kwargs, prepare=with_inboxes, rows=own_inbox),
    "POST inbox": Expect(SIGNED_IN(201), no_kwargs, body=upload_body, multipart=True),
    "POST inbox-assign": Expect(
        CHANGE(), no_kwargs, prepare=with_inboxes, body=lambda w: {"batch": w.batch.pk}
    ),
    "DELETE inbox-item": Expect(PERSONAL(204), own_inbox_pk, prepare=with_inboxes),
    # the queue: everyone's, showing only what they may view
    "GET queue": Expect(SIGNED_IN(), no_kwargs, prepare=running, check=queue_rows),
    # the deployment's provider connections: the same for everyone signed in
    "GET providers": Expect(SIGNED_IN(), no_kwargs),
    # the API itself
    "GET api-root": Expect(SIGNED_IN(), no_kwargs),
    "GET api-schema": Expect(ANYONE(), no_kwargs),
    "GET api-docs": Expect(ANYONE(), no_kwargs),
    # A wrong password is refused alike for everyone; nobody gets a token for someone else.
    "POST api-token": Expect(
        ANYONE(400), no_kwargs, body=lambda w: {"username": "olivia", "password": "not her password"}
    ),
}


# --- the routes, from the URLconf ----------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _methods(pattern: URLPattern) -> list[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)  # a DRF viewset route: method -> action
    if actions:
        return sorted(method for method in actions if method in METHODS)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    return [method for method in METHODS if hasattr(view_class, method)]


def api_routes() -> set[str]:
    routes = set()
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith("api/"):
            routes |= {f"{method.upper()} {pattern.name}" for method in _methods(pattern)}
    return routes


def test_every_api_route_has_expectations():
    missing = sorted(api_routes() - set(EXPECTATIONS))
    assert not missing, (
        "These API routes have no line in EXPECTATIONS of tests/test_permission_matrix.py; "
        f"add who may call them: {missing}"
    )


def test_every_expectation_names_a_route_that_exists():
    stale = sorted(set(EXPECTATIONS) - api_routes())
    assert not stale, f"EXPECTATIONS name routes the URLconf no longer has: {stale}"


# --- the matrix ----------------------------------------------------------------------------


def _request(world: World, route: str, expect: Expect, persona: str):
    method, name = route.split(" ", 1)
    url = reverse(name, kwargs=expect.kwargs(world))
    client = client_for(world.user(persona))
    body = expect.body(world) if expect.body else None
    send = getattr(client, method.lower())
    if expect.multipart:
        return send(url, body, format="multipart")
    return send(url, body, format="json") if body is not None else send(url)


def _problems(world: World, route: str, expect: Expect, persona: str, response) -> list[str]:
    outsider = persona in (STRANGER, STAFF, ANONYMOUS)
    return answer_problems(world, expect, persona, persona, response, private_forbidden=outsider)


def answer_problems(
    world: World, expect: Expect, persona: str, column: str, response, *, private_forbidden: bool
) -> list[str]:
    """What is wrong with one answer: its status (the `column` of the expectation's access),
    a row of zed's, olivia's private marker when forbidden, a listed row the persona may not
    see, or the route's own check."""
    problems = []
    wanted = expect.access[column]
    if response.status_code != wanted:
        problems.append(f"status {response.status_code}, expected {wanted}: {response.content[:200]!r}")
    content = b"".join(response.streaming_content) if response.streaming else response.content
    text = content.decode("utf-8", "replace")
    if FOREIGN_MARK in text:
        problems.append("the answer holds a row of zed's, which no persona may see")
    if private_forbidden and PRIVATE_MARK in text:
        problems.append("the answer holds a row of olivia's, which this persona may not see")
    if response.status_code == 200 and expect.rows is not None:
        listed = {row["id"] for row in response.json()["results"]}
        foreign = listed - expect.rows(world.user(persona))
        if foreign:
            problems.append(f"the list holds rows the persona may not see: {sorted(foreign)}")
    if response.status_code == wanted and response.status_code < 300 and expect.check is not None:
        problem = expect.check(response, column, world)
        if problem:
            problems.append(problem)
    return problems


@pytest.mark.parametrize("route", sorted(EXPECTATIONS))
def test_permission_matrix(db, route):
    expect = EXPECTATIONS[route]
    world = build_world()
    failures = {}
    for persona in PERSONAS:
        # Each persona starts from the same world: its request runs in a savepoint rolled back after.
        with transaction.atomic():
            if expect.prepare:
                expect.prepare(world)
            response = _request(world, route, expect, persona)
            problems = _problems(world, route, expect, persona, response)
            transaction.set_rollback(True)
        if problems:
            failures[persona] = problems
    assert not failures, f"{route}:\n" + "\n".join(
        f"  {p}: {'; '.join(msgs)}" for p, msgs in failures.items()
    )


def test_the_world_lets_every_list_show_its_own_rows(db):
    # The foreign-row checks would pass vacuously if the lists were empty.
    world = build_world()
    for persona in (VIEWER, CHANGER, MANAGER):
        user = world.user(persona)
        assert world.batch.pk in visible_batches(user)
        assert world.template.pk in visible_templates(user)
        assert world.job.pk in visible_jobs(user)
        listed = client_for(user).get("/api/batches").json()["results"]
        assert [row["id"] for row in listed] == [world.batch.pk]
