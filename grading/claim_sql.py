"""The hot statements of claiming and recording, written out in SQL.

A worker claims and records after nearly every finished call, so their cost per
round is paid hundreds of times a second. Built through the ORM, its queries (joins, ordering,
JSON casts, variable IN lists) cost as much CPU in compilation alone as the provider
call they serve (README, Benchmarks, has the figure). Written once here with list
parameters (`= ANY(%s)` on PostgreSQL, `json_each(%s)` on SQLite), the statement text
never changes and costs almost nothing to issue.

GradingJob.objects.claimable() stays the readable definition of what may be claimed
and in which order; tests/test_job_claiming.py checks that these statements agree
with it.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.dateparse import parse_datetime

from grading.models import Document, GradingJob, GradingResult, JobStatus, LiveRunner, ProviderCircuit
from grading.serve_order import job_order_sql, order_sql
from grading.statuses import CLAIMING_BATCH_STATES, Delivery


@cache
def _tables() -> dict[str, str]:
    batch_model = GradingJob._meta.get_field("batch").related_model
    return {
        "job": connection.ops.quote_name(GradingJob._meta.db_table),
        "batch": connection.ops.quote_name(batch_model._meta.db_table),
        "document": connection.ops.quote_name(Document._meta.db_table),
        "circuit": connection.ops.quote_name(ProviderCircuit._meta.db_table),
        "runner": connection.ops.quote_name(LiveRunner._meta.db_table),
    }


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _in_list(column: str, kind: str) -> str:
    """`column` is one of a list given as one parameter (so the SQL text never varies)."""
    if _postgres():
        return f"{column} = ANY(%s::{kind}[])"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def _list_param(values) -> Any:
    return list(values) if _postgres() else json.dumps(list(values))


def _rule(alias: str, name: str) -> str:
    """A processing rule of the job's settings snapshot, as an integer (NULL when absent)."""
    if _postgres():
        return f"({alias}.settings -> 'processing' ->> '{name}')::integer"
    return f"CAST(json_extract({alias}.settings, '$.processing.{name}') AS INTEGER)"


def _datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


@dataclass
class InFlight:
    """What a claim reads first, under its lock: work in flight, open circuits, dead claimants."""

    # (provider, batch, jobs, the batch's concurrency)
    busy: list[tuple[str, int | None, int, int | None]]
    # The soonest lease of a job in flight: one already past means a job to take over.
    soonest_lease: datetime | None
    # (provider, open_until, probe_by, probe_until) of circuits not closed
    circuits: list[tuple[str, datetime, str, datetime | None]]
    # Runners whose presence is older than the cut-off: they died.
    dead: list[str]


def lock_and_read(lock_key: int, stale_before: datetime) -> InFlight:
    """Take the claim lock, then read what is in flight, the open circuits and the dead claimants.

    On PostgreSQL the lock is a transaction-scoped advisory lock, sent in the same
    round trip as the reads but as a statement of its own: under READ COMMITTED
    each statement sees what was committed before it started, so the reads see
    every claim committed before the lock was granted.
    """
    tables = _tables()
    statements = [
        (
            f"SELECT j.provider, j.batch_id, COUNT(*), MIN({_rule('j', 'concurrency')}), "
            f"MIN(j.lease_expires_at) FROM {tables['job']} j WHERE j.status = %s AND j.delivery = %s "
            "GROUP BY j.provider, j.batch_id",
            # Economy jobs held by a provider batch make no calls: they take no share of any cap.
            [JobStatus.PROCESSING, Delivery.REALTIME],
        ),
        (
            f"SELECT provider, open_until, probe_by, probe_until FROM {tables['circuit']} "
            "WHERE open_until IS NOT NULL",
            [],
        ),
        (f"SELECT claimant FROM {tables['runner']} WHERE seen_at < %s", [_datetime(stale_before)]),
    ]
    results = []
    with connection.cursor() as cursor:
        if _postgres():
            sql = "; ".join(["SELECT pg_advisory_xact_lock(%s)", *(sql for sql, _ in statements)])
            cursor.execute(sql, [lock_key, *(p for _, params in statements for p in params)])
            for _ in statements:
                cursor.nextset()
                results.append(cursor.fetchall())
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall())
    busy_rows, circuits, dead = results
    leases = [read_datetime(row[4]) for row in busy_rows if row[4] is not None]
    return InFlight(
        busy=[row[:4] for row in busy_rows],
        soonest_lease=min(leases) if leases else None,
        circuits=[(p, read_datetime(u), by, read_datetime(pu)) for p, u, by, pu in circuits],
        dead=[row[0] for row in dead],
    )


