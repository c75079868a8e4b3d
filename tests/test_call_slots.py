"""A capped provider's calls are counted by slots that runners hold under a lease."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import grading.runner
from grading.claims import hold_slots, release_slots
from grading.models import CallSlot, GradingResult
from grading.runner import CallSlots, NotStarted, Runner
from tests.support.engine import OPENAI, processing, started_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db


def holders() -> dict[str, int]:
    held: dict[str, int] = {}
    for holder in CallSlot.objects.exclude(holder="").values_list("holder", flat=True):
        held[holder] = held.get(holder, 0) + 1
    return held


def test_claimants_together_never_hold_more_slots_than_the_cap():
    assert hold_slots("a", "openai", cap=4, want=3) == 3
    assert hold_slots("b", "openai", cap=4, want=3) == 1
    assert hold_slots("c", "openai", cap=4, want=3) == 0

    assert holders() == {"a": 3, "b": 1}


def test_slots_given_back_go_to_the_next_claimant_who_asks():
    hold_slots("a", "openai", cap=4, want=4)

    assert hold_slots("a", "openai", cap=4, want=1) == 1
    assert hold_slots("b", "openai", cap=4, want=4) == 3
    assert release_slots("a") == 1
    assert hold_slots("b", "openai", cap=4, want=4) == 4
    assert holders() == {"b": 4}


def test_a_renewal_keeps_the_same_slots_and_moves_their_lease():
    now = timezone.now()
    hold_slots("a", "openai", cap=3, want=2, now=now, lease_s=10)
    before = set(CallSlot.objects.filter(holder="a").values_list("number", flat=True))

    assert hold_slots("a", "openai", cap=3, want=2, now=now + timedelta(seconds=5), lease_s=10) == 2

    assert set(CallSlot.objects.filter(holder="a").values_list("number", flat=True)) == before
    leases = set(CallSlot.objects.filter(holder="a").values_list("lease_expires_at", flat=True))
    assert leases == {now + timedelta(seconds=15)}


def test_the_slots_of_a_runner_that_stopped_renewing_are_taken_over_and_never_held_twice():
    now = timezone.now()
    hold_slots("dead", "openai", cap=2, want=2, now=now, lease_s=5)

    assert hold_slots("alive", "openai", cap=2, want=2, now=now + timedelta(seconds=4)) == 0
    assert hold_slots("alive", "openai", cap=2, want=2, now=now + timedelta(seconds=6)) == 2
    # The first holder wakes up: its renewal finds the slots gone.
    assert hold_slots("dead", "openai", cap=2, want=2, now=now + timedelta(seconds=7)) == 0
    assert holders() == {"alive": 2}


def test_a_lowered_cap_takes_back_the_slots_beyond_it():
    hold_slots("a", "openai", cap=4, want=4)

    assert hold_slots("a", "openai", cap=2, want=4) == 2
    assert set(CallSlot.objects.filter(holder="a").values_list("number", flat=True)) == {0, 1}


def test_each_provider_has_its_own_slots():
    assert hold_slots("a", "openai", cap=1, want=1) == 1
    assert hold_slots("a", "other", cap=1, want=1) == 1
    assert hold_slots("b", "openai", cap=1, want=1) == 0


def _hold_concurrently(claimant: str, barrier: threading.Barrier, results: dict) -> None:
    try:
        barrier.wait(timeout=10)
        results[claimant] = hold_slots(claimant, "openai", cap=10, want=3)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claimants_asking_at_the_same_moment_share_the_cap_without_overlap():
    results: dict[str, int] = {}
    barrier = threading.Barrier(6)
    threads = [
        threading.Thread(target=_hold_concurrently, args=(f"runner-{index}", barrier, results))
        for index in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(results.values()) == 10
    assert holders() == {name: count for name, count in results.items() if count}


def test_a_call_waits_for_a_free_slot_and_a_stopped_runner_lets_waiting_calls_go():
    slots = CallSlots("openai", cap=1)
    slots.update(held=1, target=1, good_until=float("inf"), now=0.0, renew_every=1.0)
    entered = threading.Event()
    outcome: list[str] = []

    def second_call() -> None:
        try:
            with slots.call():
                outcome.append("called")
        except NotStarted:
            outcome.append("not started")
        entered.set()

    with slots.call():
        waiting = threading.Thread(target=second_call)
        waiting.start()
        assert not entered.wait(timeout=0.3)
        slots.close()
    waiting.join(timeout=5)

    assert outcome == ["not started"]


def test_a_call_does_not_start_on_a_lapsed_lease_until_the_slots_are_renewed():
    slots = CallSlots("openai", cap=1)
    slots.update(held=1, target=1, good_until=0.0, now=0.0, renew_every=1.0)
    entered = threading.Event()

    def call() -> None:
        with slots.call():
            entered.set()

    waiting = threading.Thread(target=call)
    waiting.start()
    assert not entered.wait(timeout=0.3)
    slots.update(held=1, target=1, good_until=float("inf"), now=0.0, renew_every=1.0)
    assert entered.wait(timeout=5)
    waiting.join(timeout=5)
    assert slots.in_use == 0


def test_slots_about_to_be_given_back_take_no_new_call_while_the_database_is_asked():
    # Holding 3 with 2 calls in flight, the fair share drops to 1 (a node joined): the
    # runner keeps the 2 in use, and from that moment a third call waits, so the slot
    # given back is never in use here while another node takes it.
    slots = CallSlots("openai", cap=3)
    slots.update(held=3, target=3, good_until=float("inf"), now=0.0, renew_every=1.0)
    first, second = slots.call(), slots.call()
    first.__enter__(), second.__enter__()
    entered = threading.Event()

    def third_call() -> None:
        with slots.call():
            entered.set()

    assert slots.keep(1) == 2
    waiting = threading.Thread(target=third_call)
    waiting.start()
    assert not entered.wait(timeout=0.3)
    first.__exit__(None, None, None)
    assert entered.wait(timeout=5)
    waiting.join(timeout=5)
    second.__exit__(None, None, None)
    assert slots.in_use == 0


def test_a_runner_keeps_jobs_ready_beyond_its_slots_and_calls_within_them(owner, monkeypatch, settings):
    # Through the settings fixture, not @override_settings: the two together leaked the
    # decorator's value into every later test (the fixture restores what it saw last).
    settings.OPENAI_MAX_CONCURRENCY = 4
    claims: list[tuple[dict, int]] = []
    claim = grading.runner.claim_jobs

    def recording_claim(limit, token, **options):
        room = dict(options["share"].room)
        work = claim(limit, token, **options)
        claims.append((room, len(work)))
        return work

    monkeypatch.setattr(grading.runner, "claim_jobs", recording_claim)
    batch = started_batch(owner, jobs=12, settings={**OPENAI, **processing(concurrency=50)})

    with LLMStandin(latency_s=0.05, max_concurrency=4, over_cap="record") as server:
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        report = Runner(threads=16).run()
        stats = server.stats()

    assert report.completed == 12
    assert GradingResult.objects.filter(job__batch=batch).count() == 12
    # It holds its 4 slots before the first claim, which takes 4 to call and 2 ready (other
    # capped providers, which have no jobs here, have room of their own).
    (room, claimed) = claims[0]
    assert (room["openai"], claimed) == (6, 6)
    assert stats["peak_concurrency"] <= 4
    assert stats["concurrency_violations"] == 0
    assert holders() == {}
