"""Bulk actions on the web list: tick rows (or the whole page, or every batch the filters match), then act.

The list's bar posts to /batches/bulk, which runs the API's bulk operation;
the count done and each refusal, named by batch, come back as messages.
Cancelling and deleting ask first, on a page naming the batches and the work
at stake.
"""

import pytest

from batches.models import BatchStatus, JobBatch
from grading.models import JobStatus
from tests.analytics_support import MODEL_A, add_job, add_result
from tests.api_support import share
from tests.conftest import make_batch, make_document, set_status
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db

URL = "/batches/bulk"


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def bulk(client, action, batches=(), follow=True, **fields):
    data = {"action": action, "batch": [batch.pk for batch in batches], **fields}
    return client.post(URL, data, follow=follow)


def statuses(*batches) -> list[str]:
    return [JobBatch.objects.get(pk=batch.pk).status for batch in batches]


def graded(batch, reviewed: int = 0) -> None:
    """Two graded jobs in the batch, `reviewed` of them reviewed by the owner."""
    for index in range(2):
        job = add_job(
            batch, make_document(batch.owner, f"graded-{index}.txt"), MODEL_A, JobStatus.COMPLETED, 100
        )
        result = add_result(job, 4, 3)
        if index < reviewed:
            result.record_review(batch.owner, 8, [], "Checked.")


# --- the list offers it ---------------------------------------------------------------


def test_every_row_has_a_box_that_belongs_to_the_bulk_form(signed_in, owner):
    batches = [make_batch(owner, name=f"Essay set {i}") for i in range(3)]
    page = signed_in.get("/batches").content.decode()
    assert '<form id="bulk-form" method="post" action="/batches/bulk"' in page
    for batch in batches:
        assert f'name="batch" value="{batch.pk}" form="bulk-form"' in page
        assert f'aria-label="Select “{batch.name}”"' in page
    assert "Select all on this page" in page
    assert "Select all 3 batches" in page
    for label in ("Start", "Pause", "Resume", "Cancel", "Archive", "Set priority", "Add tags", "Delete"):
        assert f">{label}</option>" in page


def test_the_bar_counts_every_batch_the_filters_match(signed_in, owner):
    for index in range(3):
        make_batch(owner, name=f"Tagged {index}", tags=["term-1"])
    make_batch(owner, name="Other")
    page = signed_in.get("/batches?tags=term-1").content.decode()
    assert "Select all 3 batches matching the filters" in page
    assert 'name="query" value="tags=term-1"' in page


# --- each action --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "before", "after", "message"),
    [
        ("start", BatchStatus.DRAFT, BatchStatus.PENDING, "Started 2 batches."),
        ("pause", BatchStatus.PROCESSING, BatchStatus.PAUSED, "Paused 2 batches."),
        ("resume", BatchStatus.PAUSED, BatchStatus.PROCESSING, "Resumed 2 batches."),
        ("archive", BatchStatus.COMPLETED, BatchStatus.ARCHIVED, "Archived 2 batches."),
    ],
)
def test_each_transition_runs_on_the_ticked_batches(
    signed_in, owner, action, before, after, message, django_capture_on_commit_callbacks
):
    ticked = [set_status(make_batch(owner, name=f"Essay set {i}"), before) for i in range(2)]
    untouched = set_status(make_batch(owner, name="Not ticked"), before)
    with django_capture_on_commit_callbacks(execute=False):
        response = bulk(signed_in, action, ticked)
    assert response.redirect_chain == [("/batches", 302)]
    assert messages_of(response) == [message]
    assert statuses(*ticked) == [after, after]
    assert statuses(untouched) == [before]


def test_setting_the_priority_of_ticked_batches(signed_in, owner):
    ticked = [make_batch(owner, name=f"Essay set {i}", priority=3) for i in range(2)]
    response = bulk(signed_in, "set_priority", ticked, priority="9")
    assert messages_of(response) == ["Set the priority of 2 batches."]
    assert [JobBatch.objects.get(pk=b.pk).priority for b in ticked] == [9, 9]


