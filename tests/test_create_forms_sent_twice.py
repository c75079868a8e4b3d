"""A "New batch" or "New template" form sent twice (a double click) makes one object.

Each page carries a one-time token; the second post of the same token is sent to
what the first one made.
"""

import re

import pytest

from batches.models import JobBatch
from templates_app.models import BatchTemplate
from tests.test_web_new_batch import form_data
from tests.test_web_new_batch_from_scratch import scratch
from tests.test_web_template_editor import editor
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db


def token_on(client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'<input type="hidden" name="form_token" value="([^"]+)">', html).group(1)


def template_data(client, **fields) -> dict:
    data = editor(client, "/templates/new")
    data.update({"name": "Poetry analysis", "criterion-0-name": "Close reading", "criterion-0-points": "30"})
    return {**data, "op": "save", "form_token": token_on(client, "/templates/new"), **fields}


def test_new_batch_sent_twice_with_one_token_makes_one_batch(client, owner, essay_template):
    client.force_login(owner)
    data = {**form_data(essay_template), "form_token": token_on(client, "/batches/new")}

    first = client.post("/batches/new", data)
    second = client.post("/batches/new", data)

    batch = JobBatch.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/batches/{batch.pk}/documents"
    assert messages_of(client.get(second["Location"])) == [
        f"Created “{batch.name}”. Now add the documents to grade.",
        "This form was already sent: here is the batch it made.",
    ]


def test_a_batch_from_scratch_sent_twice_makes_one_batch(client, owner):
    client.force_login(owner)
    data = {**scratch(), "form_token": token_on(client, "/batches/new/scratch")}

    first = client.post("/batches/new/scratch", data)
    second = client.post("/batches/new/scratch", data)

    assert JobBatch.objects.count() == 1
    assert first["Location"] == second["Location"] == f"/batches/{JobBatch.objects.get().pk}/documents"


def test_new_template_sent_twice_with_one_token_makes_one_template(client, owner):
    client.force_login(owner)
    data = template_data(client)

    first = client.post("/templates/new", data)
    second = client.post("/templates/new", data)

    created = BatchTemplate.objects.get(name="Poetry analysis")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/templates/{created.pk}"


def test_opening_the_form_again_makes_a_second_batch_on_purpose(client, owner, essay_template):
    client.force_login(owner)
    tokens = [token_on(client, "/batches/new") for _ in range(2)]

    for token in tokens:
        client.post("/batches/new", {**form_data(essay_template), "form_token": token})

    assert tokens[0] != tokens[1]
    assert JobBatch.objects.count() == 2


def test_a_refused_post_keeps_its_token_for_the_corrected_one(client, owner, essay_template):
    client.force_login(owner)
    token = token_on(client, "/batches/new")

    refused = client.post("/batches/new", {**form_data(essay_template, priority="99"), "form_token": token})
    fixed = client.post("/batches/new", {**form_data(essay_template), "form_token": token})

    assert refused.status_code == 400 and f'value="{token}"' in refused.content.decode()
    assert fixed.status_code == 302 and JobBatch.objects.count() == 1


def test_a_token_someone_else_used_does_not_lead_to_their_batch(client, owner, colleague, essay_template):
    client.force_login(owner)
    token = token_on(client, "/batches/new")
    client.post("/batches/new", {**form_data(essay_template), "form_token": token})
    client.force_login(colleague)

    response = client.post("/batches/new", {**form_data(essay_template), "form_token": token})

    theirs = JobBatch.objects.get(owner=colleague)
    assert response["Location"] == f"/batches/{theirs.pk}/documents"
    assert JobBatch.objects.count() == 2


def test_a_post_without_a_token_still_creates(client, owner, essay_template):
    client.force_login(owner)

    client.post("/batches/new", form_data(essay_template))
    client.post("/batches/new", form_data(essay_template))

    assert JobBatch.objects.count() == 2
