"""The database side of processing: claim jobs, record their outcomes, recover lost ones.

Every change of a job's state here is conditional on what the caller last saw, so
django-q2 delivering a task twice, two workers racing, or a worker waking up after
its lease ran out can never produce a second result or undo another worker's work:

- a claim takes queued jobs and marks them processing with a lease, attempt + 1 and a
  fresh claim token (claimed_by), in one UPDATE;
- an outcome is recorded only if the job is still processing under the same attempt
  and token (the fence); otherwise it is discarded;
- jobs whose claimant died (its presence went stale) or whose lease ran out are
  taken over by the next claim, or by the reaper (take_over).

Attempts are counted here, at claim time, not by django-q2, and given back when the
failure was not the job's: the provider's own failures (grading.circuits), a call
that never started, a worker that died with other jobs in flight (those become
"suspect" and are claimed alone, so that the one whose document kills its worker
uses up its attempts and the others do not).
"""

import json
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from grading import circuits, claim_sql, learnt_limits
from grading.limits import backoff_delay, provider_limits, rule
from grading.models import CallSlot, GradingJob, GradingResult, JobStatus, LiveRunner, PaceClock
from grading.providers import Billed, Grade, Quota
from grading.statuses import BatchStatus

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every worker.
CLAIM_LOCK_KEY = 7_304_113
# A claim hands out start slots at most this far ahead; a job paced later than
# that stays queued, so no thread sleeps long and no lease covers idle time.
PACING_HORIZON = timedelta(seconds=1)
# Claim passes per round: each pass skips batches and providers the previous one
# found at their limit, so a capped high-priority batch cannot starve the rest.
CLAIM_PASSES = 3
REAP_LIMIT = 500
STALE_CLOCK_AGE = timedelta(hours=1)
# A runner refreshes its presence (LiveRunner) every second; one not seen for this
# long died, and the next claim takes its jobs over and frees its call slots.
RUNNER_STALE_S = 5
# A document the provider fails on this many times while it answers others (its
# circuit closed: not probes) ends failed; until then its failures use up no attempt.
PROVIDER_RETRY_LIMIT = 20
# Batch states into which a job may go back to the queue; in any other (cancelled,
# finished) a job that would be re-queued is cancelled instead.
REQUEUE_BATCH_STATES = frozenset({*BatchStatus.active(), BatchStatus.PAUSED})


@dataclass(frozen=True)
class Work:
    """A claimed job, copied out of the ORM: provider threads never touch the database."""

    job_id: int
    batch_id: int | None
    token: str
    attempt: int
    max_attempts: int
    provider: str
    model: str
    settings: dict[str, Any] = field(repr=False)
    # The snapshot's JSON text: a cache key for everything derived from it.
    settings_key: str = field(repr=False)
    text: str = field(repr=False)
    document_name: str
    unreadable: str
    claimed_at: datetime
    start_at: datetime
    # When the claim was made by this process's clock; start_at is relative to it.
    claimed_monotonic: float = field(default_factory=time.monotonic, repr=False)
    document_id: int | None = None
    # The batch's exemplars as (document id, Exemplar), attached by the runner's main thread.
    exemplars: tuple = field(default=(), repr=False)
    # Taken over from a dead claimant: claimed alone (see take_over).
    suspect: bool = False
    # The one job sent to a provider whose circuit is open, to see whether it answers.
    probe: bool = False
    provider_retries: int = 0
    # Tokens the claim reserved for the call in the provider's token budget (0: none kept).
    estimated_tokens: int = 0

    def start_delay(self) -> float:
        """Seconds still to wait before the call may start (stagger and request-rate pacing)."""
        paced = (self.start_at - self.claimed_at).total_seconds()
        return paced - (time.monotonic() - self.claimed_monotonic)


class Blame:
    """Whose failure an attempt's was: only the job's uses up one of its attempts."""

    JOB = "job"
    # The provider failed (connection refused, timeout, 5xx, 429, overloaded): its circuit counts it.
    PROVIDER = "provider"
    # The call never started (the runner stopped, or the batch was cancelled first).
    RUNNER = "runner"


@dataclass
class Outcome:
    """What one attempt produced: a grade, or an error that is transient or not, and whose it was."""

    work: Work
    grade: Grade | None = None
    error: str = ""
    transient: bool = False
    retry_after: float | None = None
    latency_ms: int = 0
    # The result row, built by the provider thread so the database thread only saves it.
    result: GradingResult | None = field(default=None, repr=False)
    blame: str = Blame.JOB
    # The provider answered (a grade, or a refusal that is the job's): it is up.
    answered: bool = False
    # The provider said it has too much to do (429, 529 overloaded): fewer calls at once.
    refused: bool = False
    # What the reply's rate-limit headers said is left.
    quota: Quota | None = field(default=None, repr=False)
    # The call took the last of its runner's slots for the provider: the cap was what bound it,
    # so its answer says the provider took that many at once (grading.learnt_limits grows on these).
    crowded: bool = False
    # A refused call: other calls of its runner to the provider were in flight as it was
    # refused, so the refusal was of one call too many at once (grading.claims._slow_down).
    alongside: bool = False
    # What the provider billed for this attempt's calls when they left no grade (a repair's first
    # reply, before the repair's own call failed): added to the job's billed_* columns.
    billed: Billed | None = field(default=None, repr=False)

    @classmethod
    def graded(cls, work: Work, grade: Grade, latency_ms: int) -> "Outcome":
        result = GradingResult.from_grade(
            grade, job_id=work.job_id, provider=work.provider, model=work.model, latency_ms=latency_ms
        )
        return cls(work, grade=grade, latency_ms=latency_ms, result=result, answered=True, quota=grade.quota)

    @property
    def counts(self) -> bool:
        """Whether this attempt uses up one of the job's attempts."""
        return self.blame == Blame.JOB


