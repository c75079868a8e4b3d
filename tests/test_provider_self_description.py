"""A provider states its own limits, prices, token counting and prompt overhead.

Adding a provider is one module plus one entry in the registry: limits and estimates ask
the provider class, never its name.
"""

import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from grading import estimate, providers
from grading.limits import provider_limits
from grading.providers import (
    PROVIDERS,
    Grade,
    GradeRequest,
    Provider,
    ProviderLimits,
    Tokenizer,
    available_providers,
    provider_class,
)
from tests.conftest import make_batch, make_document


class MeteredProvider(Provider):
    """A throw-away provider: one token per word, a flat prompt, its own prices and caps."""

    name = "metered"

    @classmethod
    def limits(cls) -> ProviderLimits:
        return ProviderLimits(max_concurrency=5, requests_per_minute=60, source="the test")

    @classmethod
    def price_for(cls, model: str) -> tuple[float, float]:
        return (1.0, 2.0) if model == "m-1" else (0.0, 0.0)

    @classmethod
    def tokenizer(cls, model: str) -> Tokenizer:
        return Tokenizer("words", "one token per word", lambda text: len(text.split()))

    @classmethod
    def prompt_overhead_tokens(cls, settings, tokenizer) -> int:
        return 100

    @classmethod
    def output_tokens_guess(cls, settings) -> tuple[int, str]:
        return 50, "fifty per call"

    def grade(self, request: GradeRequest) -> Grade:
        raise NotImplementedError


@pytest.fixture
def metered(monkeypatch):
    monkeypatch.setitem(PROVIDERS, "metered", f"{__name__}.MeteredProvider")
    monkeypatch.setattr(providers, "_classes", {})
    monkeypatch.setattr(providers, "_instances", {})


def test_a_registered_provider_s_own_limits_are_kept(metered):
    assert "metered" in available_providers()
    assert provider_limits("metered") == ProviderLimits(max_concurrency=5, requests_per_minute=60)
    assert provider_limits("metered").source == "the test"


def test_a_registered_provider_is_estimated_with_its_own_tokens_and_prices(owner, metered):
    essays = ["one two three four", "five six seven"]
    batch = make_batch(owner, jobs=0, settings={"provider": "metered", "model": "m-1"})
    batch.add_documents([make_document(owner, f"e{i}.txt", text) for i, text in enumerate(essays)])

    (row,) = estimate.estimate_batch(batch)["by_model"]

    assert (row["provider"], row["model"], row["jobs"]) == ("metered", "m-1", 2)
    assert row["input_tokens"] == 4 + 3 + 2 * 100
    assert row["output_tokens"] == 2 * 50
    assert row["input_method"] == "one token per word"
    assert row["output_method"] == "fifty per call"
    assert row["price_per_million_tokens"] == {"input": 1.0, "cached_input": 1.0, "output": 2.0}
    assert row["priced"] is True
    assert row["cost"] == pytest.approx((207 * 1.0 + 100 * 2.0) / 1e6)


def test_a_provider_stating_nothing_but_how_to_grade_gets_safe_defaults():
    class Bare(Provider):
        name = "bare"

        def grade(self, request):
            raise NotImplementedError

    assert Bare.limits() == ProviderLimits()
    assert (Bare.price_for("x"), Bare.is_priced("x"), Bare.cost_of("x", 10, 10)) == (
        (0.0, 0.0),
        False,
        Decimal(0),
    )
    assert Bare.tokenizer("x").count("abcdefghi") == math.ceil(9 / 4)
    assert Bare.prompt_overhead_tokens({}, Bare.tokenizer("x")) == 0
    assert (Bare.offline, Bare.needs_key) == (False, False)


def test_the_registered_providers_describe_themselves():
    builtin, openai = provider_class("builtin"), provider_class("openai")

    assert (builtin.offline, builtin.needs_key, openai.offline, openai.needs_key) == (
        True,
        False,
        False,
        True,
    )
    assert builtin.limits() == ProviderLimits() and builtin.limits().source
    assert "OPENAI_MAX_CONCURRENCY" in openai.limits().source
    assert builtin.is_priced("builtin-v1") and builtin.cost_of("builtin-v1", 10**6, 10**6) == 0
    assert openai.price_for("gpt-4o-mini") == (0.15, 0.60)
    assert str(openai.cost_of("gpt-4o-mini", 1_000, 500)) == "0.000450"
    assert builtin.tokenizer("builtin-v1").name == "chars/4"
    assert openai.tokenizer("gpt-4").name == "cl100k_base"
    assert openai.tokenizer("llama3").method == estimate.APPROXIMATION
    settings = {"rubric": {"criteria": [{"key": "thesis", "name": "Thesis", "points": 10}]}}
    assert builtin.prompt_overhead_tokens(settings, builtin.tokenizer("builtin-v1")) == 0
    assert openai.prompt_overhead_tokens(settings, openai.tokenizer("gpt-4")) > 0


def test_describing_the_openai_provider_loads_no_sdk():
    code = (
        "import sys, django; django.setup();"
        "from grading.limits import provider_limits;"
        "from grading.providers import provider_class;"
        "provider_limits('openai'); cls = provider_class('openai');"
        "cls.price_for('gpt-4o'); cls.prompt_overhead_tokens({}, cls.tokenizer('gpt-4o'));"
        "print(any(m in sys.modules for m in ('openai', 'httpx2')))"
    )
    root = Path(__file__).resolve().parents[1]

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gradeproject.settings"},
    )

    assert result.stdout.strip() == "False"
