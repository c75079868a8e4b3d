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
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections

from grading.models import Document, GradingJob, GradingResult, JobStatus
from grading.serve_order import job_order_sql, order_sql
from grading.statuses import CLAIMING_BATCH_STATES


@cache
def _tables() -> dict[str, str]:
    batch_model = GradingJob._meta.get_field("batch").related_model
    return {
        "job": connection.ops.quote_name(GradingJob._meta.db_table),
        "batch": connection.ops.quote_name(batch_model._meta.db_table),
        "document": connection.ops.quote_name(Document._meta.db_table),
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


def lock_and_count_busy(lock_key: int) -> list[tuple[str, int | None, int, int | None]]:
    """Take the claim lock, then count what is in flight: (provider, batch, jobs, the batch's concurrency).

    On PostgreSQL the lock is a transaction-scoped advisory lock, sent in the same
    round trip as the count but as a statement of its own: under READ COMMITTED
    each statement sees what was committed before it started, so the count sees
    every claim committed before the lock was granted.
    """
    count = (
        f"SELECT j.provider, j.batch_id, COUNT(*), MIN({_rule('j', 'concurrency')}) "
        f"FROM {_tables()['job']} j WHERE j.status = %s GROUP BY j.provider, j.batch_id"
    )
    with connection.cursor() as cursor:
        if _postgres():
            cursor.execute(f"SELECT pg_advisory_xact_lock(%s); {count}", [lock_key, JobStatus.PROCESSING])
            cursor.nextset()
        else:
            cursor.execute(count, [JobStatus.PROCESSING])
        return cursor.fetchall()


CANDIDATE_COLUMNS = (
    "id",
    "batch_id",
    "attempts",
    "max_attempts",
    "provider",
    "model",
    "settings",
    "document_id",
    "document__text",
    "document__original_name",
    "document__extraction_error",
)


def candidates(
    now: datetime, window: int, skip_jobs, skip_batches, skip_providers, only_batches=None
) -> list[dict[str, Any]]:
    """Claimable jobs in claim order, locked (PostgreSQL: FOR UPDATE OF the job, SKIP LOCKED).

    Everything a provider thread needs comes back with them, so the claimed jobs
    need no second query. The settings stay JSON text, decoded once per snapshot
    (claims.snapshot): the jobs of a batch share theirs.
    """
    tables = _tables()
    states = ", ".join(["%s"] * len(CLAIMING_BATCH_STATES))
    only = f"AND {_in_list('b.id', 'bigint')} " if only_batches is not None else ""
    batches = (
        f"SELECT b.id, b.priority, b.deadline FROM {tables['batch']} b "
        f"WHERE b.status IN ({states}) AND NOT {_in_list('b.id', 'bigint')} {only}"
    )
    runnable = (
        "j.status = %s AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= %s) "
        f"AND NOT {_in_list('j.id', 'bigint')} AND NOT {_in_list('j.provider', 'text')}"
    )
    batch_params = [*CLAIMING_BATCH_STATES, _list_param(skip_batches)]
    batch_params += [_list_param(only_batches)] if only_batches is not None else []
    job_params = [JobStatus.QUEUED, _datetime(now), _list_param(skip_jobs), _list_param(skip_providers)]
    # Only the chosen jobs are joined to their documents: joining first read every
    # queued job's text before the ORDER BY ... LIMIT, so a claim grew with the
    # queue (README, Processing: Claims, has the figures). On PostgreSQL each
    # active batch contributes at most `window` jobs, read in order from the
    # job_queued_in_batch index and locked (SKIP LOCKED: rows a cancel or the
    # reaper is changing are passed over), so a claim costs the same with ten or
    # ten thousand jobs queued. SQLite has no LATERAL and no row locks; its
    # IMMEDIATE transaction already holds the database.
    if _postgres():
        chosen = (
            f"SELECT q.id FROM ({batches}) b CROSS JOIN LATERAL ("
            f"SELECT j.id, j.created_at FROM {tables['job']} j WHERE j.batch_id = b.id AND {runnable} "
            f"ORDER BY {job_order_sql('j')} LIMIT %s FOR UPDATE SKIP LOCKED) q "
            f"ORDER BY {order_sql('b', 'q')} LIMIT %s"
        )
        params = [*batch_params, *job_params, window, window]
    else:
        chosen = (
            f"SELECT j.id FROM {tables['job']} j JOIN ({batches}) b ON b.id = j.batch_id WHERE {runnable} "
            f"ORDER BY {order_sql('b', 'j')} LIMIT %s"
        )
        params = [*batch_params, *job_params, window]
    sql = (
        f"WITH chosen AS ({chosen}) "
        "SELECT j.id, j.batch_id, j.attempts, j.max_attempts, j.provider, j.model, j.settings, "
        "j.document_id, d.text, d.original_name, d.extraction_error "
        f"FROM chosen JOIN {tables['job']} j ON j.id = chosen.id "
        f"JOIN {tables['batch']} b ON b.id = j.batch_id "
        f"JOIN {tables['document']} d ON d.id = j.document_id "
        f"ORDER BY {order_sql('b', 'j')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(CANDIDATE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def mark_claimed(job_ids: list[int], token: str, lease_until: datetime, now: datetime) -> int:
    """processing, attempt + 1, the claim's token and lease: one UPDATE for the whole claim."""
    sql = (
        f"UPDATE {_tables()['job']} SET status = %s, attempts = attempts + 1, claimed_by = %s, "
        "lease_expires_at = %s, started_at = %s, next_attempt_at = NULL "
        f"WHERE {_in_list('id', 'bigint')}"
    )
    params = [JobStatus.PROCESSING, token, _datetime(lease_until), _datetime(now), _list_param(job_ids)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def finish(job_ids: list[int], token: str, values: dict[str, Any]) -> set[int]:
    """Set the outcome columns of those jobs still processing under `token`; their ids.

    The fence and the write are one statement: a job re-queued by the reaper or
    claimed again since (a new token) does not match and is left alone. Under
    READ COMMITTED a concurrent change is re-checked against the WHERE clause
    after its lock is released, so the fence holds then too.
    """
    columns = ", ".join(f"{name} = %s" for name in values)
    sql = (
        f"UPDATE {_tables()['job']} SET {columns} "
        f"WHERE {_in_list('id', 'bigint')} AND status = %s AND claimed_by = %s RETURNING id"
    )
    params = [_datetime(value) if isinstance(value, datetime) else value for value in values.values()]
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
