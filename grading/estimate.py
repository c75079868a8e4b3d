"""What running a batch's remaining jobs will take: provider calls, tokens and cost.

Each job's provider states how to figure these (grading.providers.base.Provider); this
module only counts. Each model's figures name the method used:

- Input, document text: with the provider's tokenizer for the model. The openai
  provider uses tiktoken's cl100k_base, which ships offline: exact for the models
  that use it, standing in (a few percent high for English) for o200k_base models,
  and characters / 4 for models tiktoken does not know; the builtin grader counts
  characters / 4, as it reports tokens itself. Up to MAX_TOKENIZED_CHARS of text
  is tokenised; beyond that the measured tokens-per-character ratio is applied to
  the rest, counted in the database.
- Input, prompt: the tokens the provider adds around the document (the openai
  provider's system prompt and response schema for this rubric plus the chat
  format's few tokens per message; none for the builtin grader).
- Output: the mean output tokens of this batch's own results from the same
  model when there are some; otherwise the provider's guess (by default an
  allowance per rubric criterion plus the overall feedback, capped by
  max_output_tokens).

Cost uses the provider's prices (Provider.price_for and cost_of; the openai
provider's table is overridable with MODEL_PRICES, the builtin grader costs
nothing). Prompt caching: where the provider caches a repeated prefix
(cache_min_tokens) and the shared prompt is at least that long, every call but
the first of each group is assumed to read the shared prompt from the cache, at
the provider's cached input price; the prompt is arranged so that it can
(grading/providers/prompting.py), but a cache that expires between calls (five
minutes or more without a call) costs its full price again. A provider no longer registered (a name from an old snapshot) is
counted as characters / 4 with no prompt and is not priced.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import Length

from grading import economy
from grading.models import Document, GradingJob, GradingResult, JobStatus
from grading.providers import Provider, Tokenizer, UnknownProvider, kind_of, provider_class
from grading.providers.base import (  # the figures' constants, importable from here as before
    APPROXIMATION,  # noqa: F401
    CHARS_PER_TOKEN,
    OUTPUT_TOKENS_OVERALL,  # noqa: F401
    OUTPUT_TOKENS_PER_CRITERION,  # noqa: F401
    REPLY_PRIMING_TOKENS,  # noqa: F401
    TOKENS_PER_MESSAGE,  # noqa: F401
)

MAX_TOKENIZED_CHARS = 2_000_000


def described(provider: str) -> type[Provider] | None:
    """The registered provider class, or None for a name the registry no longer knows."""
    try:
        return provider_class(provider)
    except UnknownProvider:
        return None


def unknown(provider: str) -> str:
    return f"unknown provider “{provider}”"


def tokenizer_for(provider: str, model: str) -> Tokenizer:
    """The best offline token counter for a model, and a sentence saying how good it is."""
    cls = described(provider)
    if cls is None:
        return Tokenizer("chars/4", f"characters / 4 ({unknown(provider)}: its tokenizer is not known)")
    return cls.tokenizer(model)


@dataclass
class Group:
    """Jobs that share a provider, model and settings, so their prompts cost the same."""

    provider: str
    model: str
    settings: dict[str, Any]
    tokenizer: Tokenizer
    described: type[Provider] | None = None  # None: a provider the registry does not know
    jobs: int = 0
    remaining: int = 0
    max_calls: int = 0
    document_tokens: int = 0
    measured_output: float | None = None


def estimate_batch(batch) -> dict[str, Any]:
    """Calls, tokens and cost of a batch's jobs not yet finished (all of them before it starts).

    batch only needs a primary key and effective_settings(overrides): the
    grading app does not import the batches app.
    """
    jobs = GradingJob.objects.filter(batch_id=batch.pk)
    groups = _groups(batch, jobs)
    _count_document_tokens(jobs, groups)
    _measure_output(jobs, groups)
    models = [_group_figures(group) for group in groups.values() if group.jobs]
    delivery = _delivery(batch, groups, models)
    spent = GradingResult.objects.filter(job__batch_id=batch.pk).aggregate(
        input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"), cost=Sum("cost")
    )
    # Calls billed for attempts that left no result (a repair's first call whose repair failed).
    failed = jobs.aggregate(
        input_tokens=Sum("billed_input_tokens"),
        output_tokens=Sum("billed_output_tokens"),
        cost=Sum("billed_cost"),
    )
    return {
        "scope": "jobs not yet finished (pending, queued or processing); before the start, every job",
        "jobs": sum(item["jobs"] for item in models),
        "provider_calls": sum(item["provider_calls"] for item in models),
        "max_provider_calls": sum(item["max_provider_calls"] for item in models),
        "input_tokens": sum(item["input_tokens"] for item in models),
        "output_tokens": sum(item["output_tokens"] for item in models),
        "cost": _dollars(sum((Decimal(str(item["cost"])) for item in models), Decimal(0))),
        "currency": "USD",
        "delivery": delivery,
        "by_model": models,
        "spent_so_far": {
            "input_tokens": (spent["input_tokens"] or 0) + (failed["input_tokens"] or 0),
            "output_tokens": (spent["output_tokens"] or 0) + (failed["output_tokens"] or 0),
            "cost": _dollars((spent["cost"] or Decimal(0)) + (failed["cost"] or Decimal(0))),
        },
    }


def _groups(batch, jobs) -> dict[tuple, Group]:
    """One group per (provider, model, overrides); jobs of a draft have no snapshot yet."""
    rows = (
        jobs.values("provider", "model", "overrides")
        .annotate(
            total=Count("id"),
            remaining=Count("id", filter=Q(status__in=JobStatus.unfinished())),
        )
        .order_by()
    )
    groups: dict[tuple, Group] = {}
    for row in rows:
        key = _key(row["provider"], row["model"], row["overrides"])
        if key not in groups:
            settings = batch.effective_settings(row["overrides"] or None)
            provider = row["provider"] or settings.get("provider", "builtin")
            model = row["model"] or settings.get("model", "")
            groups[key] = Group(
                provider, model, settings, tokenizer_for(provider, model), described(provider)
            )
        group = groups[key]
        group.jobs += row["remaining"]
        max_attempts = (settings_processing(group.settings)).get("max_attempts", 3)
        group.max_calls += row["remaining"] * int(max_attempts)
    return groups


def settings_processing(settings: dict[str, Any]) -> dict[str, Any]:
    processing = settings.get("processing")
    return processing if isinstance(processing, dict) else {}


def _key(provider: str, model: str, overrides) -> tuple:
    return provider, model, json.dumps(overrides or {}, sort_keys=True)


def _count_document_tokens(jobs, groups: dict[tuple, Group]) -> None:
    """Add each remaining job's document tokens to its group.

    Documents are tokenised once per tokenizer; after MAX_TOKENIZED_CHARS the
    tokens-per-character ratio measured so far is applied to each further
    document's length, which the database counts without sending the text.
    """
    remaining = jobs.filter(status__in=JobStatus.unfinished())
    per_document: dict[tuple[int, str], int] = {}
    tokenizers = {group.tokenizer.name: group.tokenizer for group in groups.values() if group.jobs}
    if tokenizers:
        _tokenize_documents(remaining, tokenizers, per_document)
    rows = remaining.values_list("document_id", "provider", "model", "overrides").iterator(chunk_size=2000)
    for document_id, provider, model, overrides in rows:
        group = groups[_key(provider, model, overrides)]
        group.document_tokens += per_document.get((document_id, group.tokenizer.name), 0)


def _tokenize_documents(jobs, tokenizers: dict[str, Tokenizer], per_document: dict) -> None:
    documents = Document.objects.filter(pk__in=jobs.values("document_id")).order_by("pk")
    budget = MAX_TOKENIZED_CHARS
    counted_chars = dict.fromkeys(tokenizers, 0)
    counted_tokens = dict.fromkeys(tokenizers, 0)
    last_pk = 0
    for pk, text in documents.values_list("pk", "text").iterator(chunk_size=200):
        if budget <= 0:
            break
        last_pk, budget = pk, budget - len(text)
        for name, tokenizer in tokenizers.items():
            tokens = tokenizer.count(text)
            per_document[(pk, name)] = tokens
            counted_chars[name] += len(text)
            counted_tokens[name] += tokens
    if budget > 0:
        return
    lengths = documents.filter(pk__gt=last_pk).annotate(chars=Length("text")).values_list("pk", "chars")
    for pk, chars in lengths.iterator(chunk_size=2000):
        for name in tokenizers:
            ratio = counted_tokens[name] / counted_chars[name] if counted_chars[name] else 1 / CHARS_PER_TOKEN
            per_document[(pk, name)] = math.ceil((chars or 0) * ratio)


def _measure_output(jobs, groups: dict[tuple, Group]) -> None:
    """Mean output tokens of results this batch already has, per provider and model."""
    rows = (
        GradingResult.objects.filter(job__in=jobs)
        .values("job__provider", "job__model")
        .annotate(mean=Avg("output_tokens"))
        .order_by()
    )
    measured = {(row["job__provider"], row["job__model"]): row["mean"] for row in rows}
    for group in groups.values():
        group.measured_output = measured.get((group.provider, group.model))


def prompt_overhead_tokens(group: Group) -> int:
    """Tokens each call sends besides the document, as the provider states them."""
    if group.described is None:
        return 0  # what an unknown provider sends is not known
    return group.described.prompt_overhead_tokens(group.settings, group.tokenizer)


def output_tokens_per_call(group: Group) -> tuple[int, str]:
    if group.measured_output is not None:
        return round(group.measured_output), "mean of this batch's results from the model"
    return (group.described or Provider).output_tokens_guess(group.settings)


def cached_prompt_tokens(group: Group) -> tuple[int, str]:
    """Input tokens expected from the prompt cache, and the assumption behind the figure."""
    minimum = group.described.cache_min_tokens if group.described else None
    if minimum is None:
        return 0, "no prompt caching"
    overhead = prompt_overhead_tokens(group)
    if overhead < minimum:
        return 0, f"the shared prompt ({overhead} tokens) is shorter than the {minimum} tokens a cache needs"
    return (
        max(group.jobs - 1, 0) * overhead,
        "the shared prompt read from the cache on every call but the first, at the cached input price",
    )


def _group_figures(group: Group) -> dict[str, Any]:
    output_each, output_method = output_tokens_per_call(group)
    input_tokens = group.document_tokens + group.jobs * prompt_overhead_tokens(group)
    output_tokens = group.jobs * output_each
    cached_tokens, cache_method = cached_prompt_tokens(group)
    if group.described is None:
        price_in, price_out, priced, cost = 0.0, 0.0, False, Decimal(0)
        price_cached = 0.0
        price_method = f"{unknown(group.provider)}: not priced"
    else:
        price_in, price_out = group.described.price_for(group.model)
        price_cached = group.described.cached_input_price(group.model)
        priced = group.described.is_priced(group.model)
        cost = group.described.cost_of(group.model, input_tokens, output_tokens, cached_tokens)
        price_method = group.described.price_method(group.model)
    return {
        "provider": group.provider,
        "kind": kind_of(group.provider) or None,
        "model": group.model,
        "jobs": group.jobs,
        "provider_calls": group.jobs,
        "max_provider_calls": group.max_calls,
        "input_tokens": input_tokens,
        "cached_input_tokens": cached_tokens,
        "output_tokens": output_tokens,
        "cost": _dollars(cost),
        "price_per_million_tokens": {"input": price_in, "cached_input": price_cached, "output": price_out},
        "priced": priced,
        "input_method": group.tokenizer.method,
        "output_method": output_method,
        "cache_method": cache_method,
        "price_method": price_method,
    }


def _delivery(batch, groups: dict[tuple, Group], models: list[dict[str, Any]]) -> dict[str, Any]:
    """Both prices (real-time, and economy through the providers' batch APIs) and which one applies, and why.

    Each model's row gets its own figures; the batch's are their sums. A provider without a
    batch API costs the same either way. The figures price what the decision would be now.
    """
    settings = batch.effective_settings()
    rule = settings_processing(settings).get("delivery") or "auto"
    deadline = getattr(batch, "deadline", None)
    chosen: list[economy.Decision] = []
    # Connections whose economy price is their real-time one, as they have no batch API: the
    # pages say so rather than offer a "provider batch" price that cannot be had.
    no_batch_api: list[str] = []
    for group, row in zip((g for g in groups.values() if g.jobs), models, strict=True):
        decision = economy.decide(rule, group.provider, deadline)
        cost = Decimal(str(row["cost"]))
        has_batch_api = _has_batch_api(group)
        if not has_batch_api and group.provider not in no_batch_api:
            no_batch_api.append(group.provider)
        economy_cost = cost * economy.discount(group.provider) if has_batch_api else cost
        row["economy_cost"] = _dollars(economy_cost)
        row["delivery"] = {"chosen": decision.delivery, "reason": decision.reason}
        chosen.append(decision)
    realtime_cost = sum((Decimal(str(row["cost"])) for row in models), Decimal(0))
    economy_cost = sum((Decimal(str(row["economy_cost"])) for row in models), Decimal(0))
    picked = {decision.delivery for decision in chosen}
    reasons = list(dict.fromkeys(decision.reason for decision in chosen))
    started = _started_delivery(batch)
    if started is not None:
        # Once started, the jobs carry what was decided (and what a near deadline changed).
        picked, reasons = started
    return {
        "rule": rule,
        "chosen": picked.pop() if len(picked) == 1 else ("mixed" if picked else "realtime"),
        "reasons": reasons,
        "realtime_cost": _dollars(realtime_cost),
        "economy_cost": _dollars(economy_cost),
        "economy_available": len(no_batch_api) < len(models),
        "no_batch_api": no_batch_api,
    }


def _started_delivery(batch) -> tuple[set[str], list[str]] | None:
    """The deliveries the unfinished jobs of a started batch carry, and why; None before the start."""
    jobs = GradingJob.objects.filter(batch_id=batch.pk, status__in=[JobStatus.QUEUED, JobStatus.PROCESSING])
    carried = set(jobs.values_list("delivery", flat=True).distinct())
    if not carried:
        return None
    return carried, [
        "it was decided when the batch started (a near deadline moves economy jobs to real time)"
    ]


def _has_batch_api(group: Group) -> bool:
    return group.described is not None and economy.has_batch_api(group.provider)


def _dollars(value: Decimal) -> float:
    return float(Decimal(value).quantize(Decimal("0.000001")))