def read_datetime(value) -> datetime | None:
    """A datetime as the backend returns it from raw SQL (SQLite: naive, or ISO text, in UTC)."""
    if value is None:
        return value
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def batch_statuses(batch_ids) -> dict[int, str]:
    """The batches' statuses, read without a lock (the runner's look before a call starts)."""
    sql = f"SELECT id, status FROM {_tables()['batch']} WHERE {_in_list('id', 'bigint')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [_list_param(sorted(batch_ids))])
        return dict(cursor.fetchall())


def lock_batches(batch_ids) -> dict[int, str]:
    """The batches' statuses, read under a lock that a cancel (SELECT ... FOR UPDATE) waits for.

    A job re-queued into its batch must not miss a cancel: the lock (FOR KEY
    SHARE, which only FOR UPDATE conflicts with) makes a cancel that is under way
    commit first, and then its status is what this reads; or this transaction
    commits first, and then the cancel's UPDATE of queued jobs sees the job.
    Rows are locked in id order, as every transaction that locks several
    batches does. SQLite's IMMEDIATE transaction already holds the database.
    """
    ids = sorted({batch_id for batch_id in batch_ids if batch_id is not None})
    if not ids:
        return {}
    lock = " ORDER BY id FOR KEY SHARE" if _postgres() else ""
    sql = f"SELECT id, status FROM {_tables()['batch']} WHERE {_in_list('id', 'bigint')}{lock}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [_list_param(ids)])
        return dict(cursor.fetchall())


CANDIDATE_COLUMNS = (
    "id",
    "batch_id",
    "attempts",
    "max_attempts",
    "provider",
    "model",
    "settings",
    "document_id",
    "suspect",
    "provider_retries",
    "document__text",
    "document__original_name",
    "document__extraction_error",
)


def candidates(
    now: datetime, window: int, skip_jobs, skip_batches, skip_providers, only_batches=None, suspects: int = 0
) -> list[dict[str, Any]]:
    """Claimable jobs in claim order, locked (PostgreSQL: FOR UPDATE OF the job, SKIP LOCKED).

    Everything a provider thread needs comes back with them, so the claimed jobs
    need no second query. The settings stay JSON text, decoded once per snapshot
    (claims.snapshot): the jobs of a batch share theirs. Suspect jobs (taken over
    from a dead claimant) come only as the first `suspects` rows, ahead of the
    rest, from their own small partial index; the claim takes one alone.
    """
    tables = _tables()
    states = ", ".join(["%s"] * len(CLAIMING_BATCH_STATES))
    only = f"AND {_in_list('b.id', 'bigint')} " if only_batches is not None else ""
    batches = (
        f"SELECT b.id, b.priority, b.deadline FROM {tables['batch']} b "
        f"WHERE b.status IN ({states}) AND NOT {_in_list('b.id', 'bigint')} {only}"
    )
    # Economy jobs are submitted in provider batches (grading/economy_engine.py), never claimed here.
    runnable = (
        "j.status = %s AND j.delivery = %s AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= %s) "
        f"AND NOT {_in_list('j.id', 'bigint')} AND NOT {_in_list('j.provider', 'text')}"
    )
    batch_params = [*CLAIMING_BATCH_STATES, _list_param(skip_batches)]
    batch_params += [_list_param(only_batches)] if only_batches is not None else []
    job_params = [
        JobStatus.QUEUED,
        Delivery.REALTIME,
        _datetime(now),
        _list_param(skip_jobs),
        _list_param(skip_providers),
    ]
    # Only the chosen jobs are joined to their documents: joining first read every
    # queued job's text before the ORDER BY ... LIMIT, so a claim grew with the
    # queue (README, Processing: Claims, has the figures). On PostgreSQL each
    # active batch contributes at most `window` jobs, read in order from the
    # job_queued_in_batch index and locked (SKIP LOCKED: rows a cancel or the
    # reaper is changing are passed over), so a claim costs the same with ten or
    # ten thousand jobs queued. SQLite has no LATERAL and no row locks; its
    # IMMEDIATE transaction already holds the database.
    if _postgres():

        def chosen_of(kind: str, limit_param: int) -> tuple[str, list]:
            sql = (
                f"SELECT q.id, q.suspect FROM ({batches}) b CROSS JOIN LATERAL ("
                f"SELECT j.id, j.created_at, j.suspect FROM {tables['job']} j "
                f"WHERE j.batch_id = b.id AND {runnable} AND {kind} "
                f"ORDER BY {job_order_sql('j')} LIMIT %s FOR UPDATE SKIP LOCKED) q "
                f"ORDER BY {order_sql('b', 'q')} LIMIT %s"
            )
            return sql, [*batch_params, *job_params, limit_param, limit_param]

    else:

        def chosen_of(kind: str, limit_param: int) -> tuple[str, list]:
            sql = (
                f"SELECT j.id, j.suspect FROM {tables['job']} j JOIN ({batches}) b ON b.id = j.batch_id "
                f"WHERE {runnable} AND {kind} "
                f"ORDER BY {order_sql('b', 'j')} LIMIT %s"
            )
            return sql, [*batch_params, *job_params, limit_param]

    chosen, params = chosen_of("NOT j.suspect", window)
    if suspects:
        suspect_sql, suspect_params = chosen_of("j.suspect", suspects)
        chosen = f"SELECT * FROM ({suspect_sql}) s UNION ALL SELECT * FROM ({chosen}) n"
        params = [*suspect_params, *params]
    sql = (
        f"WITH chosen AS ({chosen}) "
        "SELECT j.id, j.batch_id, j.attempts, j.max_attempts, j.provider, j.model, j.settings, "
        "j.document_id, j.suspect, j.provider_retries, d.text, d.original_name, d.extraction_error "
        f"FROM chosen JOIN {tables['job']} j ON j.id = chosen.id "
        f"JOIN {tables['batch']} b ON b.id = j.batch_id "
        f"JOIN {tables['document']} d ON d.id = j.document_id "
        f"ORDER BY chosen.suspect DESC, {order_sql('b', 'j')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            {**dict(zip(CANDIDATE_COLUMNS, row, strict=True)), "suspect": bool(row[8])}
            for row in cursor.fetchall()
        ]


