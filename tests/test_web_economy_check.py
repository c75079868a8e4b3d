"""The new-batch, scratch and edit pages flag economy delivery on a connection without a batch API
as it is chosen, as the start would refuse it."""

import html

import pytest

from tests.conftest import make_batch, prebuilt

pytestmark = pytest.mark.django_db

NO_BATCH_API = "has no batch API on this server, so economy delivery cannot be used"
LOCAL = {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}


@pytest.fixture
def local(settings):
    settings.PROVIDERS = LOCAL


def answer(client, path: str, **choice) -> str:
    return html.unescape(client.get(path, choice).content.decode())


def test_economy_on_a_connection_without_a_batch_api_is_flagged_on_the_new_batch_page(client, owner, local):
    client.force_login(owner)
    template = prebuilt("academic-essay").pk

    flagged = answer(
        client,
        "/batches/new/provider-check",
        template=template,
        provider="local",
        model="llama3",
        delivery="economy",
    )
    auto = answer(
        client,
        "/batches/new/provider-check",
        template=template,
        provider="local",
        model="llama3",
        delivery="auto",
    )

    assert "The local provider " + NO_BATCH_API in flagged
    assert NO_BATCH_API not in auto


def test_economy_on_a_connection_without_a_batch_api_is_flagged_on_the_scratch_page(client, owner, local):
    client.force_login(owner)

    flagged = answer(
        client, "/batches/new/scratch/provider-check", provider="local", model="llama3", delivery="economy"
    )

    assert NO_BATCH_API in flagged


def test_economy_on_a_connection_without_a_batch_api_is_flagged_on_the_edit_page(client, owner, local):
    batch = make_batch(owner, jobs=1, settings={"provider": "local", "model": "llama3"})
    client.force_login(owner)

    flagged = answer(
        client,
        f"/batches/{batch.pk}/edit/provider-check",
        provider="local",
        model="llama3",
        delivery="economy",
    )

    assert NO_BATCH_API in flagged


def test_the_pages_send_the_delivery_with_their_check(client, owner, local):
    batch = make_batch(owner, jobs=1)
    client.force_login(owner)

    for path in ("/batches/new", "/batches/new/scratch", f"/batches/{batch.pk}/edit"):
        page = client.get(path).content.decode()
        assert "provider-check" in page
        assert "[name='delivery']" in page, path
