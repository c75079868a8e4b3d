"""Does the engine find a provider's real limits and work at them? Each scenario beside its ideal.

A real cluster (`manage.py qcluster`, two worker processes) on PostgreSQL grades against the
loopback stand-ins (200 ms per call unless said otherwise), run as processes of their own:

    (a) the provider accepts 32 calls at once (429 above), the connection is configured with
        128, then with no cap at all           -> efficiency ≥ 0.90 of the ideal at 32,
                                                  429s ≤ 5 % of completions
    (b) the provider allows a number of tokens per minute, announced only in its rate-limit
        headers (nothing configured)           -> tokens per minute ≥ 0.90 of the limit,
                                                  429s ≤ 5 % of completions
    (c) two providers (openai at 200 ms, cap 32; anthropic at 400 ms, cap 16) in one batch
        comparing two models                    -> each at ≥ 0.90 of its own ideal; the faster
                                                  one done long before the slower one
    (d) a batch whose `concurrency` equals the provider's cap (32), and a batch with the
        pre-built template's defaults (its concurrency 16, the default OPENAI_MAX_CONCURRENCY
        16, a provider accepting 16)            -> efficiency ≥ 0.90

Before each measured batch a warm-up batch runs on the same cluster (workers import the SDK,
open connections, and learn the provider's limits, which are kept per provider in the
database as they would be on a server); its 429s are printed too.

    python bench/limits.py                 # every scenario
    python bench/limits.py --only a,d      # some of them
    BENCH_PG=postgres://user@host:5432 python bench/limits.py
"""

import argparse
import os
import time

from _engine import (
    bench_owner,
    configure,
    empty_database,
    make_batch,
    make_documents,
    reset_standin,
    standin_process,
    standin_stats,
    wait_until_finished,
)

WORKERS = 2
LATENCY = 0.2
JOBS = 1000
WARM_JOBS = 64
OPENAI = {"provider": "openai", "model": "gpt-4o-mini"}
# A batch's own concurrency is not what (a) to (c) measure.
WIDE = {"processing": {"concurrency": 512}}
ANTHROPIC_MODEL = "claude-haiku-4-5"
TARGET = 0.90


def main() -> None:
    options = parse_args()
    configure("gp_bench_limits")
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    owner = bench_owner()
    scenarios = {"a": wrong_cap, "b": token_limit, "c": two_providers, "d": batch_concurrency}
    for key in options.only:
        scenarios[key](owner)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="a,b,c,d", type=lambda value: value.split(","))
    return parser.parse_args()


def cluster_env(**extra) -> dict:
    return {"Q_WORKERS": WORKERS, "RUNNER_THREADS": 64, **extra}


def run_batch(owner, jobs: int, name: str, settings: dict, urls: list[str], timeout: float = 600):
    """Warm up, then grade `jobs` documents; the batch's seconds and the warm-up's stand-in figures."""
    warm = make_batch(owner, make_documents(owner, WARM_JOBS), f"{name}: warm-up", settings)
    warm.start_batch()
    wait_until_finished(warm, timeout=300)
    warm_stats = [standin_stats(url) for url in urls]
    for url in urls:
        reset_standin(url)
    batch = make_batch(owner, make_documents(owner, jobs), name, settings)
    batch.start_batch()
    wait_until_finished(batch, timeout=timeout)
    batch.refresh_from_db()
    return batch, (batch.completed_at - batch.started_at).total_seconds(), warm_stats


def completions(stats: dict) -> int:
    return stats.get("completions", stats.get("messages", 0))


def refused(stats: dict) -> int:
    return stats["rate_limited"] + stats.get("over_cap", 0)


def print_line(title: str, ideal: float, measured: float, stats: dict, warm: dict) -> None:
    done = completions(stats)
    rejected = refused(stats)
    print(f"  {title}")
    print(f"    ideal {ideal:7.2f} s, measured {measured:7.2f} s, efficiency {ideal / measured:5.2f}")
    print(
        f"    {done} completions, {rejected} rejected (429) = {rejected / max(done, 1):.1%}, "
        f"peak {stats['peak_concurrency']} at once; warm-up: {refused(warm)} rejected of "
        f"{completions(warm)} completions"
    )


def wrong_cap(owner) -> None:
    from tests.support.cluster import running_cluster

    cap = 32
    print(f"\n(a) the provider accepts {cap} at once; {JOBS} jobs, {LATENCY * 1000:g} ms per call")
    with standin_process("--latency", str(LATENCY), "--max-concurrency", str(cap)) as url:
        for configured in (128, 0):
            empty_database()
            reset_standin(url)
            env = cluster_env(OPENAI_BASE_URL=url, OPENAI_MAX_CONCURRENCY=configured)
            with running_cluster(**env):
                _, elapsed, [warm] = run_batch(owner, JOBS, "wrong cap", {**OPENAI, **WIDE}, [url])
            title = f"configured with {configured}" if configured else "configured with no cap"
            print_line(title, JOBS * LATENCY / cap, elapsed, standin_stats(url), warm)


