"""The table of batch actions (batches/actions.py) is the one place an action is declared.

Every action in the table has its JobBatch method and is reachable on every
surface: an API route that answers, a bulk operation, a web URL with its
button, an admin action. Each surface offers exactly the table's actions, as
read at run time; and no module of batches/ lists actions itself (its source
is walked with `ast`, its templates read as text). Adding an action is one
entry in the table plus its JobBatch method: nothing here changes.
"""

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import resolve, reverse

from batches import views
from batches.actions import ACTIONS, BY_NAME, BatchAction, allowed_in
from batches.api import BulkOperationSerializer
from batches.apps import check_batch_actions
from batches.bulk import EDITS, OPERATIONS
from batches.models import TRANSITIONS, BatchStatus, JobBatch
from batches.presenters import ALL_ACCESS, DETAIL_ACTIONS, LIST_ACTIONS, BatchRow, rows_for
from core.permissions import Level, share
from grading.models import JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, set_status

ROOT = Path(__file__).resolve().parent.parent
NAMES = [action.name for action in ACTIONS]
BY_ACTION = pytest.mark.parametrize("action", ACTIONS, ids=NAMES)


def prepared(owner, action: BatchAction) -> JobBatch:
    """A batch of two jobs in the first state the action may start from, with the jobs it needs."""
    batch = make_batch(owner, name="Essays")
    if action.allowed_from is not None:
        state = next(state for state in BatchStatus.values if state in action.allowed_from)
        job_state = next((key for key in action.needs_jobs if key in JobStatus.values), None)
        set_status(batch, state, job_state)
    return batch


# --- the table itself ----------------------------------------------------------------


@BY_ACTION
def test_every_action_calls_a_method_of_the_model(action):
    assert callable(getattr(JobBatch, action.method, None)), f"JobBatch.{action.method} does not exist"


def test_the_system_check_passes_on_the_table():
    assert check_batch_actions() == []


def test_the_system_check_names_an_action_without_its_model_method(monkeypatch):
    orphan = replace(ACTIONS[0], name="orphaned_action", method="no_such_method")
    monkeypatch.setattr("batches.actions.ACTIONS", (*ACTIONS, orphan))

    errors = check_batch_actions()

    assert [(error.id, error.obj) for error in errors] == [("batches.E001", "orphaned_action")]
    assert "JobBatch.no_such_method" in errors[0].msg


@BY_ACTION
def test_each_entry_is_well_formed(action):
    assert re.fullmatch(r"[a-z][a-z_]*", action.name)
    assert BY_NAME[action.name] is action
    assert action.allowed_from is None or (
        action.allowed_from and action.allowed_from <= set(BatchStatus.values)
    )
    assert action.level in Level
    assert action.style in ("", "primary", "danger-ghost")
    assert set(action.needs_jobs) <= {"total", *JobStatus.values}
    assert action.label and action.done and action.summary
    assert "{name}" in action.message


def test_names_are_unique():
    assert len(set(NAMES)) == len(NAMES) == len(BY_NAME)


def test_an_unknown_state_or_level_fails_when_the_table_is_read():
    with pytest.raises(ValueError):
        replace(ACTIONS[0], allowed_from=frozenset({"dormant"}))
    with pytest.raises(ValueError):
        replace(ACTIONS[0], level="own")


def test_the_state_machine_reads_its_states_from_the_table():
    declared = {action.name: action.allowed_from for action in ACTIONS}
    assert declared == TRANSITIONS
    for status in BatchStatus.values:
        assert allowed_in(status) == [
            name for name, sources in TRANSITIONS.items() if not sources or status in sources
        ]


# --- the API -----------------------------------------------------------------------------


@pytest.mark.django_db
@BY_ACTION
def test_the_api_has_a_route_for_each_action_and_it_answers(
    owner, action, django_capture_on_commit_callbacks
):
    batch = prepared(owner, action)
    url = reverse(f"batch-{action.name}", args=[batch.pk])
    assert url == f"/api/batches/{batch.pk}/{action.name}"
    assert resolve(url).func.actions == {"post": action.name}

    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(owner).post(url)

    # Done (the batch, or 201 and the new one), or refused by the model under this action's name.
    assert response.status_code in (200, 201, 409), response.content
    if response.status_code == 409:
        assert response.json()["action"] == action.name
    else:
        assert response.status_code == (201 if action.creates else 200)
        assert set(response.json()) >= {"id", "status", "allowed_actions"}


