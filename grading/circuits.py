"""Provider health: one circuit per provider, shared by every worker through the database.

A failure that is the provider's — it refused the connection, timed out, answered
5xx or 429, said it was overloaded — says nothing about the job, so it uses up none
of the job's attempts (grading.claims re-queues the job and gives the attempt back).
It counts here instead. After CIRCUIT_FAILURES such failures in a row, with no
answer from the provider between them, the circuit opens: claims take no job of
that provider until `open_until`. Then a single job is claimed, the probe; an answer
(a grade, or a refusal that is the job's, such as a 400) closes the circuit and
work resumes at once; another failure opens it again, for twice as long (from
PROBE_BASE_S up to PROVIDER_PROBE_MAX_S, never shorter than the provider's
Retry-After). A single 429 therefore only delays its own job by its Retry-After.

A 429 or 529 that refuses calls beyond how many the provider takes at once, while it
keeps answering the others (an answer within ANSWERING_S), is "slow down", not an
outage: grading.learnt_limits lowers the calls at once, and the circuit leaves the
provider's other work running. Counted as failures, a burst of five such refusals
stopped every call for a whole Retry-After. A refusal that says a per-minute budget
is spent (its headers leave nothing) and refusals after the provider stopped
answering still count.

The circuit row is written in the transactions that record outcomes and claim
jobs, so every worker on every node sees the same state. A provider down for
longer than PROVIDER_OUTAGE_PAUSE_AFTER is announced with the `provider_outage`
signal; the batch lifecycle, which lives above this package, pauses the batches
waiting for it and notifies their owners.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from grading import claim_sql
from grading.models import GradingJob, JobStatus, ProviderCircuit
from grading.statuses import CLAIMING_BATCH_STATES

logger = logging.getLogger(__name__)

# Failures of the provider in a row, with no answer between, that open its circuit.
# A provider failing one call in ten (as the benchmarks' stand-in does) opens it
# about once in a hundred thousand runs of five; an outage fails the calls in flight
# all at once.
CIRCUIT_FAILURES = 5
# The first wait before a probe; it doubles with each failed probe, up to PROVIDER_PROBE_MAX_S.
PROBE_BASE_S = 0.5
# How long a probe may take before another job may probe (beyond its own timeout).
PROBE_MARGIN_S = 5.0
# A provider that answered this recently is up: refusals of calls at once are not failures.
ANSWERING_S = 2.0
# How often a provider's latest answer is written down (answered_at): enough for ANSWERING_S.
ANSWER_STAMP_S = 0.5

# Sent (by a runner, or the reaper) while a provider has been down for longer than
# PROVIDER_OUTAGE_PAUSE_AFTER. Arguments: provider, reason, since, batch_ids (the
# active batches with work for it). Receivers pause those batches.
provider_outage = Signal()


@dataclass
class Tally:
    """One provider's outcomes in a round of recording."""

    answered: int = 0
    faults: int = 0
    # Refusals of calls beyond those the provider takes at once: faults only if it stopped answering.
    slow_down: int = 0
    reason: str = ""
    retry_after: float | None = None
    probe_failed: bool = False


@cache
def _table() -> str:
    return connection.ops.quote_name(ProviderCircuit._meta.db_table)


