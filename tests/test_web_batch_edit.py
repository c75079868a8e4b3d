import pytest

from batches.models import BatchStatus
from tests.conftest import set_status
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db


def details(**overrides) -> dict:
    data = {
        "part": "details",
        "name": "Renamed",
        "description": "",
        "priority": "9",
        "tags": "a, b",
        "deadline": "",
    }
    data.update(overrides)
    return data


def settings_form(**overrides) -> dict:
    data = {
        "part": "settings",
        "provider": "builtin",
        "model": "builtin-v1",
        "compare_models": "",
        "temperature": "0.0",
        "max_output_tokens": "1024",
        "instructions": "",
        "max_attempts": "3",
        "concurrency": "16",
    }
    data.update(overrides)
    return data


def test_details_change_even_while_the_batch_runs(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING, "queued")
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/edit", details())
    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.name, batch.priority, batch.tags) == ("Renamed", 9, ["a", "b"])
    assert batch.status == BatchStatus.PROCESSING


def test_the_settings_form_shows_the_effective_values_of_a_draft(client, owner, batch):
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/edit").content.decode()
    assert 'name="part" value="settings"' in html
    assert 'name="concurrency" value="16"' in html


def test_only_settings_that_differ_from_the_template_are_stored(client, owner, batch):
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/edit", settings_form(temperature="0.4", instructions="Be strict.")
    )
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.settings == {"temperature": 0.4, "instructions": "Be strict."}
    client.post(f"/batches/{batch.pk}/edit", settings_form(temperature="0.0", instructions="Be strict."))
    batch.refresh_from_db()
    assert batch.settings == {"instructions": "Be strict."}


def test_settings_are_not_offered_while_the_batch_runs_and_a_forced_post_is_refused(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING, "queued")
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/edit").content.decode()
    assert 'value="settings"' not in html
    assert "Pause it first." in html
    response = client.post(f"/batches/{batch.pk}/edit", settings_form(temperature="1"))
    assert "Not saved: Settings can be changed only while the batch is a draft or paused." in messages_of(
        response
    )
    batch.refresh_from_db()
    assert batch.settings == {}


def test_bad_values_are_shown_beside_their_fields(client, owner, batch):
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/edit", details(priority="12", name=""))
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_priority_error"' in html and 'id="id_name_error"' in html
    response = client.post(f"/batches/{batch.pk}/edit", settings_form(temperature="3"))
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 2." in response.content.decode()
    batch.refresh_from_db()
    assert batch.name == "Essays" and batch.settings == {}


def test_an_unknown_model_for_the_provider_comes_back_on_its_field(client, owner, batch):
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/edit", settings_form(compare_models=", ".join(f"m{n}" for n in range(11)))
    )
    assert response.status_code == 400
    assert 'id="id_compare_models_error"' in response.content.decode()


def test_an_archived_batch_cannot_be_edited(client, owner, batch):
    set_status(batch, BatchStatus.ARCHIVED, "completed")
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/edit")
    assert response["Location"] == f"/batches/{batch.pk}"
    assert "An archived batch cannot be changed." in messages_of(response)[0]


def test_a_viewer_gets_403_and_a_stranger_404(client, owner, colleague, stranger, batch):
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert client.get(f"/batches/{batch.pk}/edit").status_code == 403
    assert client.post(f"/batches/{batch.pk}/edit", details()).status_code == 403
    client.force_login(stranger)
    assert client.post(f"/batches/{batch.pk}/edit", details()).status_code == 404
    batch.refresh_from_db()
    assert batch.name == "Essays"


def test_an_unknown_form_part_is_a_bad_request(client, owner, batch):
    client.force_login(owner)
    assert client.post(f"/batches/{batch.pk}/edit", {"part": "status"}).status_code == 400