def test_adding_tags_keeps_the_tags_a_batch_had(signed_in, owner):
    batch = make_batch(owner, name="Essay set 1", tags=["essays"])
    response = bulk(signed_in, "add_tags", [batch], tags="term-1, graded")
    assert messages_of(response) == ["Added the tags to 1 batch."]
    assert JobBatch.objects.get(pk=batch.pk).tags == ["essays", "term-1", "graded"]


def test_select_all_on_this_page_works_without_a_script(signed_in, owner):
    # No box ticked: the page's rows come with "Select all on this page", as the form sends them.
    batches = [set_status(make_batch(owner, name=f"Essay set {i}"), BatchStatus.COMPLETED) for i in range(2)]
    data = {"action": "archive", "whole_page": "on", "page_batch": [b.pk for b in batches]}
    response = signed_in.post(URL, data, follow=True)
    assert messages_of(response) == ["Archived 2 batches."]
    assert statuses(*batches) == [BatchStatus.ARCHIVED] * 2


# --- every batch the filters match ----------------------------------------------------------


def test_all_matching_reaches_every_page_of_the_filtered_list(signed_in, owner):
    tagged = [
        set_status(make_batch(owner, name=f"Term 1 – {i}", jobs=0, tags=["term-1"]), BatchStatus.COMPLETED)
        for i in range(23)
    ]
    other = set_status(make_batch(owner, name="Term 2", jobs=0, tags=["term-2"]), BatchStatus.COMPLETED)
    page = signed_in.get("/batches?tags=term-1").content.decode()
    assert page.count('class="row-select"') == 20  # the filter spans two pages
    response = signed_in.post(
        URL, {"action": "archive", "matching": "on", "query": "tags=term-1"}, follow=True
    )
    assert response.redirect_chain == [("/batches?tags=term-1", 302)]
    assert messages_of(response) == ["Archived 23 batches."]
    assert set(statuses(*tagged)) == {BatchStatus.ARCHIVED}
    assert statuses(other) == [BatchStatus.COMPLETED]


def test_all_matching_never_reaches_batches_the_user_cannot_see(signed_in, owner, stranger):
    mine = make_batch(owner, name="Mine", tags=["term-1"])
    theirs = make_batch(stranger, name="Theirs", tags=["term-1"])
    response = signed_in.post(
        URL,
        {"action": "set_priority", "priority": "10", "matching": "on", "query": "tags=term-1"},
        follow=True,
    )
    assert messages_of(response) == ["Set the priority of 1 batch."]
    assert JobBatch.objects.get(pk=mine.pk).priority == 10
    assert JobBatch.objects.get(pk=theirs.pk).priority == 5


def test_all_matching_with_filters_that_are_not_valid_does_nothing(signed_in, owner):
    batch = set_status(make_batch(owner, name="Essay set 1"), BatchStatus.COMPLETED)
    response = signed_in.post(URL, {"action": "archive", "matching": "on", "query": "priority_min=eleven"})
    assert response.status_code == 400
    assert "The filters are not valid, so nothing was selected." in response.content.decode()
    assert statuses(batch) == [BatchStatus.COMPLETED]


# --- refusals, by name ------------------------------------------------------------------------


def test_a_refused_batch_is_named_with_its_reason_beside_the_count(signed_in, owner):
    running = set_status(make_batch(owner, name="Essay set 1"), BatchStatus.PROCESSING)
    done = set_status(make_batch(owner, name="Essay set 3"), BatchStatus.COMPLETED)
    response = bulk(signed_in, "pause", [running, done])
    assert messages_of(response) == [
        "Paused 1 of 2 batches.",
        "Essay set 3: cannot pause a batch that is completed.",
    ]
    assert statuses(running, done) == [BatchStatus.PAUSED, BatchStatus.COMPLETED]