@dataclass
class Recorded:
    completed: int = 0
    failed: int = 0
    requeued: int = 0
    discarded: int = 0
    # Jobs that would have gone back to the queue of a batch cancelled meanwhile.
    cancelled: int = 0
    # Batches in which a job reached a final state: they may now be finished.
    touched_batches: set[int] = field(default_factory=set)
    # Batches whose job counts moved (any recorded outcome): for progress reports.
    moved_batches: set[int] = field(default_factory=set)

    def add(self, other: "Recorded") -> None:
        self.completed += other.completed
        self.failed += other.failed
        self.requeued += other.requeued
        self.discarded += other.discarded
        self.cancelled += other.cancelled
        self.touched_batches |= other.touched_batches
        self.moved_batches |= other.moved_batches


# --- claiming -------------------------------------------------------------------


@dataclass
class Share:
    """How many more jobs of each capped provider a claimant may take: its room.

    A runner holds call slots of each capped provider (see hold_slots) and keeps a
    few jobs claimed and ready beyond them; it passes that room here, and the
    provider's cap is then kept by its slots, counted on calls rather than jobs. A
    claimant that passes no room for a capped provider holds no slots, so its
    claims are held to the cap by the jobs in processing.
    """

    room: dict[str, int] = field(default_factory=dict)
    # The same for batches: jobs of each batch the claimant may take, from the batch's call
    # slots (a batch's `concurrency` counts calls, as a provider's cap does). A batch
    # without room here is held to its rule by its jobs in processing.
    batch_room: dict[int, int] = field(default_factory=dict)
    # Suspect jobs the claimant may take (each claimed alone): 1 when it holds none.
    suspects: int = 1
    # Filled in by the claim: capped providers with claimable jobs beyond the room;
    # and whether any limit (a cap or room, a batch's concurrency, pacing, an open
    # circuit) held the claim back, so that more may be claimable as soon as work
    # in flight ends; and what taking over dead claimants' jobs did.
    short: set[str] = field(default_factory=set)
    # Batches with claimable jobs beyond their room, and the `concurrency` of every batch seen.
    short_batches: set[int] = field(default_factory=set)
    batch_caps: dict[int, int] = field(default_factory=dict)
    limited: bool = False
    recovered: "Recorded" = field(default_factory=lambda: Recorded())


def claim_jobs(
    limit: int,
    token: str,
    now: datetime | None = None,
    lease_s: int | None = None,
    scope: list[int] | None = None,
    share: Share | None = None,
) -> list[Work]:
    """Take up to `limit` claimable jobs in priority order, within every limit.

    `scope`, when given, restricts the claim to the jobs of those batches (a
    command grading one batch in its own process); the limits still count
    every job in flight.

    Limits that hold across all workers (a provider's concurrency and request
    rate, a batch's concurrency, stagger and request rate) are check-then-act:
    count what is in flight, then take more. Claims therefore serialise on one
    lock: a transaction-scoped advisory lock on PostgreSQL; on SQLite the
    IMMEDIATE transaction mode (see core/env.py) already holds the
    database's write lock from BEGIN. A claim is a handful of short queries
    taking many jobs at once, so serialising them costs little, and SKIP LOCKED
    still keeps a claim from waiting on rows a cancel or the reaper is updating.
    """
    if limit <= 0:
        return []
    now = now or timezone.now()
    lease = timedelta(seconds=lease_s or settings.JOB_LEASE_SECONDS)
    share = share or Share()
    with transaction.atomic():
        seen = claim_sql.lock_and_read(CLAIM_LOCK_KEY, now - timedelta(seconds=RUNNER_STALE_S))
        if seen.dead or (seen.soonest_lease is not None and seen.soonest_lease < now):
            # Recovery needs no schedule: the claim itself takes over what dead claimants held.
            share.recovered.add(take_over(now, seen.dead))
            seen = claim_sql.lock_and_read(CLAIM_LOCK_KEY, now - timedelta(seconds=RUNNER_STALE_S))
        budget = Budget.in_flight(now, share, seen)
        picked: list[tuple[dict[str, Any], datetime]] = []
        for _ in range(CLAIM_PASSES):
            window = limit - len(picked)
            suspects = share.suspects if not picked else 0
            rows = _candidates(budget, [row["id"] for row, _ in picked], window, scope, suspects)
            budget.load_clocks(rows)
            budget.load_allowances(rows)
            suspect = next((row for row in rows if row["suspect"]), None)
            if suspect is not None and (start_at := budget.admit(suspect)) is not None:
                # A suspect is claimed alone: if its document kills the worker, it is to blame.
                picked = [(suspect, start_at)]
                break
            rows = [row for row in rows if not row["suspect"]]
            for row in rows:
                start_at = budget.admit(row)
                if start_at is not None:
                    picked.append((row, start_at))
                    if len(picked) == limit:
                        break
            if len(picked) == limit or len(rows) < window:
                break
        share.limited = bool(share.short or budget.blocked_batches or budget.blocked_providers)
        if not picked:
            return []
        claim_sql.mark_claimed(
            [row["id"] for row, _ in picked],
            token,
            lease_until=max(start_at for _, start_at in picked) + lease,
        )
        budget.save_clocks()
        learnt_limits.save(budget.allowances)
        probes = budget.take_probes(token)
    return [
        _work(row, start_at, token, now, row["id"] in probes, budget.estimates.get(row["id"], 0))
        for row, start_at in picked
    ]