def token_limit(owner) -> None:
    from tests.support.cluster import running_cluster

    tpm, jobs = 1_200_000, 300
    print(f"\n(b) the provider allows {tpm:,} tokens per minute, said only in its headers; {jobs} jobs")
    with standin_process("--latency", str(LATENCY), "--tokens-per-minute", str(tpm)) as url:
        empty_database()
        env = cluster_env(OPENAI_BASE_URL=url, OPENAI_MAX_CONCURRENCY=32)
        with running_cluster(**env):
            # The warm-up spends the minute's burst the limit starts with, as a server busy before would have.
            warm_up_tokens(owner, url, tpm)
            left = standin_stats(url)["limits"]["tokens"]
            reset_standin(url)
            batch = make_batch(owner, make_documents(owner, jobs), "token limit", {**OPENAI, **WIDE})
            started = time.monotonic()
            batch.start_batch()
            wait_until_finished(batch, timeout=600)
            elapsed = time.monotonic() - started
        stats = standin_stats(url)
    used = stats["tokens_used"]
    # What the limit allows in that time: a minute's tokens per minute, plus what was left at the start.
    allowed = tpm * elapsed / 60 + left
    done = completions(stats)
    print(f"  {done} completions in {elapsed:.1f} s, {used:,} tokens ({used / max(done, 1):,.0f} per call)")
    print(f"    tokens used / allowed  {used / allowed:5.2f}   ({left:,} left at the start)")
    print(f"    rejected (429)         {stats['rate_limited']} = {stats['rate_limited'] / max(done, 1):.1%}")


def warm_up_tokens(owner, url: str, tpm: int) -> None:
    """Batches until the bucket the provider starts with is spent, so the measure is of the refill."""
    for round_number in range(10):
        warm = make_batch(
            owner, make_documents(owner, 200), f"token warm-up {round_number}", {**OPENAI, **WIDE}
        )
        warm.start_batch()
        wait_until_finished(warm, timeout=300)
        stats = standin_stats(url)
        print(
            f"  warm-up {round_number + 1}: {completions(stats)} completions, {stats['rate_limited']} rejected, "
            f"{stats['limits']['tokens']:,} tokens left"
        )
        if stats["limits"]["tokens"] < tpm / 10:
            return


def two_providers(owner) -> None:
    from tests.support.cluster import running_cluster

    jobs = 400
    slow_latency, slow_cap, cap = 0.4, 16, 32
    print(
        f"\n(c) one batch comparing openai ({LATENCY * 1000:g} ms, cap {cap}) and anthropic "
        f"({slow_latency * 1000:g} ms, cap {slow_cap}); {jobs} documents, {2 * jobs} jobs"
    )
    compare = {**OPENAI, **WIDE, "models": [OPENAI["model"], f"anthropic:{ANTHROPIC_MODEL}"]}
    with (
        standin_process("--latency", str(LATENCY), "--max-concurrency", str(cap)) as fast,
        standin_process(
            "--latency",
            str(slow_latency),
            "--max-concurrency",
            str(slow_cap),
            module="tests.support.anthropic_standin",
        ) as slow,
    ):
        empty_database()
        env = cluster_env(
            OPENAI_BASE_URL=fast,
            OPENAI_MAX_CONCURRENCY=cap,
            ANTHROPIC_BASE_URL=slow,
            ANTHROPIC_MAX_CONCURRENCY=slow_cap,
        )
        with running_cluster(**env):
            _, elapsed, warm = run_batch(owner, jobs, "two providers", compare, [fast, slow])
        measured = [standin_stats(fast), standin_stats(slow)]
    for name, stats, latency, provider_cap, warm_stats in (
        ("openai", measured[0], LATENCY, cap, warm[0]),
        ("anthropic", measured[1], slow_latency, slow_cap, warm[1]),
    ):
        stamps = stats["timestamps"]
        busy = max(stamps) - min(stamps) + latency
        print_line(
            f"{name}: first call to last reply", jobs * latency / provider_cap, busy, stats, warm_stats
        )
    print(f"    the whole batch: {elapsed:.2f} s")


def batch_concurrency(owner) -> None:
    from tests.support.cluster import running_cluster

    print(f"\n(d) a batch's concurrency rule; {JOBS} jobs, {LATENCY * 1000:g} ms per call")
    for rule, provider_cap, settings, title in (
        (32, 32, {**OPENAI, "processing": {"concurrency": 32}}, "concurrency 32, provider cap 32"),
        (16, 16, dict(OPENAI), "the template's defaults: concurrency 16, default provider cap 16"),
    ):
        with standin_process("--latency", str(LATENCY), "--max-concurrency", str(provider_cap)) as url:
            empty_database()
            env = cluster_env(OPENAI_BASE_URL=url, RUNNER_THREADS=32)
            if provider_cap != 16:
                env["OPENAI_MAX_CONCURRENCY"] = provider_cap
            with running_cluster(**env):
                _, elapsed, [warm] = run_batch(owner, JOBS, "batch concurrency", settings, [url])
            print_line(title, JOBS * LATENCY / rule, elapsed, standin_stats(url), warm)


if __name__ == "__main__":
    main()