def test_a_batch_of_someone_else_sent_by_a_forged_id_is_refused(signed_in, owner, stranger):
    mine = set_status(make_batch(owner, name="Mine"), BatchStatus.PROCESSING)
    theirs = set_status(make_batch(stranger, name="Stella's private set"), BatchStatus.PROCESSING)
    response = bulk(signed_in, "pause", [mine, theirs])
    assert messages_of(response) == [
        "Paused 1 of 2 batches.",
        f"Batch #{theirs.pk}: no such batch, or you may not view it.",
    ]
    assert "Stella's private set" not in response.content.decode()
    assert statuses(theirs) == [BatchStatus.PROCESSING]


def test_a_batch_shared_for_viewing_only_is_refused_by_name(client, owner, colleague):
    shared = set_status(make_batch(owner, name="Olivia's essays"), BatchStatus.PROCESSING)
    share(shared, colleague, "view")
    client.force_login(colleague)
    response = bulk(client, "pause", [shared])
    assert messages_of(response) == [
        "Paused 0 of 1 batch.",
        "Olivia's essays: you may view this batch but not change it.",
    ]
    assert statuses(shared) == [BatchStatus.PROCESSING]


# --- bad input ----------------------------------------------------------------------------------


def test_nothing_ticked_is_a_400_that_says_so(signed_in, owner):
    make_batch(owner)
    response = signed_in.post(URL, {"action": "pause"})
    assert response.status_code == 400
    assert "Nothing selected: tick one or more batches" in response.content.decode()


def test_an_edit_without_its_value_is_a_400_on_its_field_and_keeps_the_rows_ticked(signed_in, owner):
    batch = make_batch(owner, name="Essay set 1", priority=4)
    response = bulk(signed_in, "set_priority", [batch], follow=False)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Give a priority from 1 to 10 for “Set priority”." in page
    assert f'value="{batch.pk}" form="bulk-form" aria-label="Select “Essay set 1”" checked' in page
    assert JobBatch.objects.get(pk=batch.pk).priority == 4


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"action": "explode", "batch": ["1"]}, "Select a valid choice."),
        ({"action": "pause", "batch": ["one"]}, "Batch ids must be whole numbers."),
        ({"action": "set_priority", "batch": ["1"], "priority": "11"}, "less than or equal to 10"),
    ],
)
def test_bad_input_is_a_400_with_a_sentence(signed_in, owner, data, error):
    make_batch(owner)
    response = signed_in.post(URL, data)
    assert response.status_code == 400
    assert error in response.content.decode()


def test_a_get_is_refused(signed_in):
    assert signed_in.get(URL).status_code == 405


def test_signed_out_nothing_happens(client, owner):
    batch = set_status(make_batch(owner), BatchStatus.PROCESSING)
    response = client.post(URL, {"action": "pause", "batch": [batch.pk]})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert statuses(batch) == [BatchStatus.PROCESSING]


# --- cancel and delete ask first ------------------------------------------------------------


def test_cancelling_asks_first_naming_the_batches(signed_in, owner):
    batches = [set_status(make_batch(owner, name=f"Essay set {i}"), BatchStatus.PROCESSING) for i in (1, 2)]
    response = bulk(signed_in, "cancel", batches, follow=False)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Cancel 2 batches?" in page
    assert "Essay set 1" in page and "Essay set 2" in page
    assert "Jobs being graded right now finish and keep their grades" in page
    assert statuses(*batches) == [BatchStatus.PROCESSING] * 2
    for batch in batches:
        assert f'<input type="hidden" name="batch" value="{batch.pk}">' in page
    response = bulk(signed_in, "cancel", batches, confirmed="on")
    assert messages_of(response) == ["Cancelled 2 batches."]
    assert statuses(*batches) == [BatchStatus.CANCELLED] * 2


