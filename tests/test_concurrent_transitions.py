import threading

import pytest
from django.db import connection

from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from tests.conftest import make_batch


def _race(batch_id: int, method: str, outcomes: list, barrier: threading.Barrier) -> None:
    try:
        batch = JobBatch.objects.get(pk=batch_id)
        barrier.wait(timeout=10)
        getattr(batch, method)()
        outcomes.append("ok")
    except InvalidTransition:
        outcomes.append("refused")
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["start_batch", "cancel_batch"])
def test_two_concurrent_calls_on_one_batch_let_exactly_one_succeed(owner, method):
    batch = make_batch(owner, jobs=3)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_race, args=(batch.pk, method, outcomes, barrier)) for _ in range(2)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["ok", "refused"]
    batch.refresh_from_db()
    assert batch.status in (BatchStatus.PENDING, BatchStatus.CANCELLED)