def _adapt(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def record(tallies: dict[str, Tally], now: datetime) -> None:
    """In the transaction that records outcomes: an answer closes the circuit, failures may open it."""
    for provider, tally in tallies.items():
        if tally.answered:
            _close(provider)
            _stamp_answer(provider, now)
            continue
        if tally.slow_down and provider not in answering([provider], now):
            tally.faults += tally.slow_down
        if tally.faults:
            _failed(provider, tally, now)


def answering(providers, now: datetime) -> set[str]:
    """The providers among these that answered a call within ANSWERING_S: they are up."""
    since = now - timedelta(seconds=ANSWERING_S)
    rows = ProviderCircuit.objects.filter(provider__in=list(providers), answered_at__gte=since)
    return set(rows.values_list("provider", flat=True))


def _stamp_answer(provider: str, now: datetime) -> None:
    # At most one write per ANSWER_STAMP_S: every recorder of a busy provider comes here.
    table = _table()
    sql = (
        f"INSERT INTO {table} (provider, failures, opens, reason, probe_by, answered_at) "
        "VALUES (%s, 0, 0, '', '', %s) ON CONFLICT (provider) DO UPDATE SET answered_at = excluded.answered_at "
        f"WHERE {table}.answered_at IS NULL OR {table}.answered_at < %s"
    )
    stale = now - timedelta(seconds=ANSWER_STAMP_S)
    with connection.cursor() as cursor:
        cursor.execute(sql, [provider, _adapt(now), _adapt(stale)])


def _close(provider: str) -> None:
    sql = (
        f"UPDATE {_table()} SET failures = 0, opens = 0, open_until = NULL, since = NULL, reason = '', "
        "probe_by = '', probe_until = NULL WHERE provider = %s AND (failures > 0 OR open_until IS NOT NULL) "
        "RETURNING since"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [provider])
        row = cursor.fetchone()
    if row is not None and row[0] is not None:
        logger.warning("Provider %s answers again: its circuit is closed and its jobs are claimed.", provider)


def _failed(provider: str, tally: Tally, now: datetime) -> None:
    table = _table()
    sql = (
        f"INSERT INTO {table} (provider, failures, opens, reason, probe_by) VALUES (%s, %s, 0, %s, '') "
        f"ON CONFLICT (provider) DO UPDATE SET failures = {table}.failures + excluded.failures, "
        "reason = excluded.reason RETURNING failures, opens, open_until, since"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [provider, tally.faults, tally.reason[:2000]])
        failures, opens, open_until, since = cursor.fetchone()
    open_until, since = _aware(open_until), _aware(since)
    if open_until is not None and open_until > now and not tally.probe_failed:
        # Already open: these are calls that were in flight when it opened.
        return
    if open_until is None and failures < CIRCUIT_FAILURES and not tally.probe_failed:
        return
    wait = min(PROBE_BASE_S * 2**opens, settings.PROVIDER_PROBE_MAX_S)
    if tally.retry_after:
        wait = max(wait, tally.retry_after)
    ProviderCircuit.objects.filter(provider=provider).update(
        opens=opens + 1,
        open_until=now + timedelta(seconds=wait),
        since=since or now,
        probe_by="",
        probe_until=None,
    )
    if since is None:
        logger.warning(
            "Provider %s is failing (%s): no more of its jobs are claimed; a probe in %.1f s.",
            provider,
            tally.reason,
            wait,
        )


def _aware(value):
    return claim_sql.read_datetime(value)


def lock_for_probe(provider: str) -> bool:
    """Lock the provider's circuit for a probe claim; False when a recorder holds it (skip the probe)."""
    rows = ProviderCircuit.objects.filter(provider=provider).select_for_update(skip_locked=True)
    return rows.values_list("pk", flat=True).first() is not None


def take_probe(provider: str, token: str, until: datetime) -> None:
    ProviderCircuit.objects.filter(provider=provider).update(probe_by=token, probe_until=until)


def release_probes(claimants: list[str]) -> None:
    """Probes held by claimants that died may be tried again at once."""
    if claimants:
        held = Q()
        for claimant in claimants:
            held |= Q(probe_by__startswith=f"{claimant}/")
        ProviderCircuit.objects.filter(held).update(probe_by="", probe_until=None)


@dataclass(frozen=True)
class Outage:
    provider: str
    reason: str
    since: datetime
    open_until: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "reason": self.reason, "since": self.since}


def outages(providers: list[str] | None = None) -> dict[str, Outage]:
    """Providers whose circuit is not closed, with why and since when."""
    rows = ProviderCircuit.objects.filter(open_until__isnull=False, since__isnull=False)
    if providers is not None:
        rows = rows.filter(provider__in=providers)
    return {
        row.provider: Outage(row.provider, row.reason, row.since, row.open_until)
        for row in rows.only("provider", "reason", "since", "open_until")
    }


def announce_long_outages(now: datetime | None = None) -> list[str]:
    """Send provider_outage for each provider down longer than PROVIDER_OUTAGE_PAUSE_AFTER.

    Only batches still active with work for that provider are named; once they are
    paused, the next look names none, so the signal is sent once per batch. A batch that
    still has work for a provider that answers (a comparison across connections, one of
    them down) is named only once that work is done: pausing it would stop the grading
    that goes on.
    """
    now = now or timezone.now()
    cut_off = now - settings.PROVIDER_OUTAGE_PAUSE_AFTER
    announced = []
    down = outages()
    unfinished = GradingJob.objects.filter(
        status__in=[JobStatus.QUEUED, JobStatus.PROCESSING], batch__status__in=CLAIMING_BATCH_STATES
    ).order_by()
    for outage in down.values():
        if outage.since > cut_off:
            continue
        waiting = set(
            unfinished.filter(provider=outage.provider).values_list("batch_id", flat=True).distinct()
        )
        still_graded = set(
            unfinished.filter(batch_id__in=waiting)
            .exclude(provider__in=list(down))
            .values_list("batch_id", flat=True)
            .distinct()
        )
        batch_ids = sorted(waiting - still_graded)
        if batch_ids:
            provider_outage.send_robust(
                sender=ProviderCircuit,
                provider=outage.provider,
                reason=outage.reason,
                since=outage.since,
                batch_ids=batch_ids,
            )
            announced.append(outage.provider)
    return announced
