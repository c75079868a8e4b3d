"""Limits learnt from the provider: how many calls at once it takes, and what its headers say is left.

Concurrency (AIMD). A remote provider's calls in flight are bounded by its call slots
(grading.claims.hold_slots); how many slots there are is its configured cap until the
provider says otherwise. A 429 or 529 overloaded cuts the number. The refusals of one event
(CUT_WINDOW_S from its first: calls already in flight are refused too) say how many calls
were too many, so the cut is to the calls the provider took — those in flight when it
refused, less the refused — and by DECREASE (×0.7) at most, the multiplicative cut an
overloaded provider, refusing them all, gets. Cutting a third on every refusal (plain AIMD)
kept a provider that takes 32 at once between 22 and 32. Runs of answers grow the number
again by one, up to the configured cap, counting only answers to calls that took their
runner's last slot (a cap nobody reaches proves nothing). A provider with no configured cap
starts at UNKNOWN_START and grows by one per answer (doubling per round of calls, as TCP's
slow start) up to SLOW_START_DOUBLING, by half a call per answer past it (×1.5 per round, so
the round that meets the provider's limit oversteps it by less), and by half from the start
once the provider has ever refused, until it refuses. How many calls were in flight at the last refusal is kept
(`wall`), and how many of them it refused (`cut_refusals`): up to the calls it took then
(the wall less the refused; the wall less one after a storm of refusals, which says less)
the number grows back quickly (one per quarter round), past them
only after PROBE_ROUNDS rounds of answers, so a provider that accepts 32 at once, configured
with 128 or not at all, settles at 32 with a refused probe every few seconds. (Growing
quickly up to the wall itself kept it one or two above what the provider takes — the slots
held at a refusal count some not in use — and refusing every few rounds.)

Refusals that are not a wall. A provider also refuses at random (a shared limit, a busy
minute): refusals that come while the calls in flight are at most what a cut at the last wall
would leave (wall × DECREASE) say nothing about how many calls at once it takes, when the
provider took most of the calls in flight at that wall (a storm of refusals may set a wall
far too high) and it was set lately. They cut nothing, and leave the wall as it was; the Retry-After waits
and the circuits (grading.circuits) deal with a provider that refuses everything. No cut
goes below LEARNT_MIN (2): a lone call refused says nothing of a concurrency limit, and a
server that takes one call at once is given a configured cap of 1. And a wall
is only kept while refusals confirm it: once no refusal has come for
LEARNT_LIMIT_RELAX_AFTER (10 minutes), the learnt number relaxes halfway back to the
configured cap (UNKNOWN_START when there is none), and halfway again each such period, and
the first answer recorded after that forgets the wall and grows again as a slow start, so a
bad minute today is not the limit of tomorrow's batch.

Rate limits. Requests and tokens per minute are buckets that mirror the provider's: what was
left at a moment and the per-minute limit, refilled at the limit per minute. A claim spends
one request and the job's estimated tokens (document, prompt and the most output it may ask
for) and takes no job the bucket cannot pay for, so calls slow down before the wall instead
of meeting it; the recorded reply trues the tokens up with its usage and, when it carries
rate-limit headers, replaces the figures with the provider's own. A configured TPM
(ProviderLimits.tokens_per_minute) is a bucket from the start; headers alone start one.

Everything is keyed by the provider name a job carries and lives in one row per provider
(ProviderLimitState), written in the transactions that claim and record, so every worker on
every node sees the same figures.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from grading.limits import provider_limits
from grading.models import CallSlot, ProviderLimitState
from grading.providers import Quota, UnknownProvider, provider_class

# How much of the calls in flight a refusal leaves (multiplicative decrease).
DECREASE = 0.7
# The same for the first refusal of a provider: its cap, configured or grown, was a guess.
FIRST_DECREASE = 0.5
# A refusal within this long of the last cut cuts nothing more.
CUT_WINDOW_S = 0.5
# Calls at once for a remote provider with no configured cap, before any refusal.
UNKNOWN_START = 8
# The most calls at once learnt for a provider with no configured cap.
LEARNT_MAX = 512
# The fewest calls at once refusals cut to (within the configured cap): refusals with one or two
# calls in flight are not a concurrency limit; a server that takes one call at once is configured so.
LEARNT_MIN = 2
# Rounds of answers at the wall before one more call at once is tried.
PROBE_ROUNDS = 8
# Slow start doubles up to this many calls at once, and grows by half per round past it.
SLOW_START_DOUBLING = 16
SECONDS_PER_MINUTE = 60.0
# How far (in seconds of the limit's refill) the mirror may stay below a reply's figure.
HEADER_SLACK_S = 1.0


def learns(provider: str) -> bool:
    """Whether the provider's limits are learnt: a remote one (an offline grader has none to learn)."""
    try:
        return not provider_class(provider).offline
    except UnknownProvider:
        return False