def mark_claimed(job_ids: list[int], token: str, lease_until: datetime) -> int:
    """processing, attempt + 1, the claim's token and lease: one UPDATE for the whole claim.

    started_at stays empty: a claimed job may wait in hand for its stagger or pacing
    slot, and that wait is no part of grading it. Recording the outcome sets it to
    the moment the call could start (claims._ended_values); the lease is what the
    engine needs of the claim.
    """
    sql = (
        f"UPDATE {_tables()['job']} SET status = %s, attempts = attempts + 1, claimed_by = %s, "
        "lease_expires_at = %s, started_at = NULL, next_attempt_at = NULL "
        f"WHERE {_in_list('id', 'bigint')}"
    )
    params = [JobStatus.PROCESSING, token, _datetime(lease_until), _list_param(job_ids)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def finish(
    job_ids: list[int], token: str, values: dict[str, Any], add: dict[str, int] | None = None
) -> set[int]:
    """Set the outcome columns of those jobs still processing under `token`; their ids.

    `add` adds to counters (attempts -1: an attempt given back; provider_retries +1).
    The fence and the write are one statement: a job re-queued by the reaper or
    claimed again since (a new token) does not match and is left alone. Under
    READ COMMITTED a concurrent change is re-checked against the WHERE clause
    after its lock is released, so the fence holds then too.
    """
    columns = [f"{name} = %s" for name in values]
    columns += [f"{name} = CASE WHEN {name} + %s < 0 THEN 0 ELSE {name} + %s END" for name in add or {}]
    sql = (
        f"UPDATE {_tables()['job']} SET {', '.join(columns)} "
        f"WHERE {_in_list('id', 'bigint')} AND status = %s AND claimed_by = %s RETURNING id"
    )
    params = [_datetime(value) if isinstance(value, datetime) else value for value in values.values()]
    params += [delta for delta in (add or {}).values() for _ in range(2)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, _list_param(job_ids), JobStatus.PROCESSING, token])
        return {row[0] for row in cursor.fetchall()}


def set_outcome(job_ids: list[int], values: dict[str, Any]) -> int:
    """One UPDATE of the outcome columns for jobs sharing them (the reaper, holding their rows)."""
    columns = ", ".join(f"{name} = %s" for name in values)
    sql = f"UPDATE {_tables()['job']} SET {columns} WHERE {_in_list('id', 'bigint')}"
    params = [_datetime(value) if isinstance(value, datetime) else value for value in values.values()]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, _list_param(job_ids)])
        return cursor.rowcount


@cache
def _result_fields() -> list:
    return [field for field in GradingResult._meta.concrete_fields if not field.primary_key]


# Rows per INSERT: far below SQLite's limit on parameters.
RESULT_CHUNK = 100


def insert_results(results: list[GradingResult]) -> None:
    """Insert the results, every column prepared by its model field, in multi-row INSERTs.

    QuerySet.bulk_create compiled a fresh statement for every round, a large part
    of the recording thread's time; the values are the same, each prepared by its
    own field exactly as bulk_create prepares them. One multi-row statement beat
    executemany (one row's statement in a pipeline) in bench/throughput.py
    (README, Benchmarks, has the figures).
    """
    # The connection itself rather than its thread-local proxy: hundreds of lookups a round.
    database = connections[DEFAULT_DB_ALIAS]
    fields = _result_fields()
    columns = ", ".join(database.ops.quote_name(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    table = database.ops.quote_name(GradingResult._meta.db_table)
    with database.cursor() as cursor:
        for start in range(0, len(results), RESULT_CHUNK):
            chunk = results[start : start + RESULT_CHUNK]
            params = [
                field.get_db_prep_save(field.pre_save(result, add=True), database)
                for result in chunk
                for field in fields
            ]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}", params)