@pytest.mark.django_db
@BY_ACTION
def test_the_api_route_asks_for_the_actions_level(owner, colleague, action):
    batch = prepared(owner, action)
    share(batch, colleague, Level.VIEW)
    response = client_for(colleague).post(f"/api/batches/{batch.pk}/{action.name}")
    if action.level == Level.VIEW:
        assert response.status_code != 403
    else:
        assert response.status_code == 403
        assert response.json()["detail"] == f"You may view this but not {action.level.verb}."


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        return APIClient().get("/api/schema?format=json").json()


def test_the_schema_documents_exactly_the_tables_actions(schema):
    """A batch action is a POST on one batch with no body, refused (409) in some states.

    The schema holds one per entry, no other: an action's 409 is a refused transition. Other
    bodiless POSTs on a batch (calibrating its scores, refused with a plain error when there is
    nothing to calibrate) are no actions of its state machine.
    """
    documented = {}
    for path, item in schema["paths"].items():
        found = re.fullmatch(r"/api/batches/\{id\}/([^/{}]+)", path)
        post = item.get("post") or {}
        refused = post.get("responses", {}).get("409", {})
        if found and post and "requestBody" not in post and "TransitionError" in str(refused):
            documented[found.group(1)] = item["post"]
    assert set(documented) == set(NAMES)
    for action in ACTIONS:
        operation = documented[action.name]
        assert operation["summary"] == action.summary
        assert ("201" if action.creates else "200") in operation["responses"]
        assert "409" in operation["responses"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", BatchStatus.values)
def test_the_api_lists_the_actions_the_table_allows(owner, status):
    batch = set_status(make_batch(owner), status)
    assert client_for(owner).get(f"/api/batches/{batch.pk}").json()["allowed_actions"] == allowed_in(status)


def test_each_action_is_allowed_from_some_state():
    assert {name for status in BatchStatus.values for name in allowed_in(status)} == set(NAMES)


# --- bulk operations -----------------------------------------------------------------------


def test_bulk_accepts_every_action_and_otherwise_only_its_edits():
    choices = set(BulkOperationSerializer().fields["action"].choices)
    assert choices == set(OPERATIONS)
    assert choices - set(EDITS) == set(NAMES)
    assert not set(EDITS) & set(NAMES)


@pytest.mark.django_db
@BY_ACTION
def test_bulk_runs_each_action(owner, action, django_capture_on_commit_callbacks):
    batch = prepared(owner, action)
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(owner).post(
            "/api/batches/bulk-operations", {"action": action.name, "batch_ids": [batch.pk]}, format="json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["action"] == action.name
    [outcome] = response.json()["results"]
    assert outcome["ok"] or outcome["code"] == "invalid_transition"
    if outcome["ok"]:
        assert ("duplicate_id" in outcome) == action.creates


# --- the web ---------------------------------------------------------------------------


def test_the_web_has_exactly_one_url_per_action():
    from batches.urls import urlpatterns

    routed = {pattern.name for pattern in urlpatterns if pattern.callback is views.batch_action}
    assert routed == set(NAMES)


def test_the_presenter_offers_the_tables_actions():
    offered = {"detail": DETAIL_ACTIONS, "list": LIST_ACTIONS}
    assert offered == {
        "detail": tuple(NAMES),
        "list": tuple(action.name for action in ACTIONS if action.on_list),
    }


@pytest.mark.django_db
@BY_ACTION
def test_the_web_offers_each_action_and_runs_it(client, owner, action, django_capture_on_commit_callbacks):
    batch = prepared(owner, action)
    url = reverse(f"batches:{action.name}", args=[batch.pk])
    assert url == f"/batches/{batch.pk}/{action.name}"
    match = resolve(url)
    assert match.func is views.batch_action and match.kwargs["action"] == action.name

    row = BatchRow(batch, set(ALL_ACCESS), among=DETAIL_ACTIONS)
    assert action.name in row.actions
    assert action in row.offered
    client.force_login(owner)
    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert f'action="{url}"' in page and f">{action.label}</button>" in page
    if action.on_list:
        [listed] = rows_for(owner, [batch])
        assert action.name in listed.actions
        assert f'action="{url}"' in client.get("/batches").content.decode()

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url)

    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"{action.label} refused: ") or message == action.message.format(
        name=f"{batch.name} (copy)" if action.creates else batch.name
    )


@pytest.mark.django_db
@BY_ACTION
def test_the_web_asks_for_the_actions_level(client, owner, colleague, action):
    batch = prepared(owner, action)
    share(batch, colleague, Level.VIEW)
    client.force_login(colleague)
    row = BatchRow(batch, {"view"}, among=DETAIL_ACTIONS)
    if action.level == Level.VIEW:
        assert client.post(f"/batches/{batch.pk}/{action.name}").status_code == 302
    else:
        assert action.name not in row.actions
        assert client.post(f"/batches/{batch.pk}/{action.name}").status_code == 403