def _candidates(
    budget: "Budget", exclude: list[int], window: int, scope, suspects: int
) -> list[dict[str, Any]]:
    return claim_sql.candidates(
        budget.now, window, exclude, budget.blocked_batches, budget.blocked_providers, scope, suspects
    )


def _processing(row: dict[str, Any]) -> dict[str, Any] | None:
    return snapshot(row["settings"] or "{}").get("processing")


@lru_cache(maxsize=512)
def snapshot(raw: str) -> dict[str, Any]:
    """A job's settings snapshot (JSON text), decoded once per process.

    The jobs of a batch share one snapshot, so this is one decode per batch
    rather than one per candidate row. The dict is shared: read it, never change it.
    """
    return json.loads(raw)


def _work(
    row: dict[str, Any], start_at: datetime, token: str, now: datetime, probe: bool = False, tokens: int = 0
) -> Work:
    raw = row["settings"] or "{}"
    job_settings = snapshot(raw)
    return Work(
        job_id=row["id"],
        batch_id=row["batch_id"],
        token=token,
        # The UPDATE above added one; the row lock kept anyone else from changing it.
        attempt=row["attempts"] + 1,
        max_attempts=row["max_attempts"],
        provider=row["provider"] or job_settings.get("provider", ""),
        model=row["model"] or job_settings.get("model", ""),
        settings=job_settings,
        settings_key=raw,
        text=row["document__text"],
        document_name=row["document__original_name"],
        unreadable=row["document__extraction_error"],
        claimed_at=now,
        start_at=start_at,
        document_id=row["document_id"],
        suspect=row["suspect"],
        probe=probe,
        provider_retries=row["provider_retries"] or 0,
        estimated_tokens=tokens,
    )


