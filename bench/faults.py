"""Does a batch survive the faults users meet? Each scenario against a fault-free run of the same batch.

A real cluster (`manage.py qcluster`, two worker processes) on PostgreSQL grades through the
`openai` provider against the loopback stand-in, which answers one call in twenty with HTTP 500
and one in twenty with 429 (Retry-After 1 s). No schedule is installed (`migrate` only, no
`ensure_schedules`): recovery must not depend on the reaper's schedule.

    (a) the provider is down for 20 s in the middle of the batch   -> 0 failed, time ≤ fault-free + 30 s
    (b) the cluster is killed (SIGKILL) twice and restarted at once -> full speed within 15 s of each
        restart, time ≤ fault-free + 40 s
    (c) PostgreSQL restarts in the middle of the batch (a server of the benchmark's own, on
        another port, started with initdb/pg_ctl and stopped again) -> full speed within 15 s of
        the database being back
    (d) one document of 200 kills its worker process every time     -> exactly 1 failed
    (e) the batch is cancelled at 40 %                              -> every job completed or cancelled,
        none queued, no call started after the cancel
    (f) two nodes on Redis, one killed mid-batch                    -> both graded before the kill, the
        other finishes

Each prints lost (jobs not in a final state, or completed without a result), duplicated
(results beyond one per job, and calls answered 200 beyond the results: grades thrown away),
failed, and the time against the fault-free run.

    python bench/faults.py                 # every scenario
    python bench/faults.py --only a,e      # some of them
    BENCH_PG=postgres://user@host:5432 python bench/faults.py
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from urllib.request import Request, urlopen

from _engine import ROOT, bench_owner, configure, empty_database, make_batch, make_documents

from core.processes import stop_process_groups

JOBS = 600
CRASH_JOBS = 200
CAP = 16
LATENCY = 0.2
WORKERS = 2
OPENAI = {"provider": "openai", "model": "gpt-4o-mini"}
CRASHY = {"provider": "crashy", "model": "gpt-4o-mini"}
# A batch's own concurrency is not what is measured here.
RULES = {"processing": {"concurrency": 512, "max_attempts": 3}}
EXTRA_PROVIDERS = json.dumps({"crashy": "bench.crash_provider.CrashProvider"})
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")


def main() -> None:
    options = parse_args()
    if "c" in options.only:
        # On a PostgreSQL of its own, in a process of its own (Django is bound to one server).
        with private_postgres() as (url, datadir):
            subprocess.run(
                [sys.executable, __file__, "--only", "c-inner"],
                env={**os.environ, "BENCH_PG": url, "BENCH_PGDATA": datadir, "BENCH_DB": "gp_bench_faults"},
                check=False,
            )
        options.only = [key for key in options.only if key != "c"]
        if not options.only:
            return
    os.environ["EXTRA_PROVIDERS"] = EXTRA_PROVIDERS
    configure("gp_bench_faults")
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(
        f"{JOBS} jobs (crash scenario: {CRASH_JOBS}), stand-in {LATENCY * 1000:g} ms per call, 5 % HTTP 500, "
        f"5 % 429, cap {CAP}, {WORKERS} worker processes"
    )
    owner = bench_owner()
    with Standin() as standin:
        env = cluster_env(standin.url)
        scenarios = {
            "a": lambda base: provider_down(owner, standin, env, base),
            "b": lambda base: cluster_killed_twice(owner, standin, env, base),
            "d": lambda base: crash_document(owner, standin, env, base),
            "e": lambda base: cancel_at_40(owner, standin, env, base),
            "f": lambda base: redis_node_killed(owner, standin, env, base),
            "c-inner": lambda base: postgres_restarted(owner, standin, env, base),
        }
        baselines: dict[int, float] = {}
        for key in options.only:
            jobs = CRASH_JOBS if key == "d" else JOBS
            if jobs not in baselines:
                baselines[jobs] = fault_free(owner, standin, env, jobs, CRASHY if key == "d" else OPENAI)
            scenarios[key](baselines[jobs])
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


SCENARIOS = ("a", "b", "c", "d", "e", "f")


def scenario_keys(text: str) -> list[str]:
    """The scenarios named, checked before anything starts (a baseline takes minutes)."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in (*SCENARIOS, "c-inner")]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"no scenario {', '.join(map(repr, unknown)) or 'named'}; choose among {','.join(SCENARIOS)}"
        )
    return keys


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), type=scenario_keys)
    return parser.parse_args()


