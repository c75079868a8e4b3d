"""A connection without a batch API is not offered an economy price that cannot be had."""

from datetime import timedelta

import pytest
from django.utils import timezone

from grading.estimate import estimate_batch
from tests.api_support import client_for
from tests.conftest import make_batch
from tests.support.engine import OPENAI

pytestmark = pytest.mark.django_db

LOCAL = {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}


@pytest.fixture
def local_batch(owner, settings):
    settings.PROVIDERS = LOCAL
    return make_batch(
        owner,
        jobs=2,
        settings={"provider": "local", "model": "llama3.1:8b"},
        deadline=timezone.now() + timedelta(days=3),
    )


def test_the_estimate_says_economy_is_not_available_on_a_connection_without_a_batch_api(local_batch):
    delivery = estimate_batch(local_batch)["delivery"]

    assert delivery["economy_available"] is False
    assert delivery["chosen"] == "realtime"


def test_the_api_estimate_says_so_too(owner, local_batch):
    delivery = client_for(owner).get(f"/api/batches/{local_batch.pk}/estimate").json()["delivery"]

    assert delivery["economy_available"] is False


def test_the_batch_page_shows_no_economy_price_for_a_connection_without_a_batch_api(
    client, owner, local_batch
):
    client.force_login(owner)

    page = client.get(f"/batches/{local_batch.pk}").content.decode()

    assert "Economy cost" in page
    assert "not offered by local" in page
    assert "provider batch, within 24 h" not in page


def test_a_connection_with_a_batch_api_still_shows_its_economy_price(client, owner, settings, standin):
    settings.OPENAI_BATCH_API = True
    batch = make_batch(owner, jobs=2, settings=OPENAI, deadline=timezone.now() + timedelta(days=3))
    client.force_login(owner)

    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert estimate_batch(batch)["delivery"]["economy_available"] is True
    assert "provider batch, within 24 h" in page