class Budget:
    """What may still start: in-flight counts against caps, and the pacing clocks."""

    def __init__(self, now: datetime, share: Share):
        self.now = now
        self.share = share
        self.mine: Counter[str] = Counter()
        self.provider_busy: Counter[str] = Counter()
        self.batch_busy: Counter[int] = Counter()
        self.blocked_batches: set[int] = set()
        self.blocked_providers: set[str] = set()
        self.clocks: dict[str, datetime] = {}
        self.changed: set[str] = set()
        # Providers whose circuit is open and due a probe: the job chosen as the probe, or None yet.
        self.probing: dict[str, int | None] = {}
        self.probe_timeouts: dict[str, float] = {}
        self.mine_in_batch: Counter[int] = Counter()
        # Request and token buckets of the providers seen (learnt_limits), and what each job took.
        self.allowances: dict[str, learnt_limits.Allowance] = {}
        self.estimates: dict[int, int] = {}

    @classmethod
    def in_flight(cls, now: datetime, share: Share, seen: claim_sql.InFlight) -> "Budget":
        budget = cls(now, share)
        for provider, open_until, _probe_by, probe_until in seen.circuits:
            if open_until > now or (probe_until is not None and probe_until > now):
                budget.blocked_providers.add(provider)
            else:
                budget.probing[provider] = None
        # The processing set is small (bounded by the caps), and the job_lease_expiry
        # partial index covers exactly it.
        for provider, batch_id, n, cap in seen.busy:
            budget.provider_busy[provider] += n
            budget.batch_busy[batch_id] += n
            if (
                batch_id is not None
                and batch_id not in share.batch_room
                and n >= rule({"concurrency": cap}, "concurrency")
            ):
                budget.blocked_batches.add(batch_id)
                share.short_batches.add(batch_id)
                share.batch_caps[batch_id] = rule({"concurrency": cap}, "concurrency")
        for provider, n in budget.provider_busy.items():
            cap = provider_limits(provider).max_concurrency
            if cap is not None and n >= cap and provider not in share.room:
                budget.blocked_providers.add(provider)
        return budget

    def load_clocks(self, rows: list[dict[str, Any]]) -> None:
        keys = {key for row in rows for key, _ in self._pacing(row)} - set(self.clocks)
        if keys:
            self.clocks.update(PaceClock.objects.filter(key__in=keys).values_list("key", "next_at"))

    def load_allowances(self, rows: list[dict[str, Any]]) -> None:
        providers = {row["provider"] for row in rows} - set(self.allowances) - self.blocked_providers
        if providers:
            self.allowances.update(learnt_limits.allowances(providers, self.now))

    def _spend(self, row: dict[str, Any]) -> bool:
        """Take the call's request and tokens from the provider's buckets, if it keeps any."""
        allowance = self.allowances.get(row["provider"])
        if allowance is None:
            return True
        tokens = 0
        if allowance.counts_tokens:
            raw = row["settings"] or "{}"
            tokens = learnt_limits.estimated_tokens(
                row["provider"], row["model"], snapshot(raw), raw, row["document__text"]
            )
        if not allowance.spend(tokens):
            return False
        if tokens:
            self.estimates[row["id"]] = tokens
        return True

    def _batch_room(self, row: dict[str, Any]) -> bool:
        batch_id = row["batch_id"]
        concurrency = rule(_processing(row), "concurrency")
        if batch_id is None:
            return True
        self.share.batch_caps[batch_id] = concurrency
        room = self.share.batch_room.get(batch_id)
        if room is None:
            fits = self.batch_busy[batch_id] < concurrency
        else:
            fits = self.mine_in_batch[batch_id] < room
        if not fits:
            self.share.short_batches.add(batch_id)
        return fits

    def admit(self, row: dict[str, Any]) -> datetime | None:
        """The job's start time if it may be claimed now, or None (and why is remembered)."""
        provider, batch_id = row["provider"], row["batch_id"]
        if provider in self.blocked_providers or batch_id in self.blocked_batches:
            return None
        probe = provider in self.probing
        if probe and not circuits.lock_for_probe(provider):
            # A recorder is changing the circuit right now: probe at the next claim.
            self.blocked_providers.add(provider)
            return None
        if not self._provider_room(provider):
            self.blocked_providers.add(provider)
            return None
        if not self._batch_room(row):
            self.blocked_batches.add(batch_id)
            return None
        pacing = self._pacing(row)
        start_at = max([self.now, *(self.clocks.get(key, self.now) for key, _ in pacing)])
        if start_at > self.now + PACING_HORIZON:
            self._block_paced(row, pacing)
            return None
        if not self._spend(row):
            # The provider's requests or tokens for this minute are spent: none of its jobs until they refill.
            self.blocked_providers.add(provider)
            return None
        for key, interval in pacing:
            self.clocks[key] = start_at + interval
            self.changed.add(key)
        self.provider_busy[provider] += 1
        self.batch_busy[batch_id] += 1
        self.mine[provider] += 1
        self.mine_in_batch[batch_id] += 1
        if probe:
            # One job, and no other of this provider, until the probe answers.
            self.probing[provider] = row["id"]
            self.probe_timeouts[provider] = rule(_processing(row), "timeout_s")
            self.blocked_providers.add(provider)
        return start_at

    def take_probes(self, token: str) -> set[int]:
        """Mark the probes claimed on their circuits; the probe jobs' ids."""
        taken = set()
        for provider, job_id in self.probing.items():
            if job_id is not None:
                until = self.now + timedelta(seconds=self.probe_timeouts[provider] + circuits.PROBE_MARGIN_S)
                circuits.take_probe(provider, token, until)
                taken.add(job_id)
        return taken

    def _provider_room(self, provider: str) -> bool:
        cap = provider_limits(provider).max_concurrency
        if cap is None:
            return True
        room = self.share.room.get(provider)
        if room is None:
            return self.provider_busy[provider] < cap
        if self.mine[provider] < room:
            return True
        self.share.short.add(provider)
        return False

    def _pacing(self, row: dict[str, Any]) -> list[tuple[str, timedelta]]:
        """(clock key, spacing between starts) for every pacing rule the job is under."""
        pacing = []
        provider_rpm = provider_limits(row["provider"]).requests_per_minute
        if provider_rpm:
            pacing.append((f"provider:{row['provider']}", timedelta(seconds=60 / provider_rpm)))
        processing = _processing(row)
        stagger = timedelta(milliseconds=rule(processing, "stagger_ms"))
        batch_rpm = rule(processing, "requests_per_minute")
        spacing = max(stagger, timedelta(seconds=60 / batch_rpm) if batch_rpm else timedelta(0))
        if spacing and row["batch_id"] is not None:
            pacing.append((f"batch:{row['batch_id']}", spacing))
        return pacing

    def _block_paced(self, row: dict[str, Any], pacing: list[tuple[str, timedelta]]) -> None:
        for key, _ in pacing:
            if self.clocks.get(key, self.now) > self.now + PACING_HORIZON:
                if key.startswith("provider:"):
                    self.blocked_providers.add(row["provider"])
                else:
                    self.blocked_batches.add(row["batch_id"])

    def save_clocks(self) -> None:
        if self.changed:
            PaceClock.objects.bulk_create(
                [PaceClock(key=key, next_at=self.clocks[key]) for key in sorted(self.changed)],
                update_conflicts=True,
                unique_fields=["key"],
                update_fields=["next_at"],
            )


# --- recording ------------------------------------------------------------------

JOB_OUTCOME_FIELDS = [
    "status",
    "last_error",
    "next_attempt_at",
    "lease_expires_at",
    "started_at",
    "completed_at",
    "duration_ms",
]


