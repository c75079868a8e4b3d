"""Bulk operations report, id by id, the batches the user may not see (not found) or not change (forbidden)."""

import pytest

from batches.models import BatchStatus, JobBatch
from core.permissions import Level, share
from tests.api_support import client_for
from tests.conftest import make_batch


@pytest.fixture
def batches(owner, colleague, stranger, essay_template) -> dict[str, JobBatch]:
    made = {
        "own": make_batch(colleague, essay_template, jobs=1, name="Colin's own"),
        "viewed": make_batch(owner, essay_template, jobs=1, name="Viewed"),
        "changed": make_batch(owner, essay_template, jobs=1, name="Changed"),
        "managed": make_batch(owner, essay_template, jobs=1, name="Managed"),
        "foreign": make_batch(stranger, essay_template, jobs=1, name="Stella's secret"),
    }
    share(made["viewed"], colleague, Level.VIEW)
    share(made["changed"], colleague, Level.CHANGE)
    share(made["managed"], colleague, Level.MANAGE)
    return made


def _bulk(user, action: str, ids: list[int], **extra) -> dict[int, dict]:
    response = client_for(user).post(
        "/api/batches/bulk-operations", {"action": action, "batch_ids": ids, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    return {row["id"]: row for row in response.json()["results"]}


def test_each_id_gets_its_own_outcome_by_what_the_user_may_do(colleague, batches):
    ids = [b.pk for b in batches.values()] + [999_999]

    outcomes = _bulk(colleague, "cancel", ids)

    assert outcomes[batches["own"].pk]["ok"] is True
    assert outcomes[batches["changed"].pk]["ok"] is True
    assert outcomes[batches["managed"].pk]["ok"] is True
    assert outcomes[batches["viewed"].pk]["code"] == "permission_denied"
    assert outcomes[batches["foreign"].pk]["code"] == "not_found"
    assert outcomes[999_999]["code"] == "not_found"
    # A batch one may not see and one that does not exist are indistinguishable.
    assert {k: v for k, v in outcomes[batches["foreign"].pk].items() if k != "id"} == {
        k: v for k, v in outcomes[999_999].items() if k != "id"
    }
    assert JobBatch.objects.get(pk=batches["viewed"].pk).status == BatchStatus.DRAFT
    assert JobBatch.objects.get(pk=batches["foreign"].pk).status == BatchStatus.DRAFT


def test_the_response_never_names_a_batch_the_user_may_not_see(colleague, batches):
    response = client_for(colleague).post(
        "/api/batches/bulk-operations",
        {"action": "cancel", "batch_ids": [batches["foreign"].pk]},
        format="json",
    )

    assert "secret" not in response.content.decode()
    assert "status" not in response.json()["results"][0]


def test_bulk_delete_is_refused_for_batches_the_user_does_not_own(colleague, batches):
    ids = [batches["own"].pk, batches["changed"].pk, batches["managed"].pk]

    outcomes = _bulk(colleague, "delete", ids)

    assert outcomes[batches["own"].pk]["ok"] is True
    for name in ("changed", "managed"):
        assert outcomes[batches[name].pk]["code"] == "permission_denied"
        assert "owner" in outcomes[batches[name].pk]["error"]
        assert JobBatch.objects.filter(pk=batches[name].pk).exists()


def test_bulk_tagging_follows_the_same_rules(colleague, batches):
    outcomes = _bulk(colleague, "add_tags", [batches["viewed"].pk, batches["changed"].pk], tags=["week-3"])

    assert outcomes[batches["viewed"].pk]["code"] == "permission_denied"
    assert outcomes[batches["changed"].pk]["ok"] is True
    assert JobBatch.objects.get(pk=batches["viewed"].pk).tags == []


def test_a_superuser_may_act_on_every_batch(superuser, batches):
    outcomes = _bulk(superuser, "set_priority", [b.pk for b in batches.values()], priority=9)

    assert all(outcome["ok"] for outcome in outcomes.values())


def test_anonymous_bulk_operations_get_401(batches):
    response = client_for(None).post(
        "/api/batches/bulk-operations", {"action": "cancel", "batch_ids": [batches["own"].pk]}, format="json"
    )

    assert response.status_code == 401
    assert JobBatch.objects.get(pk=batches["own"].pk).status == BatchStatus.DRAFT