def effective_cap(
    state: ProviderLimitState | None, configured: int | None, now: datetime | None = None
) -> int:
    """The calls at once the provider is given now: learnt, within the configured cap, relaxed when stale."""
    if state is None or state.concurrency is None:
        return configured or UNKNOWN_START
    learnt = max(1, min(state.concurrency, configured or LEARNT_MAX))
    periods = _stale_periods(state, now or timezone.now())
    if not periods:
        return learnt
    # Halfway back to what a provider never refused would be given, for each stale period.
    target = configured or max(UNKNOWN_START, learnt)
    return target - (target - learnt) // 2**periods if learnt < target else learnt


def _stale_periods(state: ProviderLimitState, now: datetime) -> int:
    """How many LEARNT_LIMIT_RELAX_AFTER periods have passed since a refusal last confirmed the wall."""
    relax_after = settings.LEARNT_LIMIT_RELAX_AFTER.total_seconds()
    if state.cut_at is None or relax_after <= 0:
        return 0
    return min(int((now - state.cut_at).total_seconds() // relax_after), 30)


def _not_a_wall(state: ProviderLimitState, level: int, now: datetime) -> bool:
    """Whether refusals with `level` calls in flight say nothing of how many calls at once the provider takes.

    So when a wall a refusal set lately, and believed (the provider took most of the calls in
    flight then: a storm of refusals may set a wall far too high), is further above them
    than a cut at it would leave.
    """
    if not state.wall or state.cut_at is None or _stale_periods(state, now):
        return False
    cut = math.floor(state.wall * DECREASE)
    return state.wall - state.cut_refusals >= cut and level <= cut


def caps(providers) -> dict[str, int]:
    """The effective cap of each of these providers (see effective_cap)."""
    states = {state.provider: state for state in ProviderLimitState.objects.filter(provider__in=providers)}
    now = timezone.now()
    return {
        name: effective_cap(states.get(name), provider_limits(name).max_concurrency, now)
        for name in providers
    }


# --- what a round of recording tells -------------------------------------------------


@dataclass
class Tally:
    """One provider's outcomes in a round of recording, for its learnt limits."""

    # Answers to calls made while every slot was in use: only these show the cap was enough.
    answered: int = 0
    refused: int = 0
    # Estimated tokens given back: reserved at claim time and not used (estimate − usage).
    tokens_back: float = 0.0
    # Requests given back: calls that never started.
    requests_back: int = 0
    # What the replies' rate-limit headers said is left.
    quotas: list[Quota] = field(default_factory=list)

    def saw(self, quota: Quota | None) -> None:
        if quota:
            self.quotas.append(quota)

    def __bool__(self) -> bool:
        return bool(self.answered or self.refused or self.tokens_back or self.requests_back or self.quotas)


def record(tallies: dict[str, Tally], now: datetime) -> None:
    """In the transaction that records outcomes: AIMD, token true-ups and the headers' figures."""
    for provider in sorted(tallies):
        tally = tallies[provider]
        if not tally:
            continue  # nothing learnt: the row is not touched
        state = _locked(provider)
        if tally.refused or tally.answered:
            _concurrency(state, tally, now)
        _true_up(state, tally)
        _headers(state, tally.quotas, now)
        state.save()


def _locked(provider: str) -> ProviderLimitState:
    state, _ = ProviderLimitState.objects.get_or_create(provider=provider)
    if connection.vendor == "postgresql":
        # Claims and other recorders change the same row; rows are always locked in name order.
        state = ProviderLimitState.objects.select_for_update().get(provider=provider)
    return state


def _concurrency(state: ProviderLimitState, tally: Tally, now: datetime) -> None:
    configured = provider_limits(state.provider).max_concurrency
    current = effective_cap(state, configured, now)
    if _stale_periods(state, now):
        # No refusal confirmed the wall for a while: what was learnt then is relaxed (see
        # effective_cap) and the wall forgotten; the provider's next refusal sets a new one.
        state.concurrency, state.wall, state.cut_at = current, None, None
        state.cut_refusals, state.wall_first, state.cut_ignored, state.successes = 0, False, False, 0
    if tally.refused:
        state.refusals += tally.refused
        if state.cut_at is None or now - state.cut_at >= timedelta(seconds=CUT_WINDOW_S):
            # A new refusal event. The runner of a refused call gives its slot back at once,
            # so the calls in flight when it came were the slots held now and the refused ones.
            level = min(current, _slots_held(state.provider) + tally.refused)
            state.cut_ignored = _not_a_wall(state, level, now)
            if state.cut_ignored:
                # Fewer calls in flight than a cut at the wall leaves: not a concurrency limit
                # (random refusals, a busy minute). The wall and the number stay.
                state.cut_at = now
                return
            state.wall_first = state.wall is None
            state.wall, state.cut_at, state.cut_refusals, state.successes = max(level, 1), now, 0, 0
        elif state.cut_ignored:
            return  # more refusals of an event that was not a wall
        # The refusals of one event say how many calls were too many: the cut is to those the
        # provider took. It is never by more than the multiplicative one (an overloaded
        # provider refuses them all), and calls refused later in the event only cut further.
        state.cut_refusals += tally.refused
        took = state.wall - state.cut_refusals
        # The first refusal ends a cap never confirmed (a guess, or slow start's doubling,
        # which overshoots by up to twice): it may halve, as TCP does when slow start ends.
        decrease = FIRST_DECREASE if state.wall_first else DECREASE
        state.concurrency = min(current, max(LEARNT_MIN, math.floor(state.wall * decrease), took))
        return
    state.successes += tally.answered
    ceiling = configured or LEARNT_MAX
    if current >= ceiling:
        state.successes = 0
        return
    grown = current
    while state.successes >= (run := _run_to_grow(state, grown)) and grown < ceiling:
        state.successes -= run
        grown += 1
    if grown != current:
        state.concurrency = grown
        if state.wall is not None and grown >= state.wall:
            # The provider took the wall's number at once for a long run: its limit moved up.
            state.wall, state.cut_refusals = grown + 1, 1


def _run_to_grow(state: ProviderLimitState, current: int) -> int:
    """Answers in a row after which one more call at once is tried."""
    if state.wall is None:
        # Slow start: doubling per round while small and never refused, by half a round past
        # that, so the round that meets the provider's limit oversteps it by less.
        return 1 if current < SLOW_START_DOUBLING and not state.refusals else 2
    if current < _known_good(state):
        return max(1, current // 4)  # back to what it took at the last refusal, quickly
    return PROBE_ROUNDS * current


def _known_good(state: ProviderLimitState) -> int:
    """How many calls at once the provider is known to take: those it took at the last refusal.

    That is the wall less the refused, when the cut believed it. A storm of refusals (slow
    start overshooting, calls refused long after the slots were counted) says less than the
    multiplicative cut: then only that the wall was too many.
    """
    took = state.wall - max(state.cut_refusals, 1)
    return took if took >= math.floor(state.wall * DECREASE) else state.wall - 1


def _slots_held(provider: str) -> int:
    return CallSlot.objects.filter(provider=provider).exclude(holder="").count()


def _true_up(state: ProviderLimitState, tally: Tally) -> None:
    if state.tokens_left is not None and tally.tokens_back:
        state.tokens_left = _within(state.tokens_left + tally.tokens_back, state.tokens_limit)
    if state.requests_left is not None and tally.requests_back:
        state.requests_left = _within(state.requests_left + tally.requests_back, state.requests_limit)


def _within(value: float, limit: int | None) -> float:
    return min(value, limit) if limit else value


def _headers(state: ProviderLimitState, quotas: list[Quota], now: datetime) -> None:
    """The provider's own figures correct the mirror's: the reply that leaves least in the round.

    A reply says what was left when it was sent (refilled since), before the calls claimed
    since reached the provider; the mirror has spent those already. So the lower of the two
    is kept — the provider's figure when others share its limit, the mirror's when calls are
    on their way — but the token mirror never stays more than HEADER_SLACK_S of the limit
    below the provider's figure, or estimates that ran high would leave its burst unspent.
    """
    for kind in ("requests", "tokens"):
        seen = [quota for quota in quotas if getattr(quota, f"{kind}_remaining") is not None]
        if not seen:
            continue
        quota = min(seen, key=lambda item: _left_now(item, kind, now))
        limit = getattr(quota, f"{kind}_limit")
        reset_s = getattr(quota, f"{kind}_reset_s")
        left = _left_now(quota, kind, now)
        mirrored = Allowance.projected(state, kind, now)
        if mirrored is not None and kind == "tokens":
            # Never above the provider's figure, and never further below it than a second of
            # its limit: the mirror's token estimates run high, and left alone it would keep
            # the provider's whole burst unspent. (Requests are counted exactly: the lower.)
            floor = left - (limit or 0) / SECONDS_PER_MINUTE * HEADER_SLACK_S
            left = min(left, max(mirrored, floor))
        elif mirrored is not None:
            left = min(left, mirrored)
        setattr(state, f"{kind}_left", left)
        setattr(state, f"{kind}_at", now)
        if limit:
            setattr(state, f"{kind}_limit", limit)
        setattr(state, f"{kind}_reset_at", now + timedelta(seconds=reset_s) if reset_s is not None else None)


def _left_now(quota: Quota, kind: str, now: datetime) -> float:
    """What a reply said was left, refilled since it came (a round is recorded up to 50 ms later)."""
    left = float(getattr(quota, f"{kind}_remaining"))
    limit = getattr(quota, f"{kind}_limit")
    if limit and quota.seen_at is not None:
        left = min(float(limit), left + max(now.timestamp() - quota.seen_at, 0) * limit / SECONDS_PER_MINUTE)
    return left


# --- what a claim may spend --------------------------------------------------------------


class Allowance:
    """One provider's request and token buckets during a claim: spend, or say no."""

    def __init__(self, state: ProviderLimitState, configured_tpm: int, now: datetime):
        self.state = state
        self.now = now
        if configured_tpm and (not state.tokens_limit or configured_tpm < state.tokens_limit):
            state.tokens_limit = configured_tpm
        if state.tokens_limit and state.tokens_left is None:
            # A configured budget starts whole, as the provider's does.
            state.tokens_left, state.tokens_at = float(state.tokens_limit), now
        self.changed = False

    @property
    def counts_tokens(self) -> bool:
        return self.state.tokens_left is not None

    def spend(self, tokens: int) -> bool:
        """Take one request and `tokens` if both buckets have them; False (and nothing taken) if not."""
        requests = self._left("requests")
        token_left = self._left("tokens")
        if not _affords(requests, 1, self.state.requests_limit):
            return False
        if not _affords(token_left, tokens, self.state.tokens_limit):
            return False
        if requests is not None:
            self.state.requests_left, self.state.requests_at = requests - 1, self.now
            self.changed = True
        if token_left is not None:
            self.state.tokens_left, self.state.tokens_at = token_left - tokens, self.now
            self.changed = True
        return True

    def _left(self, kind: str) -> float | None:
        left = self.projected(self.state, kind, self.now)
        if left is None:
            setattr(self.state, f"{kind}_left", None)
        return left

    @staticmethod
    def projected(state: ProviderLimitState, kind: str, now: datetime) -> float | None:
        """What the bucket holds at `now`: what was left, refilled since at the limit per minute."""
        left = getattr(state, f"{kind}_left")
        if left is None:
            return None
        limit = getattr(state, f"{kind}_limit")
        at = getattr(state, f"{kind}_at") or now
        reset_at = getattr(state, f"{kind}_reset_at")
        if limit:
            refill = max((now - at).total_seconds(), 0) * limit / SECONDS_PER_MINUTE
            return min(float(limit), left + refill)
        if reset_at is not None and now >= reset_at:
            # No limit stated: whole again at the reset, and unknown until the next reply says.
            return None
        return left


def _affords(left: float | None, need: float, limit: int | None) -> bool:
    if left is None:
        return True
    # A call larger than the whole limit goes when the bucket is full, rather than never.
    return left >= need or (limit is not None and left >= limit)


def allowances(providers, now: datetime) -> dict[str, Allowance]:
    """The buckets of these providers, locked for the claim (in name order, as recorders lock them)."""
    budgets = {name: provider_limits(name).tokens_per_minute for name in providers}
    kept = Q(requests_left__isnull=False) | Q(tokens_left__isnull=False)
    counted = Q(provider__in=[name for name, tpm in budgets.items() if tpm]) | kept
    rows = ProviderLimitState.objects.filter(counted, provider__in=sorted(providers)).order_by("provider")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update()
    states = {state.provider: state for state in rows}
    found = {}
    for name in sorted(providers):
        state = states.get(name)
        if state is None and budgets[name]:
            state = ProviderLimitState(provider=name)
        if state is not None:
            found[name] = Allowance(state, budgets[name], now)
    return found


BUCKET_FIELDS = [
    f"{kind}_{part}" for kind in ("requests", "tokens") for part in ("limit", "left", "at", "reset_at")
]


def save(found: dict[str, Allowance]) -> None:
    """Write what the claim spent: only the buckets (the row is locked; a new one may race a recorder's)."""
    for allowance in found.values():
        if not allowance.changed:
            continue
        state = allowance.state
        if state._state.adding:
            ProviderLimitState.objects.bulk_create(
                [state], update_conflicts=True, unique_fields=["provider"], update_fields=BUCKET_FIELDS
            )
        else:
            state.save(update_fields=BUCKET_FIELDS)


# --- estimates --------------------------------------------------------------------------


def estimated_tokens(
    provider: str, model: str, settings: dict[str, Any], settings_key: str, text: str
) -> int:
    """A call's tokens before it is made: the document, the prompt and the most output it may ask for."""
    return _document_tokens(provider, model, text) + _fixed_tokens(provider, model, settings_key, settings)


@lru_cache(maxsize=4096)
def _document_tokens(provider: str, model: str, text: str) -> int:
    return provider_class(provider).tokenizer(model).count(text or "")


def _fixed_tokens(provider: str, model: str, settings_key: str, settings: dict[str, Any]) -> int:
    return _fixed_tokens_cached(provider, model, settings_key, _Settings(settings))


class _Settings:
    """A settings snapshot carried into the cache without being hashed (its key stands for it)."""

    def __init__(self, value: dict[str, Any]):
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other) -> bool:
        return isinstance(other, _Settings)


@lru_cache(maxsize=512)
def _fixed_tokens_cached(provider: str, model: str, settings_key: str, settings: _Settings) -> int:
    described = provider_class(provider)
    tokenizer = described.tokenizer(model)
    return described.prompt_overhead_tokens(settings.value, tokenizer) + described.max_output_tokens(
        settings.value, model
    )
