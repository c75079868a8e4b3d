"""Economy delivery: jobs graded through the providers' batch APIs, at half the price, within a day.

Which delivery a batch gets is decided once, here (`decide`), when it starts: `realtime`
and `economy` are the teacher's choice (economy only where the connection has a batch API,
and not within the margin before the deadline); `auto` takes economy when the provider's
connection has a batch API and the deadline leaves the provider's window (24 h) plus a
margin (6 h), realtime otherwise. Each job carries the outcome (GradingJob.delivery):
the runners never claim economy jobs; the economy engine (grading/economy_engine.py)
submits them in provider batches and records their results through the same fenced
path as real-time calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from grading.providers import UnknownProvider, get_provider
from grading.statuses import Delivery

# Time kept in hand after the provider's window: a provider batch that takes its full
# window still leaves this long before the deadline, for its failed requests to be
# graded in real time.
MARGIN = timedelta(hours=6)


@dataclass(frozen=True)
class Decision:
    delivery: str
    # A sentence for the estimate and the batch page: why this delivery.
    reason: str

    @property
    def economy(self) -> bool:
        return self.delivery == Delivery.ECONOMY


def decide(rule: str, provider: str, deadline: datetime | None, now: datetime | None = None) -> Decision:
    """The delivery of a batch's jobs with `provider`, from its `delivery` rule and its deadline."""
    now = now or timezone.now()
    try:
        described = get_provider(provider)
    except UnknownProvider:
        return Decision(Delivery.REALTIME, f"the provider “{provider}” is not known here")
    if rule == Delivery.REALTIME:
        return Decision(Delivery.REALTIME, "real-time delivery was chosen")
    if not described.supports_batch_api():
        return Decision(Delivery.REALTIME, f"the {provider} connection has no batch API")
    window = described.batch_window
    if deadline_near(deadline, now):
        # The engine would move the jobs to real time at once (economy_engine.fall_back).
        return Decision(Delivery.REALTIME, f"the deadline is less than {_hours(MARGIN)} away")
    if rule == Delivery.ECONOMY:
        return Decision(Delivery.ECONOMY, f"economy delivery was chosen: results within {_hours(window)}")
    needed = window + MARGIN
    if deadline is None:
        return Decision(
            Delivery.REALTIME,
            f"no deadline is set; a deadline more than {_hours(needed)} away would allow economy delivery",
        )
    if deadline - now <= needed:
        return Decision(
            Delivery.REALTIME,
            f"the deadline is less than {_hours(needed)} away "
            f"(the provider's {_hours(window)} window and a {_hours(MARGIN)} margin)",
        )
    return Decision(
        Delivery.ECONOMY,
        f"the deadline is more than {_hours(needed)} away, so the provider's batch API grades at "
        f"{_percent(described.batch_discount)} of the price within {_hours(window)}",
    )


def deadline_near(deadline: datetime | None, now: datetime | None = None) -> bool:
    """Whether a batch with this deadline should stop waiting for provider batches."""
    return deadline is not None and deadline - (now or timezone.now()) <= MARGIN


def has_batch_api(provider: str) -> bool:
    try:
        return get_provider(provider).supports_batch_api()
    except UnknownProvider:
        return False


def window(provider: str) -> timedelta:
    """How long the provider's batch API may take: a provider batch's expected completion."""
    try:
        return get_provider(provider).batch_window
    except UnknownProvider:
        return timedelta(hours=24)


def discount(provider: str) -> Decimal:
    try:
        return get_provider(provider).batch_discount
    except UnknownProvider:
        return Decimal(1)


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


def _percent(share: Decimal) -> str:
    return f"{float(share) * 100:g} %"