PG_BIN = next(iter(sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin"), reverse=True)), "")


def _as_postgres(*command: str) -> list[str]:
    """initdb and the server refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@contextmanager
def private_postgres():
    """A throwaway PostgreSQL server on a free port: the benchmark restarts it, so never the shared one."""
    import shutil
    import tempfile

    datadir = tempfile.mkdtemp(prefix="gp-faults-pg-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    log = os.path.join(datadir, "server.log")
    subprocess.run(
        _as_postgres(
            f"{PG_BIN}/initdb", "-D", f"{datadir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8"
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl(datadir, "start", "-o", options, "-l", log, "-w")
    try:
        yield f"postgres://postgres@127.0.0.1:{port}", datadir
    finally:
        pg_ctl(datadir, "stop", "-m", "immediate", "-w")
        shutil.rmtree(datadir, ignore_errors=True)


def pg_ctl(datadir: str, *args: str) -> None:
    subprocess.run(
        _as_postgres(f"{PG_BIN}/pg_ctl", "-D", f"{datadir}/data", *args),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cluster_env(url: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": url,
        "OPENAI_MAX_CONCURRENCY": str(CAP),
        "RUNNER_THREADS": str(CAP),
        "Q_WORKERS": str(WORKERS),
        "EXTRA_PROVIDERS": EXTRA_PROVIDERS,
        "LOG_LEVEL": "WARNING",
    }


# --- the stand-in, on a fixed port so that it can go away and come back ----------------------


class Standin:
    ARGS = (
        "--latency",
        str(LATENCY),
        "--error-rate",
        "0.05",
        "--rate-limit-rate",
        "0.05",
        "--retry-after",
        "1",
    )

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Standin":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.llm_standin", "--port", str(self.port), *self.ARGS],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if not self.process.stdout.readline().startswith("http"):
            raise SystemExit("The stand-in did not start.")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def stats(self) -> dict:
        with urlopen(self.url.removesuffix("/v1") + "/stats") as response:
            return json.load(response)

    def reset(self) -> None:
        urlopen(Request(self.url.removesuffix("/v1") + "/reset", data=b"{}", method="POST")).close()


# --- measuring --------------------------------------------------------------------------------


class Watch:
    """Polls the batch: results over time, and the end."""

    def __init__(self, batch) -> None:
        self.batch = batch
        self.samples: list[tuple[float, int]] = []
        self.started = time.monotonic()

    def done(self) -> int:
        from grading.models import GradingJob, JobStatus

        return GradingJob.objects.in_batch(self.batch).filter(status=JobStatus.COMPLETED).count()

    def sample(self) -> int:
        done = self.done()
        self.samples.append((time.monotonic(), done))
        return done

    def until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"Gave up after {timeout:g} s waiting for {what}: {self.batch.progress()}")
            time.sleep(0.1)

    def share_done(self, share: float):
        total = self.batch.progress()["total"]
        return lambda: self.sample() >= share * total

    def finished(self) -> bool:
        from batches.models import BatchStatus

        self.sample()
        self.batch.refresh_from_db()
        return self.batch.status in BatchStatus.finished()

    def first_after(self, since: float) -> float | None:
        """Seconds from `since` to the first job completed after it."""
        before = max((done for at, done in self.samples if at <= since), default=0)
        return next((at - since for at, done in self.samples if at > since and done > before), None)

    def full_speed_after(self, since: float, rate: float, window: float = 2.0) -> float | None:
        """Seconds from `since` until completions over `window` reached 80 % of `rate` per second."""
        points = [(at, done) for at, done in self.samples if at >= since]
        for index, (at, done) in enumerate(points):
            later = [(t, d) for t, d in points[index:] if t - at >= window]
            if later and (later[0][1] - done) / (later[0][0] - at) >= 0.8 * rate:
                return at - since
        return None


def report(title: str, batch, standin: Standin, base: float | None, extra: dict | None = None) -> dict:
    from django.db.models import Count

    from grading.models import GradingJob, GradingResult, JobStatus

    batch.refresh_from_db()
    jobs = GradingJob.objects.in_batch(batch)
    counts = dict(jobs.values_list("status").annotate(n=Count("id")).order_by())
    results = GradingResult.objects.filter(job__batch=batch)
    per_job = results.values("job_id").annotate(n=Count("id")).filter(n__gt=1).count()
    unfinished = jobs.filter(status__in=JobStatus.unfinished()).count()
    without_result = jobs.filter(status=JobStatus.COMPLETED, result__isnull=True).count()
    stats = standin.stats()
    elapsed = (batch.completed_at - batch.started_at).total_seconds() if batch.completed_at else None
    figures = {
        "status": batch.status,
        "jobs": dict(sorted(counts.items())),
        "lost": unfinished + without_result,
        "duplicated results": per_job,
        "grades thrown away": max(stats["completions"] - results.count(), 0) if base is not None else None,
        "failed": counts.get(JobStatus.FAILED, 0),
        "time_s": round(elapsed, 1) if elapsed is not None else None,
        "fault_free_s": round(base, 1) if base else None,
        **(extra or {}),
    }
    if elapsed is not None and base:
        figures["extra_s"] = round(elapsed - base, 1)
    print(f"\n{title}")
    for key, value in figures.items():
        if value is not None:
            print(f"  {key:<22} {value}")
    return figures


def new_batch(owner, jobs: int, name: str, settings: dict, poison: int | None = None):
    documents = make_documents(owner, jobs)
    if poison is not None:
        from bench.crash_provider import MARKER

        doc = documents[poison]
        doc.text = f"{doc.text}\n\n{MARKER}"
        doc.save(update_fields=["text"])
    return make_batch(owner, documents, name, {**settings, **RULES})


@contextmanager
def cluster(env: dict[str, str]):
    from tests.support.cluster import running_cluster

    with running_cluster(**env) as running:
        yield running


def fault_free(owner, standin: Standin, env: dict[str, str], jobs: int, settings: dict) -> float:
    empty_database()
    batch = new_batch(owner, jobs, "fault-free", settings)
    with cluster(env) as running:
        time.sleep(3)  # the workers spawn and start their standing runners
        standin.reset()
        batch.start_batch()
        watch = Watch(batch)
        watch.until(watch.finished, 600, "the fault-free batch")
        openings = running.log(1_000_000).count("is failing (")
    figures = report(
        f"fault-free run, {jobs} jobs ({settings['provider']})",
        batch,
        standin,
        None,
        {"circuit_openings": openings},
    )
    rate = jobs / figures["time_s"]
    print(f"  rate                   {rate:.1f} jobs/s")
    return figures["time_s"]


def provider_down(owner, standin: Standin, env, base: float) -> None:
    empty_database()
    batch = new_batch(owner, JOBS, "provider down", OPENAI)
    with cluster(env) as running:
        time.sleep(3)
        standin.reset()
        batch.start_batch()
        watch = Watch(batch)
        watch.until(watch.share_done(0.3), 300, "30 %")
        stats = standin.stats()
        standin.stop()
        down_at = time.monotonic()
        time.sleep(20)
        standin.start()
        up_at = time.monotonic()
        watch.until(watch.finished, 600, "the batch to finish")
        finished_at = time.monotonic()
        openings = running.log(1_000_000).count("is failing (")
    report(
        "(a) provider down 20 s at 30 %",
        batch,
        standin,
        base,
        {
            "outage_s": round(up_at - down_at, 1),
            "finished_after_up_s": round(finished_at - up_at, 1),
            "calls_before_outage": stats["requests"],
            "circuit_openings": openings,
        },
    )


def cluster_killed_twice(owner, standin: Standin, env, base: float) -> None:
    empty_database()
    batch = new_batch(owner, JOBS, "killed twice", OPENAI)
    rate = JOBS / base
    recoveries, firsts = [], []
    running = cluster(env)
    first = running.__enter__()
    time.sleep(3)
    standin.reset()
    batch.start_batch()
    watch = Watch(batch)
    try:
        watch.until(watch.share_done(0.25), 300, "25 %")
        first.kill()
        running.__exit__(None, None, None)
        for share in (0.6, None):
            watch.sample()  # what the killed cluster had recorded
            restarted = time.monotonic()
            with cluster(env) as again:
                if share is not None:
                    watch.until(watch.share_done(share), 300, f"{share:.0%}")
                    again.kill()
                else:
                    watch.until(watch.finished, 600, "the batch to finish")
                recoveries.append(watch.full_speed_after(restarted, rate))
                firsts.append(watch.first_after(restarted))
    finally:
        with suppress(Exception):
            running.__exit__(None, None, None)
    report(
        "(b) cluster SIGKILLed at 25 % and 60 %, restarted at once",
        batch,
        standin,
        base,
        {
            "first_grade_after_restart_s": [round(r, 1) if r is not None else "never" for r in firsts],
            "full_speed_after_restart_s": [round(r, 1) if r is not None else "never" for r in recoveries],
        },
    )


def crash_document(owner, standin: Standin, env, base: float) -> None:
    empty_database()
    batch = new_batch(owner, CRASH_JOBS, "crash document", CRASHY, poison=CRASH_JOBS // 3)
    with cluster(env) as running:
        time.sleep(3)
        standin.reset()
        batch.start_batch()
        watch = Watch(batch)
        watch.until(watch.finished, 900, "the batch to finish")
        crashes = running.log(200_000).count("reincarnated worker")
    from grading.models import GradingJob, JobStatus

    failed = list(
        GradingJob.objects.in_batch(batch).filter(status=JobStatus.FAILED).values_list("name", "attempts")
    )
    report(
        f"(d) one document of {CRASH_JOBS} kills its worker",
        batch,
        standin,
        base,
        {"worker_deaths": crashes, "failed_jobs": failed},
    )


def cancel_at_40(owner, standin: Standin, env, base: float) -> None:
    from grading.models import GradingJob, JobStatus

    empty_database()
    batch = new_batch(owner, JOBS, "cancelled", OPENAI)
    with cluster(env):
        time.sleep(3)
        standin.reset()
        batch.start_batch()
        watch = Watch(batch)
        watch.until(watch.share_done(0.4), 300, "40 %")
        # The commit's moment, as the workers' listeners learn it: the notification's arrival.
        import threading

        listener, heard = _listener(), []
        hearing = threading.Thread(
            target=lambda: heard.extend(time.time() for _ in listener.notifies(timeout=10, stop_after=1))
        )
        hearing.start()
        asked = time.time()
        batch.cancel_batch()
        returned = time.time()
        hearing.join()
        listener.close()
        committed = heard[0] if heard else returned
        watch.until(
            lambda: not GradingJob.objects.in_batch(batch).filter(status=JobStatus.PROCESSING).exists(),
            120,
            "the calls in flight to end",
        )
        time.sleep(1)
    stamps = standin.stats()["timestamps"]
    after = sorted(stamp - committed for stamp in stamps if stamp > committed)
    between = [stamp for stamp in stamps if asked < stamp <= committed]
    # Calls started while the cancel was committing: before the commit, so allowed.
    report(
        "(e) cancelled at 40 %",
        batch,
        standin,
        None,
        {
            "cancel_took_ms": round((returned - asked) * 1000, 1),
            "commit_heard_after_ms": round((committed - asked) * 1000, 1) if heard else None,
            "calls_started_during_cancel": len(between),
            "calls_started_after_commit": len(after),
            "latest_after_commit_ms": round(after[-1] * 1000, 1) if after else None,
        },
    )


def postgres_restarted(owner, standin: Standin, env, base: float) -> None:
    """The database goes away for a moment (a fast restart: every connection is cut)."""
    datadir = os.environ["BENCH_PGDATA"]
    empty_database()
    batch = new_batch(owner, JOBS, "database restarted", OPENAI)
    rate = JOBS / base
    with cluster(env) as running:
        time.sleep(3)
        standin.reset()
        batch.start_batch()
        watch = Watch(batch)
        watch.until(watch.share_done(0.3), 300, "30 %")
        down = time.monotonic()
        pg_ctl(datadir, "restart", "-m", "fast", "-w")
        up = time.monotonic()
        from django.db import connections

        connections.close_all()
        watch.until(watch.finished, 600, "the batch to finish")
        full_speed = watch.full_speed_after(up, rate)
        deaths = running.log(1_000_000).count("reincarnated")
    report(
        "(c) PostgreSQL restarted at 30 %",
        batch,
        standin,
        base,
        {
            "restart_took_s": round(up - down, 1),
            "full_speed_after_db_back_s": round(full_speed, 1) if full_speed is not None else "never",
            "qcluster_reincarnations": deaths,
        },
    )


def _listener():
    """A connection listening as the workers' listeners do, to time the cancel's notification."""
    import psycopg
    from django.db import connection

    from grading.wakeups import CHANNEL

    params = connection.settings_dict
    conn = psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        autocommit=True,
    )
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def redis_node_killed(owner, standin: Standin, env, base: float) -> None:
    import redis

    try:
        redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        print(f"\n(f) skipped: no Redis at {REDIS_URL} ({error})")
        return
    empty_database()
    batch = new_batch(owner, JOBS, "two nodes", OPENAI)
    name = f"gp-bench-faults-{os.getpid()}"
    node_env = {
        **os.environ,
        **env,
        "REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": name,
        "DATABASE_URL": os.environ["DATABASE_URL"],
    }
    nodes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=node_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        time.sleep(4)
        standin.reset()
        # Started by the bench process, whose broker is the ORM one: the nodes find the
        # work through their standing runners, not through a task.
        batch.start_batch()
        watch = Watch(batch)
        watch.until(watch.share_done(0.4), 300, "40 %")
        pids = node_pids(nodes)
        before = per_node(batch, pids)
        os.killpg(nodes[0].pid, signal.SIGKILL)
        nodes[0].wait()
        watch.until(watch.finished, 600, "the batch to finish")
        after = per_node(batch, [pids[0], pids[1] | node_pids(nodes[1:])[0]])
    finally:
        stop_process_groups(nodes, timeout=20)
        client = redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"django_q:{name}:*"))
        if keys:
            client.delete(*keys)
    report(
        "(f) two nodes on Redis, one SIGKILLed at 40 %",
        batch,
        standin,
        base,
        {"graded_per_node_before_kill": before, "graded_per_node_in_all": after},
    )


def node_pids(nodes) -> list[set[int]]:
    import psutil

    pids = []
    for node in nodes:
        owned = {node.pid}
        with suppress(psutil.NoSuchProcess):
            owned |= {child.pid for child in psutil.Process(node.pid).children(recursive=True)}
        pids.append(owned)
    return pids


def per_node(batch, pids: list[set[int]]) -> list[int]:
    from grading.models import GradingJob, JobStatus

    counts = [0] * len(pids)
    completed = GradingJob.objects.in_batch(batch).filter(status=JobStatus.COMPLETED)
    for token in completed.values_list("claimed_by", flat=True):
        pid = int(token.split(":")[1])
        for index, owned in enumerate(pids):
            if pid in owned:
                counts[index] += 1
    return counts


if __name__ == "__main__":
    main()
