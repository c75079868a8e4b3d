"""A batch's delivery: auto picks the half-price batch API only when the deadline allows it."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone

from batches.models import JobBatch
from grading.claims import claim_jobs
from grading.economy import decide
from grading.estimate import estimate_batch
from grading.models import GradingJob
from grading.statuses import Delivery
from tests.api_support import client_for
from tests.conftest import make_batch
from tests.support.engine import OPENAI

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_api(settings, standin):
    """The openai provider on a stand-in whose connection offers a batch API."""
    settings.OPENAI_BATCH_API = True
    return standin


def hours(count: float):
    return timezone.now() + timedelta(hours=count)


def test_auto_picks_economy_only_when_the_deadline_leaves_the_window_and_a_margin(batch_api):
    assert decide("auto", "openai", hours(31)).delivery == Delivery.ECONOMY
    late = decide("auto", "openai", hours(29))
    assert late.delivery == Delivery.REALTIME
    assert "less than 30 h away" in late.reason
    assert decide("auto", "openai", None).delivery == Delivery.REALTIME


def test_auto_keeps_real_time_for_a_connection_without_a_batch_api(settings, standin):
    settings.OPENAI_BATCH_API = False
    decision = decide("auto", "openai", hours(100))
    assert decision.delivery == Delivery.REALTIME
    assert decision.reason == "the openai connection has no batch API"
    assert decide("auto", "builtin", hours(100)).reason == "the builtin connection has no batch API"


def test_the_teachers_choice_is_kept_either_way(batch_api):
    assert decide("realtime", "openai", hours(100)).delivery == Delivery.REALTIME
    assert decide("economy", "openai", hours(10)).delivery == Delivery.ECONOMY
    # Within the margin the engine would move the jobs to real time at once anyway.
    assert decide("economy", "openai", hours(2)).reason == "the deadline is less than 6 h away"


def test_starting_a_batch_due_in_two_days_leaves_its_jobs_to_the_economy_engine(owner, batch_api):
    batch = make_batch(owner, jobs=3, settings=OPENAI, deadline=hours(48))
    batch.start_batch()

    assert set(GradingJob.objects.filter(batch=batch).values_list("delivery", flat=True)) == {"economy"}
    assert claim_jobs(10, "worker/1") == []
    assert not GradingJob.objects.claimable().exists()


def test_a_batch_due_tomorrow_is_graded_in_real_time(owner, batch_api):
    batch = make_batch(owner, jobs=2, settings=OPENAI, deadline=hours(20))
    batch.start_batch()

    assert set(GradingJob.objects.filter(batch=batch).values_list("delivery", flat=True)) == {"realtime"}
    assert len(claim_jobs(10, "worker/1")) == 2


def test_the_estimate_shows_both_prices_and_which_is_chosen_and_why(owner, batch_api, settings):
    settings.MODEL_PRICES = {}
    batch = make_batch(owner, jobs=4, settings=OPENAI, deadline=hours(72))

    figures = estimate_batch(batch)

    delivery = figures["delivery"]
    assert delivery["rule"] == "auto" and delivery["chosen"] == "economy"
    assert delivery["realtime_cost"] == figures["cost"] > 0
    assert delivery["economy_cost"] == pytest.approx(figures["cost"] * 0.5, abs=1e-6)
    assert "more than 30 h away" in delivery["reasons"][0]


def test_the_batch_page_shows_both_prices(client, owner, batch_api):
    batch = make_batch(owner, jobs=2, settings=OPENAI, deadline=hours(72))
    client.force_login(owner)

    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert "Real-time cost" in page and "Economy cost" in page
    assert 'data-delivery="economy"' in page


def test_economy_on_a_provider_without_a_batch_api_is_refused_at_the_start(owner):
    batch = make_batch(owner, jobs=1, settings={"processing": {"delivery": "economy"}})

    response = client_for(owner).post(f"/api/batches/{batch.pk}/start")

    assert response.status_code == 409
    assert "no batch API" in response.json()["detail"]
    assert JobBatch.objects.get(pk=batch.pk).status == "draft"


def test_the_api_takes_the_delivery_rule_and_refuses_an_unknown_one(owner, essay_template):
    api = client_for(owner)
    made = api.post(
        "/api/batches",
        {"name": "Cheap", "template": "academic-essay", "settings": {"processing": {"delivery": "economy"}}},
        format="json",
    )
    bad = api.post(
        "/api/batches",
        {"name": "Bad", "template": "academic-essay", "settings": {"processing": {"delivery": "cheap"}}},
        format="json",
    )

    assert made.status_code == 201
    assert made.json()["settings"]["processing"]["delivery"] == "economy"
    assert bad.status_code == 400
    assert "processing.delivery" in bad.json()["settings"]


def test_the_edit_page_changes_the_delivery_of_a_draft(client, owner):
    batch = make_batch(owner, jobs=1)
    client.force_login(owner)
    form = {
        "part": "settings",
        "provider": "builtin",
        "model": "builtin-v1",
        "compare_models": "",
        "temperature": "0.0",
        "max_output_tokens": "1024",
        "instructions": "",
        "max_attempts": "3",
        "concurrency": "16",
        "delivery": "realtime",
    }

    assert 'name="delivery"' in client.get(f"/batches/{batch.pk}/edit").content.decode()
    response = client.post(f"/batches/{batch.pk}/edit", form)

    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.settings["processing"]["delivery"] == "realtime"


def test_the_new_batch_page_offers_the_delivery(client, owner, essay_template):
    client.force_login(owner)
    page = client.get("/batches/new").content.decode()
    assert 'name="delivery"' in page and "Economy: the provider&#x27;s batch API" in page


def test_batches_made_before_economy_delivery_keep_real_time(owner):
    old = make_batch(owner, jobs=0, settings={"processing": {"auto_start": True}})
    chosen = make_batch(owner, jobs=0, settings={"processing": {"delivery": "economy"}})
    migration = import_module("batches.migrations.0009_existing_batches_keep_realtime_delivery")

    migration.keep_realtime(apps, None)

    old.refresh_from_db()
    chosen.refresh_from_db()
    assert old.settings["processing"] == {"auto_start": True, "delivery": "realtime"}
    assert chosen.settings["processing"] == {"delivery": "economy"}


def test_a_templates_processing_rules_set_the_delivery_of_its_batches(owner):
    api = client_for(owner)
    template = api.post(
        "/api/batch-templates",
        {
            "name": "Cheap essays",
            "category": "academic",
            "default_settings": {"rubric": {"criteria": [{"key": "ideas", "name": "Ideas", "points": 10}]}},
            "processing_rules": {"delivery": "realtime"},
        },
        format="json",
    )
    refused = api.post(
        "/api/batch-templates",
        {
            "name": "Odd",
            "category": "academic",
            "default_settings": {"rubric": {"criteria": [{"key": "ideas", "name": "Ideas", "points": 10}]}},
            "processing_rules": {"delivery": "tomorrow"},
        },
        format="json",
    )
    batch = api.post("/api/batches", {"name": "From it", "template": "cheap-essays"}, format="json")

    assert template.status_code == 201, template.json()
    assert refused.status_code == 400
    assert batch.json()["effective_settings"]["processing"]["delivery"] == "realtime"


def test_the_estimate_of_a_paused_batch_says_what_its_jobs_carry(owner, batch_api):
    batch = make_batch(owner, jobs=2, settings=OPENAI, deadline=hours(72))
    batch.start_batch()
    batch.pause_batch()
    GradingJob.objects.filter(batch=batch).update(delivery="realtime")  # the deadline drew near meanwhile

    delivery = estimate_batch(batch)["delivery"]

    assert delivery["chosen"] == "realtime"
    assert "decided when the batch started" in delivery["reasons"][0]