def record_outcomes(outcomes: list[Outcome], now: datetime | None = None) -> Recorded:
    """Commit finished attempts: results, failures and retries, fenced by attempt and token.

    Outcomes that finished together are committed together (one transaction, a
    few statements), but never held back for work still in flight. A job that
    goes back to the queue is cancelled instead when its batch was cancelled
    meanwhile: the batch rows are read under a lock a cancel waits for
    (claim_sql.lock_batches), so a cancel committed before this transaction is
    seen, and one committed after it sees the job queued and cancels it.
    """
    if not outcomes:
        return Recorded()
    now = now or timezone.now()
    recorded = Recorded()
    with transaction.atomic():
        requeued = {o.work.batch_id for o in outcomes if _disposition(o) in (_RETRY, _AGAIN)}
        statuses = claim_sql.lock_batches(requeued) if requeued else {}
        stopped = {batch_id for batch_id, status in statuses.items() if status not in REQUEUE_BATCH_STATES}
        answering = _answering(outcomes, now)
        groups: dict[tuple, list[Outcome]] = {}
        for outcome in outcomes:
            values, add = _ended_values(outcome, now, stopped, answering)
            key = (outcome.work.token, tuple(values.items()), tuple(add.items()))
            groups.setdefault(key, []).append(outcome)
        results = []
        tallies: dict[str, circuits.Tally] = {}
        learnt: dict[str, learnt_limits.Tally] = {}
        for (token, values, add), group in groups.items():
            owned = claim_sql.finish(
                [outcome.work.job_id for outcome in group], token, dict(values), dict(add)
            )
            for outcome in group:
                if outcome.work.job_id not in owned:
                    _discarded(outcome, recorded)
                    continue
                _count(outcome, recorded, stopped)
                _tally(outcome, tallies)
                _learn(outcome, learnt)
                if outcome.grade is not None:
                    results.append(_result(outcome, now))
        claim_sql.insert_results(results)
        circuits.record(tallies, now)
        learnt_limits.record({p: t for p, t in learnt.items() if learnt_limits.learns(p)}, now)
    return recorded


def _answering(outcomes: list[Outcome], now: datetime) -> set[str]:
    """Providers that refused calls at once in these outcomes and answer others: they are up."""
    refusing = {o.work.provider for o in outcomes if _slow_down(o)}
    if not refusing:
        return set()
    answered_now = {o.work.provider for o in outcomes if o.answered}
    return (refusing & answered_now) | circuits.answering(refusing - answered_now, now)


def _slow_down(outcome: Outcome) -> bool:
    """A refusal of calls beyond those the provider takes at once, rather than of a spent budget.

    A 429 that came while other calls were in flight, with headers that leave requests and
    tokens of the minute (or none at all), refused this call for the others. One whose headers
    leave nothing says the budget is spent, and one refusing a call made alone is not about
    calls at once: their Retry-After is the provider's word, and the job waits for it.
    """
    if not (outcome.refused and outcome.alongside):
        return False
    quota = outcome.quota
    return not (quota and 0 in (quota.requests_remaining, quota.tokens_remaining))


def _learn(outcome: Outcome, learnt: dict[str, "learnt_limits.Tally"]) -> None:
    """What the outcome teaches about the provider's limits: refusals, answers, tokens, headers."""
    work = outcome.work
    tally = learnt.setdefault(work.provider, learnt_limits.Tally())
    tally.saw(outcome.quota)
    if outcome.refused:
        tally.refused += 1
    elif outcome.answered and outcome.crowded:
        tally.answered += 1
    if outcome.grade is not None:
        used = outcome.grade.input_tokens + outcome.grade.output_tokens
        tally.tokens_back += work.estimated_tokens - used if used else 0
    elif outcome.blame in (Blame.PROVIDER, Blame.RUNNER):
        # Refused, failed before an answer, or never started: the reservation was not used.
        tally.tokens_back += work.estimated_tokens
        if outcome.blame == Blame.RUNNER:
            tally.requests_back += 1


def _tally(outcome: Outcome, tallies: dict[str, "circuits.Tally"]) -> None:
    if not (outcome.answered or outcome.blame == Blame.PROVIDER):
        return
    tally = tallies.setdefault(outcome.work.provider, circuits.Tally())
    if outcome.answered:
        tally.answered += 1
        return
    if _slow_down(outcome) and not outcome.work.probe:
        tally.slow_down += 1
    else:
        tally.faults += 1
    tally.reason = outcome.error
    if outcome.retry_after:
        tally.retry_after = max(tally.retry_after or 0, outcome.retry_after)
    tally.probe_failed |= outcome.work.probe


def _discarded(outcome: Outcome, recorded: Recorded) -> None:
    recorded.discarded += 1
    logger.info(
        "Discarded attempt %s of job %s: the job was re-queued or claimed again meanwhile.",
        outcome.work.attempt,
        outcome.work.job_id,
    )


def _update_grouped(jobs: list[GradingJob], fields: list[str]) -> None:
    """One UPDATE per set of identical new values rather than bulk_update's CASE per field.

    Jobs of one claim that complete together share every value, so a group of
    outcomes is usually one or two statements, and far less ORM work per job.
    """
    groups: dict[tuple, list[int]] = {}
    for job in jobs:
        values = tuple(getattr(job, name) for name in fields)
        groups.setdefault(values, []).append(job.pk)
    for values, pks in groups.items():
        claim_sql.set_outcome(pks, dict(zip(fields, values, strict=True)))


# What recording does with an outcome.
_COMPLETED, _RETRY, _AGAIN, _FAILED = "completed", "retry", "again", "failed"


def _disposition(outcome: Outcome) -> str:
    """completed; retry (the attempt counted); again (it did not); or failed."""
    work = outcome.work
    if outcome.grade is not None:
        return _COMPLETED
    if outcome.blame == Blame.RUNNER:
        return _AGAIN
    if outcome.blame == Blame.PROVIDER:
        if not work.probe and work.provider_retries + 1 >= PROVIDER_RETRY_LIMIT:
            return _FAILED
        return _AGAIN
    if outcome.transient and work.attempt < work.max_attempts:
        return _RETRY
    return _FAILED


