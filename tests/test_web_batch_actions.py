import pytest

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob
from tests.conftest import make_batch, prebuilt, set_status
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db


def test_the_owner_can_start_a_draft_from_its_page(client, owner, batch, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/batches/{batch.pk}/start")
    assert response.status_code == 302
    assert response["Location"] == f"/batches/{batch.pk}"
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PENDING
    assert "Started “Essays”" in messages_of(response)[0]


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        (BatchStatus.PROCESSING, "pause", BatchStatus.PAUSED),
        (BatchStatus.PENDING, "cancel", BatchStatus.CANCELLED),
        (BatchStatus.COMPLETED, "archive", BatchStatus.ARCHIVED),
    ],
)
def test_each_action_moves_the_batch_through_the_state_machine(client, owner, batch, start, action, end):
    set_status(batch, start)
    client.force_login(owner)
    client.post(f"/batches/{batch.pk}/{action}")
    batch.refresh_from_db()
    assert batch.status == end


def test_resume_and_retry_queue_work_again(client, owner, batch, django_capture_on_commit_callbacks):
    client.force_login(owner)
    set_status(batch, BatchStatus.PAUSED)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/batches/{batch.pk}/resume")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSING
    set_status(batch, BatchStatus.FAILED, "failed")
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/batches/{batch.pk}/retry")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PENDING
    assert set(batch.jobs.values_list("status", flat=True)) == {"queued"}


def test_an_action_from_the_list_returns_to_the_filtered_list(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING)
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/pause", {"next": "/batches?status=processing&page=1"})
    assert response["Location"] == "/batches?status=processing&page=1"


def test_a_next_pointing_elsewhere_is_ignored(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING)
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/pause", {"next": "https://evil.example/"})
    assert response["Location"] == f"/batches/{batch.pk}"


def test_a_refused_transition_is_a_message_on_the_page_and_changes_nothing(client, owner, batch):
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/pause", follow=True)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT
    assert response.status_code == 200
    assert "Pause refused: Cannot pause a batch that is draft." in response.content.decode()


def test_starting_an_empty_draft_is_refused_with_the_reason(client, owner):
    empty = make_batch(owner, jobs=0)
    client.force_login(owner)
    response = client.post(f"/batches/{empty.pk}/start", follow=True)
    assert "A batch needs at least one job to start." in response.content.decode()


def test_duplicating_opens_the_copy(client, owner, batch):
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/duplicate")
    copy = JobBatch.objects.exclude(pk=batch.pk).get()
    assert response["Location"] == f"/batches/{copy.pk}"
    assert copy.status == BatchStatus.DRAFT
    assert copy.jobs.count() == batch.jobs.count()


def test_duplicating_a_batch_whose_template_was_deleted_keeps_the_settings_it_graded_with(client, owner):
    # An archived batch's template may be deleted; a copy made afterwards must still have a rubric.
    mine = prebuilt().copy_for(owner, name="Lab reports")
    batch = make_batch(owner, mine, jobs=2, name="Spring labs", settings={"instructions": "Be kind."})
    batch.start_batch()
    graded_with = batch.validated_settings()
    set_status(batch, "archived", "completed")
    mine.delete()
    client.force_login(owner)

    client.post(f"/batches/{batch.pk}/duplicate")

    copy = JobBatch.objects.exclude(pk=batch.pk).get()
    assert copy.validated_settings().rubric == graded_with.rubric
    assert copy.validated_settings().instructions == "Be kind."
    assert "not valid" not in client.get(f"/batches/{copy.pk}").content.decode()


def test_a_viewer_is_refused_with_a_403_page_that_says_why(client, owner, colleague, batch):
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    response = client.post(f"/batches/{batch.pk}/start")
    assert response.status_code == 403
    assert "You can view this batch but not change it." in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT


def test_a_stranger_gets_404_for_every_action(client, stranger, batch):
    client.force_login(stranger)
    for action in ("start", "pause", "resume", "cancel", "retry", "archive", "duplicate", "delete"):
        assert client.post(f"/batches/{batch.pk}/{action}").status_code == 404
    assert client.get(f"/batches/{batch.pk}/delete").status_code == 404


def test_actions_only_answer_post(client, owner, batch):
    client.force_login(owner)
    assert client.get(f"/batches/{batch.pk}/start").status_code == 405


def test_delete_asks_for_confirmation_first(client, owner, batch):
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/delete")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Delete “<bdi>Essays</bdi>”?" in html
    assert "its 2 jobs" in html
    assert JobBatch.objects.filter(pk=batch.pk).exists()


def test_confirming_deletes_the_batch_and_returns_to_the_list(client, owner, batch):
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/delete")
    assert response["Location"] == "/batches"
    assert not JobBatch.objects.filter(pk=batch.pk).exists()
    assert "Deleted “Essays” and its 2 job(s)." in messages_of(response)


def test_deleting_a_batch_with_work_in_flight_is_refused(client, owner, batch):
    set_status(batch, BatchStatus.PAUSED, "queued")
    client.force_login(owner)
    page = client.get(f"/batches/{batch.pk}/delete").content.decode()
    assert "cannot be deleted now" in page
    response = client.post(f"/batches/{batch.pk}/delete", follow=True)
    assert (
        "Delete refused: Cannot delete a batch while jobs are queued or in flight"
        in response.content.decode()
    )
    assert JobBatch.objects.filter(pk=batch.pk).exists()


def test_a_viewer_cannot_delete(client, owner, colleague, batch):
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert client.get(f"/batches/{batch.pk}/delete").status_code == 403
    assert client.post(f"/batches/{batch.pk}/delete").status_code == 403
    assert GradingJob.objects.filter(batch=batch).count() == 2
