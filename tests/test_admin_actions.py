import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from batches.models import BatchStatus, JobBatch
from grading.models import JobStatus
from tests.conftest import make_batch, set_status

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batches_jobbatch_changelist")


def run_action(client, action: str, batches: list[JobBatch]) -> list[str]:
    # "confirmed": the intermediate page's answer, for the actions that ask first (cancel).
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [batch.pk for batch in batches], "confirmed": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def mixed(admin_user):
    """A draft, a processing, a paused and a completed batch."""
    draft = make_batch(admin_user, name="draft one")
    processing = set_status(make_batch(admin_user, name="busy one"), "processing", JobStatus.QUEUED)
    paused = set_status(make_batch(admin_user, name="paused one"), "paused", JobStatus.QUEUED)
    completed = set_status(make_batch(admin_user, name="done one"), "completed", JobStatus.COMPLETED)
    return {"draft": draft, "processing": processing, "paused": paused, "completed": completed}


# action -> (the batches it may change, the status they reach)
EXPECTED = {
    "start_batches": ({"draft"}, "pending"),
    "pause_batches": ({"processing"}, "paused"),
    "resume_batches": ({"paused"}, "processing"),
    "cancel_batches": ({"draft", "processing", "paused"}, "cancelled"),
    "archive_batches": ({"completed"}, "archived"),
}


@pytest.mark.parametrize("action", EXPECTED)
def test_an_admin_action_changes_the_allowed_batches_and_reports_each_refusal(admin_client, mixed, action):
    allowed, target = EXPECTED[action]
    before = {name: batch.status for name, batch in mixed.items()}

    messages = run_action(admin_client, action, list(mixed.values()))

    for name, batch in mixed.items():
        batch.refresh_from_db()
        assert batch.status == (target if name in allowed else before[name])
    refusals = [m for m in messages if m.startswith("Refused")]
    assert len(refusals) == len(mixed) - len(allowed)
    for name in set(mixed) - allowed:
        assert any(mixed[name].name in refusal for refusal in refusals)


def test_the_retry_action_requeues_failed_batches_and_refuses_the_rest(admin_client, admin_user, mixed):
    failed = set_status(make_batch(admin_user, name="failed one"), "failed", JobStatus.FAILED)

    messages = run_action(admin_client, "retry_batches", [failed, mixed["draft"]])

    failed.refresh_from_db()
    assert failed.status == BatchStatus.PENDING
    assert any("draft one" in m and "Cannot retry a batch that is draft" in m for m in messages)


def test_the_duplicate_action_copies_every_selected_batch(admin_client, mixed):
    run_action(admin_client, "duplicate_batches", list(mixed.values()))

    copies = JobBatch.objects.filter(name__endswith="(copy)")
    assert copies.count() == 4
    assert set(copies.values_list("status", flat=True)) == {BatchStatus.DRAFT}


def test_the_batch_list_shows_progress_for_each_batch(admin_client, mixed):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert b"0/2 done" in response.content  # the draft
    assert b"2/2 done" in response.content  # the completed one


@pytest.mark.parametrize(
    "url",
    [
        "admin:batches_jobbatch_changelist",
        "admin:templates_app_batchtemplate_changelist",
        "admin:grading_gradingjob_changelist",
        "admin:grading_document_changelist",
        "admin:grading_gradingresult_changelist",
    ],
)
def test_every_admin_list_renders(admin_client, mixed, url):
    assert admin_client.get(reverse(url)).status_code == 200


def test_a_batch_change_page_shows_its_jobs_inline(admin_client, mixed):
    batch = mixed["draft"]

    response = admin_client.get(reverse("admin:batches_jobbatch_change", args=[batch.pk]))

    assert response.status_code == 200
    assert b"essay-0.txt" in response.content


def test_the_admin_refuses_to_delete_a_batch_with_work_in_flight(admin_client, mixed):
    busy = mixed["processing"]

    page = admin_client.get(reverse("admin:batches_jobbatch_delete", args=[busy.pk]))
    confirmed = admin_client.post(reverse("admin:batches_jobbatch_delete", args=[busy.pk]), {"post": "yes"})

    assert page.status_code == 403
    assert confirmed.status_code == 403
    assert JobBatch.objects.filter(pk=busy.pk).exists()


def delete_selected(client, batches: list[JobBatch]):
    return client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [b.pk for b in batches], "post": "yes"},
        follow=True,
    )


def test_deleting_a_selection_of_idle_batches_in_the_admin_deletes_them(admin_client, mixed):
    delete_selected(admin_client, [mixed["completed"], mixed["draft"]])

    assert not JobBatch.objects.filter(pk__in=[mixed["completed"].pk, mixed["draft"].pk]).exists()


def test_a_selection_holding_a_busy_batch_deletes_nothing(admin_client, mixed):
    response = delete_selected(admin_client, [mixed["completed"], mixed["processing"]])

    assert response.status_code == 403
    assert JobBatch.objects.filter(pk__in=[mixed["completed"].pk, mixed["processing"].pk]).count() == 2
