"""The job runner: claim jobs, grade them with many provider calls in flight, record each.

One runner lives inside one django-q2 task (or the `grade --inline` command). Its main
thread does all the database work — claims, records, lease renewal, reaping — and a
pool of threads does only provider calls. Threads rather than asyncio because the
providers and Django's ORM are synchronous; and keeping the database in one thread
means one connection per worker process however many calls are in flight, which
matters when two workers keep dozens of calls going against one PostgreSQL.

The runner knows nothing of batch lifecycles: it claims through
GradingJob.objects.claimable() and tells its caller (on_batch_touched) when a job of
a batch reached a final state, so the caller can finalise the batch, and
(on_progress, at most every progress_every_s per batch) when a batch's counts moved.
"""

import logging
import math
import os
import queue
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.utils import timezone

from grading import circuits, learnt_limits, wakeups
from grading.claims import (
    RUNNER_STALE_S,
    Blame,
    Outcome,
    Recorded,
    Share,
    Work,
    claim_jobs,
    hold_slots,
    live_runners,
    reap_expired_leases,
    record_outcomes,
    release_slots,
    renew_leases,
    runner_alive,
    runner_gone,
    snapshot,
    stopped_batches,
)
from grading.exemplars import ExemplarCache, for_document
from grading.limits import provider_limits, rule
from grading.models import GradingJob
from grading.providers import Grade, GradeRequest, Provider, ProviderError, available_providers, get_provider
from grading.schema import SettingsError, validate_settings

logger = logging.getLogger(__name__)

ProviderLookup = Callable[[str], Provider]
# A live runner refreshes its presence well within RUNNER_STALE_S: its death is
# seen within seconds, and the next claim takes its jobs over.
PRESENCE_EVERY_S = 1.0
# How often a runner looks for a provider down longer than PROVIDER_OUTAGE_PAUSE_AFTER.
OUTAGE_CHECK_S = 5.0
# Jobs a runner keeps claimed and ready beyond its call slots, as a share of the
# slots: a finished call is followed by the next at once, not after a round of
# recording and claiming, a round trip that took a good share of every call
# (README, Processing: Call slots).
READY_SHARE = 0.5
# How soon to ask again for slots another runner holds.
SLOT_RETRY_S = 0.1
# How long a runner counts the helpers it asked for before it sees them live.
PEERS_EXPECTED_S = 2.0
# The main thread records and claims in rounds of several jobs: a transaction
# costs about as much for eight jobs as for one (README, Processing: Many calls
# per process, has the figures). A finished job waits at most RECORD_WAIT_S for
# others to join it, and a claim waits until a provider has room for at least
# half the jobs kept ready, so a ready job is always there when a call ends.
RECORD_CHUNK = 16
RECORD_WAIT_S = 0.05
# Call slots are leased for much less than jobs, and a runner seen dead has its
# slots freed by the next claim. A runner uses its slots only while its last
# renewal is younger than SLOT_TRUST_S, well within RUNNER_STALE_S, so that a
# runner stalled long enough to be taken for dead no longer calls on them.
SLOT_LEASE_S = 10
SLOT_TRUST_S = RUNNER_STALE_S * 0.6
SLOT_RENEW_S = 1.0


@dataclass
class RunReport:
    completed: int = 0
    failed: int = 0
    requeued: int = 0
    discarded: int = 0
    cancelled: int = 0
    claims: int = 0
    # True when the runner stopped for its time budget with work still claimable.
    work_left: bool = False

    def add(self, recorded: Recorded) -> None:
        self.completed += recorded.completed
        self.failed += recorded.failed
        self.requeued += recorded.requeued
        self.discarded += recorded.discarded
        self.cancelled += recorded.cancelled


