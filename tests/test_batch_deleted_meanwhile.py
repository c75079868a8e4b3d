"""A batch deleted by another request while this one acts on it: a 404 or "already deleted", never a 500.

Delete clicked twice, or a colleague's action arriving as the owner deletes:
the request has read the batch, and by the time it locks the row the row is
gone. Here the other request is the batch really deleted at that moment.
"""

import pytest

from batches import api, views
from batches.models import JobBatch
from core.permissions import Level, share
from tests.api_support import client_for
from tests.conftest import make_batch, set_status
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(owner):
    return set_status(make_batch(owner, jobs=2, name="Week 4"), "completed", "completed")


@pytest.fixture
def deleted_after_the_read(monkeypatch):
    """The batch is deleted by another request just after this request has read it."""

    def web(batch):
        read = views.access_to

        def then_deleted(user, seen):
            access = read(user, seen)
            JobBatch.objects.filter(pk=batch.pk).delete()
            return access

        monkeypatch.setattr(views, "access_to", then_deleted)

    def through_the_api(batch):
        read = api.JobBatchViewSet.get_object

        def then_deleted(self):
            seen = read(self)
            JobBatch.objects.filter(pk=batch.pk).delete()
            return seen

        monkeypatch.setattr(api.JobBatchViewSet, "get_object", then_deleted)

    return {"web": web, "api": through_the_api}


def test_deleting_a_batch_deleted_meanwhile_says_it_is_already_deleted(
    client, owner, finished, deleted_after_the_read
):
    deleted_after_the_read["web"](finished)
    client.force_login(owner)

    response = client.post(f"/batches/{finished.pk}/delete")

    assert response.status_code == 302 and response["Location"] == "/batches"
    assert messages_of(response) == ["“Week 4” was already deleted."]


def test_an_action_on_a_batch_deleted_meanwhile_is_the_not_found_page(
    client, owner, colleague, finished, deleted_after_the_read
):
    share(finished, colleague, Level.CHANGE)
    deleted_after_the_read["web"](finished)
    client.force_login(colleague)

    response = client.post(f"/batches/{finished.pk}/archive")

    assert response.status_code == 404
    assert "All batches" in response.content.decode()


def test_the_api_answers_404_for_a_batch_deleted_meanwhile(owner, finished, deleted_after_the_read):
    deleted_after_the_read["api"](finished)

    response = client_for(owner).delete(f"/api/batches/{finished.pk}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_api_action_on_a_batch_deleted_meanwhile_is_a_404(owner, finished, deleted_after_the_read):
    deleted_after_the_read["api"](finished)

    response = client_for(owner).post(f"/api/batches/{finished.pk}/archive")

    assert response.status_code == 404
    assert "deleted" in response.json()["detail"]
