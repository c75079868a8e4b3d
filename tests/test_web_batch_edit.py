import re
from html.parser import HTMLParser

import pytest

from batches.models import BatchStatus
from tests.conftest import make_batch, prebuilt, set_status
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


# --- the settings form as a browser sends it back ------------------------------------------


class _FormReader(HTMLParser):
    """The fields one form of a page would submit untouched: inputs, checked boxes, selections, text."""

    def __init__(self, part: str):
        super().__init__()
        self.part, self.forms, self.current, self.select, self.textarea = part, [], None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.current = {}
            self.forms.append(self.current)
        elif self.current is None:
            return
        elif tag == "input" and attrs.get("type") not in ("checkbox", "radio", "submit"):
            self.current[attrs["name"]] = attrs.get("value", "")
        elif tag == "input" and "checked" in attrs:
            self.current[attrs["name"]] = attrs.get("value", "on")
        elif tag == "select":
            self.select = attrs["name"]
            self.current.setdefault(self.select, "")
        elif tag == "option" and self.select and "selected" in attrs:
            self.current[self.select] = attrs.get("value", "")
        elif tag == "textarea":
            self.textarea = attrs["name"]
            self.current[self.textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea and self.current is not None:
            self.current[self.textarea] += data.lstrip("\n")

    def form(self) -> dict[str, str]:
        return next(form for form in self.forms if form.get("part") == self.part)


def untouched(html: str, part: str = "settings") -> dict[str, str]:
    reader = _FormReader(part)
    reader.feed(html)
    return reader.form()


@pytest.mark.parametrize("slug", ["academic-essay", "business-report", "research-paper"])
def test_saving_the_settings_form_untouched_succeeds_and_stores_nothing(client, owner, slug):
    batch = make_batch(owner, prebuilt(slug), name="Seeded")
    client.force_login(owner)
    sent = untouched(client.get(f"/batches/{batch.pk}/edit").content.decode())
    # Every number starts filled in with what the batch gets (the template's, else the default).
    assert sent["max_output_tokens"] == str(batch.validated_settings().max_output_tokens)

    response = client.post(f"/batches/{batch.pk}/edit", sent)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert messages_of(response) == ["Saved the settings of “Seeded”."]
    batch.refresh_from_db()
    assert batch.settings == {}


def test_a_blank_setting_means_the_templates_value(client, owner, batch):
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/edit").content.decode()
    assert re.search(r'name="max_output_tokens"[^>]*placeholder="1024"', html)
    assert "Blank: the template&#x27;s value." in html

    sent = untouched(html)
    client.post(f"/batches/{batch.pk}/edit", {**sent, "max_output_tokens": "2000", "max_attempts": "5"})
    batch.refresh_from_db()
    assert batch.settings == {"max_output_tokens": 2000, "processing": {"max_attempts": 5}}

    response = client.post(f"/batches/{batch.pk}/edit", {**sent, "max_output_tokens": "", "max_attempts": ""})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.settings == {}
    assert batch.validated_settings().max_output_tokens == 1024