def _ended_values(
    outcome: Outcome, now: datetime, stopped: set[int], answering: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, int]]:
    """The job's new outcome columns (JOB_OUTCOME_FIELDS, in order), and what to add to its counters.

    `answering`: providers that refused calls at once here while answering others (_answering).
    """
    work = outcome.work
    # From when the call could start, not from the claim: a staggered or rate-paced job
    # waits in hand first, and that wait is no part of grading it. started_at is that
    # same moment, so completed_at - started_at is duration_ms. A job going back to the
    # queue, or cancelled with its batch, gets none (dict.fromkeys below): no attempt
    # of it is under way, and a user should not see it as started.
    started = min(max(work.start_at, work.claimed_at), now)
    elapsed_ms = int((now - started).total_seconds() * 1000)
    values = dict.fromkeys(JOB_OUTCOME_FIELDS)
    values["last_error"] = ""
    add: dict[str, int] = {}
    disposition = _disposition(outcome)
    processing = work.settings.get("processing")
    if outcome.grade is None and outcome.billed is not None:
        add.update(_billed_counters(outcome.billed))
    if disposition == _AGAIN:
        # Not the job's failure: the attempt is given back.
        add["attempts"] = -1
        if outcome.blame == Blame.PROVIDER and not work.probe:
            add["provider_retries"] = 1
    if disposition in (_RETRY, _AGAIN) and work.batch_id in stopped:
        values.update(
            status=JobStatus.CANCELLED,
            completed_at=now,
            last_error=f"Cancelled with its batch; the last attempt had failed: {outcome.error}",
        )
    elif disposition == _COMPLETED:
        values.update(
            status=JobStatus.COMPLETED, started_at=started, completed_at=now, duration_ms=elapsed_ms
        )
    elif disposition == _RETRY:
        delay = backoff_delay(
            work.attempt,
            rule(processing, "backoff_base_s"),
            rule(processing, "backoff_max_s"),
            outcome.retry_after,
        )
        values.update(
            status=JobStatus.QUEUED,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=f"Attempt {work.attempt} of {work.max_attempts} failed: {outcome.error}",
        )
    elif disposition == _AGAIN:
        next_at = None
        if outcome.blame == Blame.PROVIDER and not (
            _slow_down(outcome) and outcome.work.provider in answering
        ):
            # Only a refusal of calls at once, by a provider that answers others, goes back
            # with no wait: the refusal took a slot away, so the job waits for a free one
            # instead. Held for its Retry-After, a job refused near the end of a batch kept
            # the whole batch waiting that long.
            delay = backoff_delay(
                min(work.provider_retries + 1, 6),
                rule(processing, "backoff_base_s"),
                rule(processing, "backoff_max_s"),
                outcome.retry_after,
            )
            next_at = now + timedelta(seconds=delay)
        values.update(
            status=JobStatus.QUEUED,
            next_attempt_at=next_at,
            last_error=f"{outcome.error} (not counted as an attempt: it will be tried again)",
        )
    else:
        if outcome.blame == Blame.PROVIDER:
            gave_up = f" (the provider failed on this document {work.provider_retries + 1} times)"
        else:
            gave_up = f" (gave up after {work.attempt} attempts)" if outcome.transient else ""
        values.update(
            status=JobStatus.FAILED,
            started_at=started,
            completed_at=now,
            duration_ms=elapsed_ms,
            last_error=f"{outcome.error}{gave_up}",
        )
    return values, add


def _billed_counters(billed: Billed) -> dict[str, Any]:
    """The job's billed_* columns to add to: what its failed attempt cost, kept beside its result's."""
    return {
        "billed_input_tokens": billed.input_tokens,
        "billed_output_tokens": billed.output_tokens,
        "billed_cost": billed.cost,
    }


def _count(outcome: Outcome, recorded: Recorded, stopped: set[int]) -> None:
    batch_id = outcome.work.batch_id
    if batch_id is not None:
        recorded.moved_batches.add(batch_id)
    disposition = _disposition(outcome)
    if disposition in (_RETRY, _AGAIN):
        if batch_id not in stopped:
            recorded.requeued += 1
            return
        recorded.cancelled += 1
    elif disposition == _COMPLETED:
        recorded.completed += 1
    else:
        recorded.failed += 1
    if batch_id is not None:
        recorded.touched_batches.add(batch_id)


def _result(outcome: Outcome, now: datetime) -> GradingResult:
    result = outcome.result or Outcome.graded(outcome.work, outcome.grade, outcome.latency_ms).result
    result.created_at = now
    return result


def stopped_batches(batch_ids) -> set[int]:
    """Those of the batches in which no job may start any more (cancelled, or gone)."""
    ids = {batch_id for batch_id in batch_ids if batch_id is not None}
    if not ids:
        return set()
    statuses = claim_sql.batch_statuses(ids)
    return {batch_id for batch_id in ids if statuses.get(batch_id) not in REQUEUE_BATCH_STATES}


# --- leases ---------------------------------------------------------------------


def renew_leases(work: list[Work], now: datetime | None = None, lease_s: int | None = None) -> int:
    """Extend the leases of jobs this worker still holds; a dead worker's simply run out."""
    if not work:
        return 0
    now = now or timezone.now()
    lease = timedelta(seconds=lease_s or settings.JOB_LEASE_SECONDS)
    return (
        GradingJob.objects.processing()
        .filter(pk__in=[item.job_id for item in work], claimed_by__in={item.token for item in work})
        .update(lease_expires_at=max(now, *(item.start_at for item in work)) + lease)
    )