def test_deleting_asks_first_naming_the_graded_work_that_would_go(signed_in, owner):
    batch = set_status(make_batch(owner, name="Essay set 3", jobs=0), BatchStatus.COMPLETED)
    graded(batch, reviewed=1)
    empty = make_batch(owner, name="Empty draft", jobs=0)
    response = bulk(signed_in, "delete", [batch, empty], follow=False)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Delete 2 batches?" in page
    assert "2 graded jobs, 1 of them reviewed by a teacher" in page
    assert "Essay set 3" in page and "2 graded (1 reviewed)" in page
    assert "It cannot be undone." in page
    assert JobBatch.objects.filter(pk__in=[batch.pk, empty.pk]).count() == 2
    response = bulk(signed_in, "delete", [batch, empty], confirmed="on")
    assert messages_of(response) == ["Deleted 2 batches."]
    assert not JobBatch.objects.filter(pk__in=[batch.pk, empty.pk]).exists()


def test_the_confirmation_says_which_batches_will_be_refused(client, owner, colleague):
    own = make_batch(colleague, name="Colin's draft", jobs=0)
    shared = make_batch(owner, name="Olivia's set")
    share(shared, colleague, "view", "change")
    client.force_login(colleague)
    page = bulk(client, "delete", [own, shared], follow=False).content.decode()
    assert "Delete 1 batch?" in page
    assert "Will be refused: only its owner can delete it." in page
    response = bulk(client, "delete", [own, shared], confirmed="on")
    assert messages_of(response) == [
        "Deleted 1 of 2 batches.",
        "Olivia's set: only the batch's owner may delete it.",
    ]
    assert JobBatch.objects.filter(pk=shared.pk).exists()


def test_a_running_batch_is_not_deleted_in_bulk(signed_in, owner):
    running = set_status(make_batch(owner, name="Running set"), BatchStatus.PROCESSING, JobStatus.QUEUED)
    page = bulk(signed_in, "delete", [running], follow=False).content.decode()
    assert "Will be refused: jobs are queued or being graded" in page
    response = bulk(signed_in, "delete", [running], confirmed="on")
    assert messages_of(response)[0] == "Deleted 0 of 1 batch."
    assert "Running set: cannot delete a batch while jobs are queued or in flight" in messages_of(response)[1]
    assert JobBatch.objects.filter(pk=running.pk).exists()


def test_deleting_all_matching_asks_first_about_exactly_the_batches_it_found(signed_in, owner):
    tagged = [make_batch(owner, name=f"Old draft {i}", jobs=0, tags=["old"]) for i in range(22)]
    kept = make_batch(owner, name="Current draft", jobs=0)
    response = signed_in.post(URL, {"action": "delete", "matching": "on", "query": "tags=old"})
    page = response.content.decode()
    assert "Delete 22 batches?" in page
    assert all(f'<input type="hidden" name="batch" value="{batch.pk}">' in page for batch in tagged)
    assert "Current draft" not in page
    # The answer names the batches found when asking, not whatever matches by then.
    late = make_batch(owner, name="Old draft, made meanwhile", jobs=0, tags=["old"])
    data = {"action": "delete", "confirmed": "on", "query": "tags=old", "batch": [b.pk for b in tagged]}
    response = signed_in.post(URL, data, follow=True)
    assert messages_of(response) == ["Deleted 22 batches."]
    assert set(JobBatch.objects.values_list("pk", flat=True)) == {kept.pk, late.pk}


def test_more_batches_than_one_request_may_reach_is_refused_whole(signed_in, owner, monkeypatch):
    monkeypatch.setattr("batches.views_bulk.MAX_IDS", 2)
    batches = [
        set_status(make_batch(owner, name=f"Essay set {i}", jobs=0), BatchStatus.COMPLETED) for i in range(3)
    ]
    response = signed_in.post(URL, {"action": "archive", "matching": "on", "query": ""})
    assert response.status_code == 400
    assert "At most 2 batches at a time: narrow the filters, or tick fewer." in response.content.decode()
    assert set(statuses(*batches)) == {BatchStatus.COMPLETED}