# --- the admin ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_offers_exactly_the_tables_actions(admin_user):
    request = RequestFactory().get("/admin/batches/jobbatch/")
    request.user = admin_user
    offered = admin.site._registry[JobBatch].get_actions(request)
    assert set(offered) - {"delete_selected"} == {f"{name}_batches" for name in NAMES}
    for action in ACTIONS:
        assert offered[f"{action.name}_batches"][2] == action.admin_description
        assert action.admin_description.endswith("the selected batches")


@pytest.mark.django_db
@BY_ACTION
def test_the_admin_runs_each_action(admin_client, admin_user, action, django_capture_on_commit_callbacks):
    batch = prepared(admin_user, action)
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(
            reverse("admin:batches_jobbatch_changelist"),
            {"action": f"{action.name}_batches", "_selected_action": [batch.pk], "confirmed": "yes"},
            follow=True,
        )
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == f"{action.done}: 1 batch(es)." or message.startswith("Refused — ")


# --- nothing else declares actions -----------------------------------------------------------


def _named(node: ast.AST, names: set[str]) -> str | None:
    """The action a node names: the string itself, or a call's first argument."""
    if isinstance(node, ast.Constant) and node.value in names:
        return node.value
    if isinstance(node, ast.Call) and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and first.value in names:
            return first.value
    return None


def declarations(source: str, names: set[str]) -> list[str]:
    """Where a module lists action names itself.

    A list, tuple, set or dict's keys holding an action's name, or calls made
    with two of them (`[_admin_action("start", …), _admin_action("pause", …)]`);
    a comparison with one (`action == "duplicate"`); two statements of one
    body calling with different ones (`start = route("start")`, `pause =
    route("pause")`). A single call with one name, as a model method's
    `self._locked("start")`, is a use, not a declaration.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict | ast.Compare):
            if isinstance(node, ast.Dict):
                elements = [key for key in node.keys if key is not None]
            elif isinstance(node, ast.Compare):
                elements = [node.left, *node.comparators]
            else:
                elements = node.elts
            constants = [e.value for e in elements if isinstance(e, ast.Constant) and e.value in names]
            called = {_named(e, names) for e in elements if isinstance(e, ast.Call)} - {None}
            if constants or len(called) > 1:
                found.append(f"line {node.lineno}: {', '.join(constants or sorted(called))}")
        for body in (getattr(node, field, None) for field in ("body", "orelse")):
            if not isinstance(body, list):
                continue
            called = {
                _named(statement.value, names)
                for statement in body
                if isinstance(statement, ast.Assign | ast.Expr)
            } - {None}
            if len(called) > 1:
                found.append(f"line {body[0].lineno}: {', '.join(sorted(called))}")
    return found


def test_no_module_of_batches_but_the_table_lists_actions():
    offenders = {}
    for path in sorted((ROOT / "batches").rglob("*.py")):
        if path.name == "actions.py" or "migrations" in path.parts:
            continue
        found = declarations(path.read_text(), set(NAMES))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_no_template_picks_an_action_by_name():
    template_dirs = [ROOT / "batches" / "templates", ROOT / "templates"]
    pattern = re.compile(r"""action(?:\.name)?\s*==\s*['"](""" + "|".join(NAMES) + """)['"]""")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for directory in template_dirs
        for path in sorted(directory.rglob("*.html"))
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('ACTIONS = {"start": 1, "pause": 2}', ["line 1: start, pause"]),
        ('LIST = ("start", "duplicate")', ["line 1: start, duplicate"]),
        ('if action == "duplicate":\n    pass', ["line 1: duplicate"]),
        ('kinds = {"start", "stop"}', ["line 1: start"]),
        ('batch = self._locked("start")', []),
        ('raise InvalidTransition("retry", status)', []),
        ('EDITS = {"delete": 1, "set_priority": 2}', []),
        (
            'actions = [admin_action("start", "Started"), admin_action("pause", "Paused")]',
            ["line 1: pause, start"],
        ),
        ('class V:\n    start = route("start")\n    pause = route("pause")', ["line 2: pause, start"]),
        ('def start(self):\n    batch = self._locked("start")\n    batch.go("start")', []),
    ],
)
def test_the_scan_finds_a_hand_written_list_of_actions(source, expected):
    assert declarations(source, {"start", "pause", "duplicate", "retry"}) == expected
