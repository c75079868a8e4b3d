import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.models import BatchStatus
from tests.conftest import make_batch, set_status
from tests.web_support import share_for_viewing

pytestmark = pytest.mark.django_db


def names_in(response) -> list[str]:
    return re.findall(
        r'class="batch-link" href="/batches/\d+"><bdi>([^<]+)</bdi></a>', response.content.decode()
    )


def row_of(response, batch) -> str:
    html = response.content.decode()
    match = re.search(rf'<tr id="batch-row-{batch.pk}".*?</tr>', html, re.S)
    assert match, f"no row for batch {batch.pk}"
    return match.group(0)


def test_the_list_holds_the_users_own_and_shared_batches_and_nothing_else(client, owner, colleague, stranger):
    mine = make_batch(owner, name="Mine", jobs=0)
    shared = make_batch(stranger, name="Shared with me", jobs=0)
    make_batch(stranger, name="Not mine", jobs=0)
    share_for_viewing(shared, owner)
    client.force_login(owner)
    response = client.get("/batches")
    assert response.status_code == 200
    assert sorted(names_in(response)) == sorted([mine.name, shared.name])


def test_a_user_without_batches_sees_what_to_do_first(client, stranger):
    client.force_login(stranger)
    html = client.get("/batches").content.decode()
    assert "No batches yet" in html
    assert 'href="/batches/new"' in html
    assert "Apply filters" not in html


def test_filters_by_several_statuses(client, owner):
    draft = make_batch(owner, name="A draft", jobs=0)
    paused = set_status(make_batch(owner, name="A paused one", jobs=0), BatchStatus.PAUSED)
    set_status(make_batch(owner, name="A failed one", jobs=0), BatchStatus.FAILED)
    client.force_login(owner)
    response = client.get("/batches?status=draft&status=paused")
    assert sorted(names_in(response)) == sorted([draft.name, paused.name])


def test_filters_by_priority_range_tags_and_search(client, owner):
    make_batch(owner, name="Low", priority=2, tags=["history"], jobs=0)
    high = make_batch(owner, name="High history", priority=8, tags=["history", "term-1"], jobs=0)
    make_batch(owner, name="High maths", priority=9, tags=["maths"], jobs=0)
    client.force_login(owner)
    assert names_in(client.get("/batches?priority_min=7&tags=history")) == [high.name]
    assert names_in(client.get("/batches?tags=history,term-1")) == [high.name]
    assert names_in(client.get("/batches?search=maths")) == ["High maths"]
    assert sorted(names_in(client.get("/batches?priority_max=2"))) == ["Low"]


def test_an_impossible_priority_range_is_explained_and_not_applied(client, owner):
    make_batch(owner, name="Any", jobs=0)
    client.force_login(owner)
    response = client.get("/batches?priority_min=9&priority_max=3")
    html = response.content.decode()
    assert "The highest priority must not be below the lowest." in html
    assert "These filters were not applied." in html
    assert names_in(response) == ["Any"]


def test_no_match_says_so_and_offers_to_clear_the_filters(client, owner):
    make_batch(owner, name="Any", jobs=0)
    client.force_login(owner)
    html = client.get("/batches?search=nothing-like-this").content.decode()
    assert "No batch matches these filters" in html


def test_filters_are_kept_across_pages(client, owner):
    for index in range(25):
        make_batch(owner, name=f"Tagged {index:02d}", tags=["keep"], jobs=0)
    make_batch(owner, name="Untagged", jobs=0)
    client.force_login(owner)
    first = client.get("/batches?tags=keep&status=draft")
    html = first.content.decode()
    assert len(names_in(first)) == 20
    next_link = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    assert "tags=keep" in next_link and "status=draft" in next_link and "page=2" in next_link
    second = client.get("/batches" + next_link)
    assert len(names_in(second)) == 5
    assert "Untagged" not in names_in(second)


def test_row_actions_follow_the_state(client, owner):
    draft = make_batch(owner, name="Draft", jobs=1)
    empty = make_batch(owner, name="Empty", jobs=0)
    running = set_status(make_batch(owner, name="Running", jobs=1), BatchStatus.PROCESSING, "queued")
    paused = set_status(make_batch(owner, name="Paused", jobs=1), BatchStatus.PAUSED, "completed")
    client.force_login(owner)
    response = client.get("/batches")
    assert f'action="/batches/{draft.pk}/start"' in row_of(response, draft)
    assert f'href="/batches/{draft.pk}/delete"' in row_of(response, draft)
    assert "/start" not in row_of(response, empty)
    assert f'action="/batches/{running.pk}/pause"' in row_of(response, running)
    assert "/delete" not in row_of(response, running)
    assert f'action="/batches/{paused.pk}/resume"' in row_of(response, paused)
    assert f'href="/batches/{paused.pk}/delete"' in row_of(response, paused)