def claimant_id() -> str:
    """Who holds a claim: host, process and a random part, unique per runner."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class CallSlots:
    """The calls this runner may make at once to one capped provider: the slots it holds.

    The main thread sets how many slots it holds (after hold_slots) and until when
    their lease is good; pool threads take one for each call and wait when none is free.
    """

    def __init__(self, provider: str, cap: int):
        self.provider = provider
        self.cap = cap
        self.held = 0
        # How many this runner asked for last (its share of the cap): until it holds them all,
        # its calls are bound by slots it could not get, not by the cap.
        self.wanted = 0
        self.in_use = 0
        # After a refusal (429, 529): the most slots this runner uses. Each refusal says one
        # call too many was in flight, so one slot fewer is used at once (and given back),
        # until the database's learnt cap (grading.learnt_limits), cut meanwhile, is read again.
        self.ceiling: int | None = None
        self._good_until = 0.0
        self._closed = False
        self._changed = threading.Condition()
        # Main thread only: when to ask the database again.
        self.next_try = 0.0
        self.renew_at = 0.0

    def room(self, in_hand: int) -> int:
        """How many more jobs to claim: one per free slot, and some ready to follow."""
        return max(self.held + self._ready() - in_hand, 0)

    def claim_due(self, in_hand: int) -> bool:
        """True once there is room for half the ready jobs: claims come in rounds, never late."""
        room = self.room(in_hand)
        return room > 0 and room >= math.ceil(self._ready() / 2)

    def _ready(self) -> int:
        return math.ceil(self.held * READY_SHARE)

    def due(self, target: int, now: float) -> bool:
        if target == self.held:
            return self.held > 0 and now >= self.renew_at
        return now >= self.next_try

    def update(self, held: int, target: int, good_until: float, now: float, renew_every: float) -> None:
        with self._changed:
            self.held, self.wanted, self._good_until = held, target, good_until
            self._changed.notify_all()
        self.renew_at = now + renew_every
        self.next_try = now + SLOT_RETRY_S if held != target else now

    def keep(self, target: int) -> int:
        """How many slots to keep in the database: the target, or the calls in flight if more.

        Slots about to be given back stop counting here first, under the lock, so no call
        starts on a slot that another runner may take the moment it is given back.
        """
        with self._changed:
            keep = max(target, self.in_use)
            self.held = min(self.held, keep)
            return keep

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def refused(self) -> None:
        with self._changed:
            self.ceiling = max(min(self.ceiling or self.held, self.held) - 1, 1)
            self.next_try = 0.0

    def learnt(self, cap: int) -> None:
        """The learnt cap read from the database: a change covers the refusals counted so far."""
        with self._changed:
            if cap != self.cap:
                self.cap, self.ceiling = cap, None

    def target(self, share: int) -> int:
        """Slots to hold: the fair share, within the ceiling refusals set since the cap last changed."""
        return share if self.ceiling is None else min(share, self.ceiling)

    @contextmanager
    def call(self) -> Iterator[bool]:
        """Wait for a free slot and hold it for the call; says whether the call took the last one."""
        with self._changed:
            while not self._free():
                if self._closed:
                    raise NotStarted(f"The runner stopped before the call to {self.provider} could start.")
                # The lease can lapse while waiting; look again now and then.
                self._changed.wait(timeout=0.5)
            self.in_use += 1
            # Only a call at the runner's whole share shows the provider took the cap at once:
            # counting calls bound by slots not yet taken grew an unknown cap to twice the
            # provider's before its first refusal.
            crowded = self.in_use >= self._usable() and self.held >= self.wanted
        try:
            yield crowded
        finally:
            with self._changed:
                self.in_use -= 1
                self._changed.notify()

    def _free(self) -> bool:
        return not self._closed and self.in_use < self._usable() and time.monotonic() < self._good_until

    def _usable(self) -> int:
        return self.held if self.ceiling is None else min(self.held, self.ceiling)


class NotStarted(Exception):
    """The runner stopped while the job waited for a call slot; it is tried again."""


class Runner:
    """Claim → grade → record until nothing is left to claim (or the time budget ends).

    threads:      provider calls in flight at most in this process.
    linger_s:     when idle, how far ahead a retry or an expiring lease may be for the
                  runner to wait for it rather than exit (the scheduled reaper and the
                  next process_batch pick up anything later).
    budget_s:     stop claiming after this many seconds (a django-q2 task has a timeout).
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        lease_s: int | None = None,
        poll_s: float = 0.2,
        linger_s: float = 5.0,
        budget_s: float | None = None,
        on_batch_touched: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        progress_every_s: float = 2.0,
        provider_lookup: ProviderLookup = get_provider,
        scope: list[int] | None = None,
        peers_expected: int = 0,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.threads = threads or settings.RUNNER_THREADS
        self.lease_s = lease_s or settings.JOB_LEASE_SECONDS
        self.poll_s = poll_s
        self.linger_s = linger_s
        self.budget_s = budget_s
        self.on_batch_touched = on_batch_touched
        self.on_progress = on_progress
        self.progress_every_s = progress_every_s
        self.provider_lookup = provider_lookup
        self.scope = scope
        # Asked from outside to stop (its worker process is ending): claim no more,
        # start no call held ready, finish the calls in flight and record them.
        self.should_stop = should_stop
        self._stopping = False
        # Batches of the jobs in hand in which no call may start any more (cancelled),
        # looked up by the main thread every poll; the process-wide set that
        # PostgreSQL's notifications fill (grading.wakeups) is read too.
        self._stopped: frozenset[int] = frozenset()
        self._next_stop_check = 0.0
        self._next_outage_check = 0.0
        self.claimant = claimant_id()
        self.report = RunReport()
        # Claimed and not finished (calls in flight or ready), and finished but not yet recorded.
        self._in_flight: dict[int, Work] = {}
        self._finished: list[Outcome] = []
        # Outcomes the database refused (it was away): tried again, and left to the caller at the end.
        self.unrecorded: list[Outcome] = []
        self._finished_since = 0.0
        self._next_claim = 0.0
        # The last claim found less than it had room for: nothing more to claim for now.
        self._dry = False
        self._inbox: queue.Queue[Work | None] = queue.Queue()
        self._outbox: queue.Queue[Outcome] = queue.Queue()
        self._pool: list[threading.Thread] = []
        self._claim_seq = 0
        # Leases are renewed well before they run out; the reaper runs about as often.
        self._renew_every = max(self.lease_s / 3, 0.5)
        self._slot_lease_s = min(SLOT_LEASE_S, self.lease_s)
        self._next_renewal = 0.0
        self._next_reap = 0.0
        self._moved: set[int] = set()
        self._next_progress = 0.0
        self._runners = 1
        self._next_census = 0.0
        self._next_presence = 0.0
        self._exemplars = ExemplarCache()
        # Call slots of each capped provider (grading.claims.hold_slots), and the
        # capped providers the last claim found more jobs of than it had room for.
        self._slots = {
            name: CallSlots(name, provider_limits(name).max_concurrency or learnt_limits.UNKNOWN_START)
            for name in available_providers()
            if provider_limits(name).max_concurrency is not None or learnt_limits.learns(name)
        }
        # A batch's `concurrency` is kept the same way, by call slots of its own ("batch:<id>"),
        # made for the batches of the jobs in hand and those the last claim found short of room.
        self._batch_slots: dict[int, CallSlots] = {}
        self._short_batches: set[int] = set()
        # Until the first claim says otherwise, every capped provider may have work:
        # asking for slots at once saves the first claim a round with no room.
        self._short: set[str] = set(self._slots)
        # Runners this one has just asked for (helper tasks): counted before they
        # arrive, so that this runner does not take every slot only to hand half
        # of them over a moment later. Forgotten after PEERS_EXPECTED_S.
        self._peers_expected = peers_expected
        self._peers_expected_until = time.monotonic() + PEERS_EXPECTED_S

    # --- the loop -------------------------------------------------------------

    def run(self) -> RunReport:
        started = time.monotonic()
        self._stop_claiming_at = started + self.budget_s if self.budget_s else None
        runner_alive(self.claimant)
        self._next_presence = started + PRESENCE_EVERY_S
        try:
            self._loop()
        finally:
            self._stop_pool()
            try:
                # What the last calls produced is kept rather than left to the lease reaper.
                self._collect(self._take_outcomes(wait=0))
                self._release_unfinished()
                if self._finished:
                    self._record()
            finally:
                self._leave()
        self._report_progress(force=True)
        return self.report

    def _release_unfinished(self) -> None:
        """Jobs still in hand (calls that did not end in time) go back to the queue, attempt given back.

        The claimant is leaving in good order: it is not dead, and none of them is to blame.
        A call that still ends later is fenced off by its claim token.
        """
        for work in list(self._in_flight.values()):
            self._finished.append(
                Outcome(work, error="The runner stopped before the call ended.", blame=Blame.RUNNER)
            )
        self._in_flight.clear()

    def _leave(self) -> None:
        try:
            release_slots(self.claimant)
            if not self.unrecorded:
                runner_gone(self.claimant)
            # Otherwise its presence stays, and goes stale: until the outcomes are
            # recorded (record_leftovers), its jobs are this claimant's, and then
            # the next claim takes them over.
        except DatabaseError:
            # Leaving because the database failed: the row goes stale within RUNNER_STALE_S.
            logger.exception("Could not remove runner %s from the live runners.", self.claimant)

    def _loop(self) -> None:
        while True:
            self._collect(self._take_outcomes(wait=0))
            self._maintain()
            claiming = self._may_claim() and self._claim_due()
            # Recorded before a claim, so that the batch limits count what is really in flight.
            if self._finished and (claiming or not self._in_flight or self._record_due()):
                self._record()
                # Jobs that finished meanwhile free their threads for this claim too.
                self._collect(self._take_outcomes(wait=0))
            claimed = self._claim() if claiming else 0
            if self._in_flight:
                self._collect(self._take_outcomes(wait=self._wait_s()))
                continue
            if claimed or self._finished or self._slots_wanted():
                continue
            if not self._may_claim():
                self.report.work_left = _in_scope(GradingJob.objects.claimable(), self.scope).exists()
                return
            pause = self._idle_pause()
            if pause is None:
                return
            time.sleep(pause)

    def _may_claim(self) -> bool:
        if not self._stopping and self.should_stop is not None and self.should_stop():
            self._stopping = True
        if self._stopping:
            return False
        return self._stop_claiming_at is None or time.monotonic() < self._stop_claiming_at

    def may_start(self, work: Work) -> bool:
        """Asked by a pool thread right before its call starts: not once the batch is cancelled."""
        if self._stopping:
            return False
        batch_id = work.batch_id
        return batch_id not in self._stopped and batch_id not in wakeups.stopped_batches

    def _wait_s(self) -> float:
        """How long to wait for an outcome before looking again."""
        now = time.monotonic()
        # Presence and slot renewals keep their pace even while no call ends for long
        # (a provider that hangs): a runner that missed them would be taken for dead.
        wait = min(self._next_renewal, self._next_presence, self._next_stop_check) - now
        held = [slots.renew_at for _, slots, _ in self._all_slots() if slots.held]
        if held:
            wait = min(wait, min(held) - now)
        if len(self._in_flight) < self.threads and self._may_claim():
            # Free threads: claim again soon, for jobs that were capped or paced.
            wait = min(wait, self._next_claim - now)
        if self._finished:
            wait = min(wait, self._finished_since + RECORD_WAIT_S - now)
        return max(wait, 0.005)

    def _claim_due(self) -> bool:
        """Claim when a round is worth it: a provider has room for a round, or anything is idle.

        Every poll_s at the latest as long as threads are free, for jobs that were
        capped, paced or not there yet.
        """
        free = self.threads - len(self._in_flight)
        if free <= 0:
            return False
        if not self._in_flight or time.monotonic() >= self._next_claim:
            return True
        if self._dry:
            return False
        in_hand, in_batch = self._in_hand(), self._in_batch()
        if any(slots.claim_due(in_hand[name]) for name, slots in self._slots.items()):
            return True
        if any(slots.claim_due(in_batch[batch_id]) for batch_id, slots in self._batch_slots.items()):
            return True
        # Providers without a cap keep no jobs ready; a few threads wait for a round.
        return free >= math.ceil(self.threads / 4) and any(
            provider not in self._slots for provider in in_hand
        )

    def _idle_pause(self) -> float | None:
        """Seconds to sleep before claiming again, or None to stop: nothing is coming soon."""
        wakeup = next_wakeup(scope=self.scope)
        if wakeup is None:
            return None
        ahead = (wakeup - timezone.now()).total_seconds()
        if ahead > self.linger_s:
            return None
        return min(max(ahead, self.poll_s), 1.0)

    # --- database work (main thread only) ----------------------------------------

    def _claim(self) -> int:
        free = self.threads - len(self._in_flight)
        if free <= 0:
            return 0
        self._claim_seq += 1
        self._next_claim = time.monotonic() + self.poll_s
        in_hand = self._in_hand()
        in_batch = self._in_batch()
        share = Share(
            room={name: slots.room(in_hand[name]) for name, slots in self._slots.items()},
            batch_room={
                batch_id: slots.room(in_batch[batch_id])
                for batch_id, slots in self._batch_slots.items()
                if slots.held or in_batch[batch_id]
            },
            suspects=0 if any(item.suspect for item in self._in_flight.values()) else 1,
        )
        work = claim_jobs(
            free,
            f"{self.claimant}/{self._claim_seq}",
            lease_s=self.lease_s,
            scope=self.scope,
            share=share,
        )
        if share.recovered.moved_batches:
            self._moved |= share.recovered.moved_batches
            self._touched(share.recovered.touched_batches)
        self._short = share.short
        self._short_batches = share.short_batches
        for batch_id, concurrency in share.batch_caps.items():
            slots = self._batch_slots.get(batch_id)
            if slots is None:
                self._batch_slots[batch_id] = CallSlots(batch_slot_key(batch_id), concurrency)
            else:
                slots.cap = concurrency
        self._dry = len(work) < free and not share.limited
        for item in work:
            item = self._with_exemplars(item)
            self._in_flight[item.job_id] = item
            self._inbox.put(item)
        if work:
            self.report.claims += 1
            # After the work is queued: the first thread calls while the others start.
            self._ensure_pool()
        return len(work)

    def _with_exemplars(self, work: Work) -> Work:
        exemplars = self._exemplars.for_batch(work.batch_id)
        return replace(work, exemplars=exemplars) if exemplars else work

    def _collect(self, outcomes: list[Outcome]) -> None:
        """Finished jobs leave the work in hand at once and wait for their round of recording."""
        if not outcomes:
            return
        if not self._finished:
            self._finished_since = time.monotonic()
        for outcome in outcomes:
            self._in_flight.pop(outcome.work.job_id, None)
        self._finished += outcomes

    def _record_due(self) -> bool:
        return len(self._finished) >= RECORD_CHUNK or time.monotonic() - self._finished_since >= RECORD_WAIT_S

    def _record(self) -> None:
        # Outcomes a failed round could not record are tried again first: the fence
        # (attempt and claim token) makes recording them twice impossible.
        outcomes, self._finished, self.unrecorded = self.unrecorded + self._finished, [], []
        recorded = Recorded()
        try:
            recorded = record_outcomes(outcomes)
        except DatabaseError:
            # One outcome the database refuses must not take the others with it.
            logger.exception(
                "Recording %d outcomes together failed; recording them one by one.", len(outcomes)
            )
            _reconnect_if_broken()
            for outcome in outcomes:
                try:
                    recorded.add(record_outcomes([outcome]))
                except DatabaseError:
                    # Kept, and tried again at the next round (or by whoever runs next in this
                    # process); meanwhile the job stays processing under this claimant.
                    logger.exception("Could not record job %s.", outcome.work.job_id)
                    _reconnect_if_broken()
                    self.unrecorded.append(outcome)
        self.report.add(recorded)
        self._moved |= recorded.moved_batches
        self._touched(recorded.touched_batches)

    def _maintain(self) -> None:
        now = time.monotonic()
        if now >= self._next_presence:
            self._next_presence = now + PRESENCE_EVERY_S
            runner_alive(self.claimant)
        if now >= self._next_census:
            # How many runners share each provider's cap; looked at often, since
            # runners join and leave as batches start and end.
            self._next_census = now + 0.25
            expected = 1 + self._peers_expected if now < self._peers_expected_until else 1
            self._runners = max(live_runners(), expected)
            # The learnt caps: cut after a 429 by whichever runner recorded it, grown after answers.
            for name, cap in learnt_limits.caps(list(self._slots)).items():
                self._slots[name].learnt(cap)
        self._hold_slots()
        if now >= self._next_stop_check and self._in_flight:
            # Jobs held ready must not start once their batch is cancelled.
            self._next_stop_check = now + self.poll_s
            self._stopped = frozenset(stopped_batches({work.batch_id for work in self._in_flight.values()}))
        if now >= self._next_outage_check:
            self._next_outage_check = now + OUTAGE_CHECK_S
            circuits.announce_long_outages()
        if now >= self._next_renewal:
            self._next_renewal = now + self._renew_every
            renew_leases(list(self._in_flight.values()), lease_s=self.lease_s)
        if now >= self._next_reap:
            self._next_reap = now + self._renew_every
            reaped = reap_expired_leases()
            self._moved |= reaped.moved_batches
            self._touched(reaped.touched_batches)
        self._report_progress()

    def _in_hand(self) -> Counter[str]:
        return Counter(item.provider for item in self._in_flight.values())

    def _in_batch(self) -> Counter[int]:
        return Counter(item.batch_id for item in self._in_flight.values())

    def _all_slots(self) -> Iterator[tuple[str, CallSlots, int]]:
        """Every call-slot set, with the key it is held under and how many jobs in hand need it."""
        in_hand, in_batch = self._in_hand(), self._in_batch()
        for name, slots in self._slots.items():
            yield name, slots, (in_hand[name] or name in self._short)
        for batch_id, slots in self._batch_slots.items():
            yield batch_slot_key(batch_id), slots, (in_batch[batch_id] or batch_id in self._short_batches)

    def _slot_targets(self) -> list[tuple[str, CallSlots, int]]:
        """Slots to hold per capped provider and batch: a fair share of the cap while there is work for it."""
        return [
            (key, slots, slots.target(min(-(-slots.cap // self._runners), self.threads)) if wanted else 0)
            for key, slots, wanted in self._all_slots()
        ]

    def _slots_wanted(self) -> bool:
        """True when a capped provider or batch has work waiting for slots this runner may ask for now."""
        now = time.monotonic()
        return any(
            target > slots.held and slots.due(target, now) for _, slots, target in self._slot_targets()
        )

    def _hold_slots(self) -> None:
        for name, slots, target in self._slot_targets():
            now = time.monotonic()
            if not slots.due(target, now):
                continue
            # Slots still in use are given back once their calls end.
            lease_s = self._slot_lease_s
            held = hold_slots(self.claimant, name, slots.cap, slots.keep(target), lease_s=lease_s)
            # The lease counts from before the statement; stop using it well before
            # it ends, and before this runner could be taken for dead.
            slots.update(held, target, now + min(lease_s * 0.8, SLOT_TRUST_S), time.monotonic(), SLOT_RENEW_S)
        for batch_id in [
            key for key, slots in self._batch_slots.items() if not slots.held and not slots.in_use
        ]:
            if batch_id not in self._short_batches and not self._in_batch()[batch_id]:
                del self._batch_slots[batch_id]

    def _report_progress(self, force: bool = False) -> None:
        """Tell the caller which batches moved; throttled, as each report costs a count query."""
        now = time.monotonic()
        if not self.on_progress or not self._moved or (now < self._next_progress and not force):
            return
        self._next_progress = now + self.progress_every_s
        moved, self._moved = self._moved, set()
        for batch_id in sorted(moved):
            self.on_progress(batch_id)

    def _touched(self, batch_ids: set[int]) -> None:
        if not self.on_batch_touched:
            return
        # A batch of which this runner still holds a job is not finished: no query needed.
        batch_ids = batch_ids - {work.batch_id for work in self._in_flight.values()}
        if not batch_ids:
            return
        still_running = set(
            GradingJob.objects.unfinished()
            .filter(batch_id__in=batch_ids)
            .values_list("batch_id", flat=True)
            .distinct()
            .order_by()
        )
        for batch_id in sorted(batch_ids - still_running):
            self.on_batch_touched(batch_id)

    # --- provider calls (pool threads; no database) --------------------------------

    def _take_outcomes(self, wait: float) -> list[Outcome]:
        outcomes = []
        try:
            outcomes.append(self._outbox.get(timeout=wait) if wait > 0 else self._outbox.get_nowait())
        except queue.Empty:
            return outcomes
        while True:
            try:
                outcomes.append(self._outbox.get_nowait())
            except queue.Empty:
                return outcomes

    def _ensure_pool(self) -> None:
        while len(self._pool) < self.threads:
            thread = threading.Thread(target=self._serve, name=f"grader-{len(self._pool) + 1}", daemon=True)
            thread.start()
            self._pool.append(thread)

    def _stop_pool(self) -> None:
        for _, slots, _ in self._all_slots():
            slots.close()
        for _ in self._pool:
            self._inbox.put(None)
        # Calls in flight get a few seconds in all; what is still out then is released (run()).
        deadline = time.monotonic() + 5
        for thread in self._pool:
            thread.join(timeout=max(deadline - time.monotonic(), 0))
        self._pool = []

    def _serve(self) -> None:
        while (work := self._inbox.get()) is not None:
            self._outbox.put(
                grade_work(
                    work,
                    self.provider_lookup,
                    self._slots.get(work.provider),
                    self.may_start,
                    self._batch_slots.get(work.batch_id),
                )
            )


def batch_slot_key(batch_id: int) -> str:
    """The name a batch's call slots are held under, beside the providers' (grading.claims.hold_slots)."""
    return f"batch:{batch_id}"


def _reconnect_if_broken() -> None:
    """After a database error: drop a connection that no longer works, so the next query opens a new one."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        try:
            if connection.in_atomic_block:
                continue
            connection.close_if_unusable_or_obsolete()
        except DatabaseError:
            connection.close()


def record_leftovers(outcomes: list[Outcome], claimant: str) -> Recorded:
    """Record what a runner that failed on the database could not, then forget that runner.

    For the runner's caller (the standing runner), once the database is back: the
    outcomes are still fenced by their claim tokens, so a job taken over meanwhile
    is left alone.
    """
    recorded = record_outcomes(outcomes) if outcomes else Recorded()
    runner_gone(claimant)
    return recorded


def grade_work(
    work: Work,
    provider_lookup: ProviderLookup = get_provider,
    slots: CallSlots | None = None,
    may_start: Callable[[Work], bool] | None = None,
    batch_slots: CallSlots | None = None,
) -> Outcome:
    """One attempt at one job, its call made in one of `slots` (and of its batch's `batch_slots`).

    Never raises: every failure becomes an outcome.

    `may_start` is asked last thing before the call: a job of a batch cancelled
    meanwhile never reaches the provider.
    """
    delay = work.start_delay()
    if delay > 0:
        time.sleep(delay)
    try:
        grade, latency_ms, crowded = _grade(work, provider_lookup, slots, may_start, batch_slots)
    except NotStarted as error:
        return Outcome(work, error=str(error), transient=True, blame=Blame.RUNNER)
    except ProviderError as error:
        if error.transient:
            alongside = slots is not None and slots.in_use > 0
            if error.rate_limited and slots is not None:
                slots.refused()
            # Connection refused, timeouts, 5xx, 429: the provider's failure, not the job's.
            return Outcome(
                work,
                error=str(error),
                transient=True,
                retry_after=error.retry_after,
                blame=Blame.PROVIDER,
                refused=error.rate_limited,
                alongside=alongside,
                quota=error.quota,
                billed=error.billed,
            )
        # The provider answered, and refused this job (a 4xx, a reply that cannot be repaired).
        return Outcome(
            work,
            error=str(error),
            answered=error.status_code is not None or error.answered,
            quota=error.quota,
            billed=error.billed,
        )
    except PermanentFailure as failure:
        return Outcome(work, error=str(failure))
    except Exception as error:
        # A bug or an unexpected library error: worth another attempt, bounded by max_attempts.
        logger.exception("Grading job %s failed unexpectedly.", work.job_id)
        return Outcome(work, error=f"Unexpected error: {type(error).__name__}: {error}", transient=True)
    outcome = Outcome.graded(work, grade, latency_ms=latency_ms)
    outcome.crowded = crowded
    return outcome


class PermanentFailure(Exception):
    """The job cannot succeed however often it is tried."""


def _grade(
    work: Work, provider_lookup: ProviderLookup, slots: CallSlots | None, may_start=None, batch_slots=None
) -> tuple[Grade, int, bool]:
    """The grade and how long its call took (from when it started, not from when it waited for a slot)."""
    request = grade_request(work)
    try:
        provider = provider_lookup(work.provider)
    except KeyError as error:
        raise PermanentFailure(str(error)) from None
    # The batch's slot first, then the provider's: always in that order, so no two calls
    # each hold the slot the other waits for.
    with (
        batch_slots.call() if batch_slots is not None else nullcontext(),
        slots.call() if slots is not None else nullcontext(False) as crowded,
    ):
        if may_start is not None and not may_start(work):
            raise NotStarted("The call did not start: the batch was cancelled, or the runner is stopping.")
        started = time.monotonic()
        grade = provider.grade(request)
    latency_ms = int((time.monotonic() - started) * 1000)
    _check(grade)
    return grade, latency_ms, crowded


def grade_request(work: Work) -> GradeRequest:
    """What the provider is asked for one claimed job (also for a provider batch, grading.economy_engine)."""
    if work.unreadable:
        raise PermanentFailure(work.unreadable)
    try:
        rubric = _rubric(work.settings_key) if work.settings_key else _validated_rubric(work.settings)
    except SettingsError as error:
        raise PermanentFailure(f"The job's settings are invalid: {error}") from None
    return GradeRequest(
        text=work.text,
        rubric=rubric,
        settings=work.settings,
        model=work.model,
        document_name=work.document_name,
        timeout_s=rule(work.settings.get("processing"), "timeout_s"),
        exemplars=for_document(work.exemplars, work.document_id),
    )


def _validated_rubric(job_settings: dict) -> dict:
    return validate_settings(job_settings).rubric.model_dump(mode="json")


@lru_cache(maxsize=512)
def _rubric(settings_key: str) -> dict:
    """The validated rubric of a settings snapshot, once per snapshot (shared: read only)."""
    return _validated_rubric(snapshot(settings_key))


def _check(grade: Grade) -> None:
    """Refuse a grade the database would refuse, with a sentence rather than an IntegrityError."""
    if not grade.max_score or grade.max_score <= 0:
        raise PermanentFailure(f"The provider returned a grade out of {grade.max_score!r}.")
    if not 0 <= grade.score <= grade.max_score:
        raise PermanentFailure(
            f"The provider returned a score of {grade.score:g}, outside 0–{grade.max_score:g}."
        )


def next_wakeup(now: datetime | None = None, scope: list[int] | None = None) -> datetime | None:
    """When something may next become claimable: a due retry, or a lease running out."""
    now = now or timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    queued = _in_scope(GradingJob.objects.waiting(), scope).aggregate(
        due=Count("id", filter=due), later=Min("next_attempt_at")
    )
    if queued["due"]:
        return now
    processing = _in_scope(GradingJob.objects.processing(), scope)
    lease = processing.aggregate(soonest=Min("lease_expires_at"))["soonest"]
    moments = [moment for moment in (queued["later"], lease) if moment is not None]
    return min(moments) if moments else None


def _in_scope(jobs, scope: list[int] | None):
    return jobs if scope is None else jobs.filter(batch_id__in=scope)