def reap_expired_leases(now: datetime | None = None) -> Recorded:
    """The reaper: take over the jobs of dead claimants and of leases that ran out.

    Claims do the same as they go (claim_jobs); this is for when no runner claims.
    """
    now = now or timezone.now()
    with transaction.atomic():
        dead = list(
            LiveRunner.objects.filter(seen_at__lt=now - timedelta(seconds=RUNNER_STALE_S)).values_list(
                "claimant", flat=True
            )
        )
        reaped = take_over(now, dead)
        PaceClock.objects.filter(next_at__lt=now - STALE_CLOCK_AGE).delete()
        _forget_finished_batch_slots()
    return reaped


def _forget_finished_batch_slots() -> None:
    """Free call slots of batches with nothing left to run (a batch's slots are made per batch)."""
    unfinished = GradingJob.objects.unfinished().order_by().values_list("batch_id", flat=True).distinct()
    keys = {f"batch:{batch_id}" for batch_id in unfinished}
    free = CallSlot.objects.filter(provider__startswith="batch:", holder="")
    free.exclude(provider__in=keys).delete()


REAP_FIELDS = [*JOB_OUTCOME_FIELDS, "attempts", "suspect"]


def _claimant(token: str) -> str:
    """The runner of a claim token ("<claimant>/<claim number>")."""
    return token.rsplit("/", 1)[0]


def take_over(now: datetime, dead: list[str]) -> Recorded:
    """Re-queue the jobs of claimants that died (`dead`) and of leases that ran out; free their slots.

    Which job killed a worker is unknown when it had several in flight, so blame
    follows what is known. A claimant that held one job alone, or one suspect
    job (a claimant takes at most one suspect at a time), is the victim of that
    job: its attempt stays counted, and after max_attempts it ends failed. The
    others held with it get their attempt back and become suspect: claimed alone
    from then on, until they end. So a document that kills its worker every time
    uses up its own attempts, and the jobs beside it finish.

    Batch rows are locked (FOR KEY SHARE, in id order) before the jobs, as when
    recording, so nothing goes back into the queue of a batch being cancelled.
    SKIP LOCKED on the jobs: a row locked right now belongs to a worker
    recording it, which is proof enough that it is alive.
    """
    reaped = Recorded()
    lost = Q(lease_expires_at__lt=now)
    for claimant in dead:
        lost |= Q(claimed_by__startswith=f"{claimant}/")
    taken = GradingJob.objects.processing().filter(lost)
    batch_ids = set(taken.order_by().values_list("batch_id", flat=True).distinct())
    statuses = claim_sql.lock_batches(batch_ids)
    stopped = {batch_id for batch_id, status in statuses.items() if status not in REQUEUE_BATCH_STATES}
    jobs = list(
        taken.select_for_update(skip_locked=True).only(
            "id", "batch_id", "attempts", "max_attempts", "settings", "claimed_by", *REAP_FIELDS
        )[:REAP_LIMIT]
    )
    by_claimant: dict[str, list[GradingJob]] = {}
    for job in jobs:
        by_claimant.setdefault(_claimant(job.claimed_by), []).append(job)
    for held in by_claimant.values():
        suspects = [job for job in held if job.suspect]
        blamed = suspects or (held if len(held) == 1 else [])
        for job in held:
            _reap(job, now, reaped, blamed=job in blamed, others=len(held) - 1, stopped=stopped)
            if job.batch_id is not None:
                reaped.moved_batches.add(job.batch_id)
    _update_grouped(jobs, REAP_FIELDS)
    if dead:
        CallSlot.objects.filter(holder__in=dead).update(holder="", lease_expires_at=None)
        circuits.release_probes(dead)
        LiveRunner.objects.filter(
            claimant__in=dead, seen_at__lt=now - timedelta(seconds=RUNNER_STALE_S)
        ).delete()
    if jobs or dead:
        logger.warning(
            "Took over %d job(s) of %d stopped runner(s) or expired leases: %d re-queued, %d failed, %d cancelled.",
            len(jobs),
            len(dead),
            reaped.requeued,
            reaped.failed,
            reaped.cancelled,
        )
    return reaped


def _reap(
    job: GradingJob, now: datetime, reaped: Recorded, blamed: bool, others: int, stopped: set[int]
) -> None:
    stopped_msg = (
        f"The worker grading attempt {job.attempts} of {job.max_attempts} stopped before it finished"
    )
    job.lease_expires_at = None
    if job.batch_id in stopped:
        job.status, job.completed_at, job.next_attempt_at = JobStatus.CANCELLED, now, None
        job.last_error = f"{stopped_msg}; its batch was cancelled meanwhile."
        reaped.cancelled += 1
        reaped.touched_batches.add(job.batch_id)
        return
    if not blamed:
        # Not known to be the cause: the attempt is given back, and the job is claimed alone from now on.
        job.attempts = max(job.attempts - 1, 0)
        job.suspect = True
        job.status, job.completed_at, job.next_attempt_at = JobStatus.QUEUED, None, None
        job.last_error = (
            f"{stopped_msg}, with {others} other job(s) in flight; it will be tried again alone "
            "(this attempt does not count)."
        )
        reaped.requeued += 1
        return
    if job.attempts >= job.max_attempts:
        job.status, job.completed_at, job.next_attempt_at = JobStatus.FAILED, now, None
        job.last_error = f"{stopped_msg}; gave up after {job.attempts} attempts."
        reaped.failed += 1
        if job.batch_id is not None:
            reaped.touched_batches.add(job.batch_id)
        return
    processing = job.settings.get("processing")
    delay = backoff_delay(job.attempts, rule(processing, "backoff_base_s"), rule(processing, "backoff_max_s"))
    job.status, job.completed_at = JobStatus.QUEUED, None
    job.next_attempt_at = now + timedelta(seconds=delay)
    job.last_error = f"{stopped_msg}; it will be tried again."
    reaped.requeued += 1