def test_a_viewer_sees_no_actions_on_a_shared_batch(client, owner, colleague):
    batch = make_batch(owner, name="Shared draft", jobs=1)
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    row = row_of(client.get("/batches"), batch)
    assert "<form" not in row
    assert "/delete" not in row


def test_the_list_polls_only_while_a_listed_batch_is_active(client, owner):
    batch = make_batch(owner, name="Quiet", jobs=1)
    client.force_login(owner)
    assert "hx-trigger" not in client.get("/batches").content.decode()
    set_status(batch, BatchStatus.PROCESSING, "queued")
    html = client.get("/batches").content.decode()
    assert f'hx-get="/batches/live?id={batch.pk}&amp;' in html
    assert 'hx-trigger="every 2s"' in html


def test_the_live_rows_replace_themselves_and_stop_polling_when_nothing_is_active(client, owner):
    batch = set_status(make_batch(owner, name="Running", jobs=2), BatchStatus.PROCESSING, "queued")
    client.force_login(owner)
    html = client.get(f"/batches/live?id={batch.pk}&next=/batches").content.decode()
    assert f'<tr id="batch-row-{batch.pk}" hx-swap-oob="true">' in html
    assert "hx-trigger" in html
    set_status(batch, BatchStatus.COMPLETED, "completed")
    html = client.get(f"/batches/live?id={batch.pk}&next=/batches").content.decode()
    assert 'aria-valuenow="100"' in html
    assert "hx-trigger" not in html


def test_the_live_rows_never_show_a_batch_the_user_may_not_see(client, owner, stranger):
    hidden = set_status(make_batch(stranger, name="Hidden", jobs=1), BatchStatus.PROCESSING, "queued")
    client.force_login(owner)
    response = client.get(f"/batches/live?id={hidden.pk}")
    assert response.status_code == 200
    assert "Hidden" not in response.content.decode()


def test_the_live_rows_refuse_ids_that_are_not_numbers(client, owner):
    client.force_login(owner)
    assert client.get("/batches/live?id=abc").status_code == 400


def test_the_list_runs_the_same_number_of_queries_for_few_and_many_batches(client, owner, colleague):
    soon = timezone.now() + timedelta(days=1)
    for index in range(3):
        share_for_viewing(make_batch(colleague, name=f"Shared {index}", jobs=1), owner)
    client.force_login(owner)
    client.get("/batches")
    with CaptureQueriesContext(connection) as few:
        client.get("/batches")
    for index in range(12):
        share_for_viewing(make_batch(colleague, name=f"More {index}", jobs=1, deadline=soon), owner)
        set_status(make_batch(owner, name=f"Own {index}", jobs=1, deadline=soon), BatchStatus.PROCESSING)
    with CaptureQueriesContext(connection) as many:
        client.get("/batches")
    assert len(many) == len(few)


def test_the_filter_form_shows_back_what_was_asked(client, owner):
    make_batch(owner, name="Any", tags=["a"], jobs=0)
    client.force_login(owner)
    blank = client.get("/batches").content.decode()
    assert 'id="id_tags" dir="auto" value=""' in blank and "None" not in blank
    html = client.get("/batches?tags=a,b&search=word&status=draft&priority_min=2").content.decode()
    assert 'id="id_tags" dir="auto" value="a,b"' in html
    assert 'id="id_search" dir="auto" value="word"' in html
    assert 'value="draft" id="id_status_0" checked' in html
    assert 'id="id_priority_min" min="1" max="10" value="2"' in html


def test_the_list_sorts_as_asked_and_keeps_the_order_across_pages(client, owner):
    make_batch(owner, name="Low", priority=2, jobs=0)
    make_batch(owner, name="High", priority=9, jobs=0)
    make_batch(owner, name="Middle", priority=5, jobs=0)
    client.force_login(owner)
    assert names_in(client.get("/batches")) == ["Middle", "High", "Low"]
    assert names_in(client.get("/batches?ordering=-priority")) == ["High", "Middle", "Low"]
    html = client.get("/batches?ordering=name").content.decode()
    assert names_in(client.get("/batches?ordering=name")) == ["High", "Low", "Middle"]
    assert '<option value="name" selected>' in html
    assert "Select a valid choice" in client.get("/batches?ordering=owner__password").content.decode()