# --- live runners -----------------------------------------------------------------


def runner_alive(claimant: str, now: datetime | None = None) -> None:
    now = now or timezone.now()
    # One upsert statement rather than update_or_create's transaction of two or three.
    LiveRunner.objects.bulk_create(
        [LiveRunner(claimant=claimant, seen_at=now)],
        update_conflicts=True,
        unique_fields=["claimant"],
        update_fields=["seen_at"],
    )


def runner_gone(claimant: str) -> None:
    LiveRunner.objects.filter(claimant=claimant).delete()


def work_waiting(now: datetime | None = None) -> bool:
    """Anything for a runner to do: claimable jobs, or jobs of dead claimants or run-out leases to take over."""
    now = now or timezone.now()
    return (
        GradingJob.objects.claimable(now).exists()
        or GradingJob.objects.lease_expired(now).exists()
        or LiveRunner.objects.filter(seen_at__lt=now - timedelta(seconds=RUNNER_STALE_S)).exists()
    )


def forget_dead_neighbours(now: datetime | None = None) -> int:
    """Mark dead, at once, the runners of this host whose process no longer exists.

    Called when a worker process starts: after a crash or a restart, its
    predecessors' jobs are then taken over by the next claim instead of five
    seconds later. Only processes known to be gone are marked (a pid in use,
    even by another program, counts as alive); other hosts' runners are left
    to their presence going stale.
    """
    now = now or timezone.now()
    host = socket.gethostname()[:60]
    gone = []
    for claimant in LiveRunner.objects.filter(claimant__startswith=f"{host}:").values_list(
        "claimant", flat=True
    ):
        try:
            pid = int(claimant.rsplit(":", 2)[1])
        except (IndexError, ValueError):
            continue
        if not _process_alive(pid):
            gone.append(claimant)
    if gone:
        stale = now - timedelta(seconds=RUNNER_STALE_S + 1)
        LiveRunner.objects.filter(claimant__in=gone).update(seen_at=stale)
    return len(gone)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie (state Z) has died and waits for its parent to reap it.
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def live_runners(now: datetime | None = None) -> int:
    now = now or timezone.now()
    return LiveRunner.objects.filter(seen_at__gte=now - timedelta(seconds=RUNNER_STALE_S)).count()


# --- call slots -------------------------------------------------------------------


def hold_slots(
    claimant: str,
    provider: str,
    cap: int,
    want: int,
    now: datetime | None = None,
    lease_s: int | None = None,
) -> int:
    """Hold `want` of the provider's `cap` call slots, or as many as are free; renew their lease.

    Returns how many the claimant holds now. Slots beyond `want` (or numbered
    beyond a cap that shrank) are given back. A slot whose holder's lease ran out
    is free to take; the holder's renewal is conditional on still being its
    holder, so a slot taken over is never held twice.
    """
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=lease_s or settings.JOB_LEASE_SECONDS)
    with transaction.atomic():
        held = list(
            CallSlot.objects.filter(provider=provider, holder=claimant)
            .order_by("number")
            .values_list("pk", "number")
        )
        keep = [pk for pk, number in held if number < cap][:want]
        give_back = [pk for pk, _ in held if pk not in keep]
        if give_back:
            release_slots(claimant, give_back)
        renewed = CallSlot.objects.filter(pk__in=keep, holder=claimant).update(lease_expires_at=lease_until)
        taken = 0
        if renewed < want:
            taken = _take_slots(claimant, provider, cap, want - renewed, now, lease_until)
    return renewed + taken


def _take_slots(
    claimant: str, provider: str, cap: int, count: int, now: datetime, lease_until: datetime
) -> int:
    taken = _take_free_slots(claimant, provider, cap, count, now, lease_until)
    if taken < count:
        if CallSlot.objects.filter(provider=provider, number__lt=cap).count() < cap:
            # The first claimant under this cap creates its slots.
            CallSlot.objects.bulk_create(
                [CallSlot(provider=provider, number=number) for number in range(cap)], ignore_conflicts=True
            )
        # Once more: slots another claimant was creating are committed by now.
        taken += _take_free_slots(claimant, provider, cap, count - taken, now, lease_until)
    return taken


def _take_free_slots(
    claimant: str, provider: str, cap: int, count: int, now: datetime, lease_until: datetime
) -> int:
    free = list(
        CallSlot.objects.filter(provider=provider, number__lt=cap)
        .filter(Q(holder="") | Q(lease_expires_at__lte=now))
        .exclude(holder=claimant)
        .order_by("number")
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:count]
    )
    if not free:
        return 0
    return CallSlot.objects.filter(pk__in=free).update(holder=claimant, lease_expires_at=lease_until)


def release_slots(claimant: str, slot_ids: list[int] | None = None) -> int:
    """Give back the claimant's slots among `slot_ids`, or every one it holds (a runner that stops)."""
    held = CallSlot.objects.filter(holder=claimant)
    if slot_ids is not None:
        held = held.filter(pk__in=slot_ids)
    return held.update(holder="", lease_expires_at=None)
