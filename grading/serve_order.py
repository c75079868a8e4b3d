"""The order in which the engine serves work, defined once.

Highest batch priority first, then the earliest deadline (batches without one
last), then the oldest job, then the lowest job id. Claims take jobs in this
order (the SQL of grading/claim_sql.py and GradingJob.objects.claimable()), and
the queue (batches/queue.py) lists active batches in it, each batch placed by
its first job in line: so the queue a grader reads is the claim order itself.
"""

from dataclasses import dataclass
from functools import cache

from django.db.models import F
from django.db.models.expressions import OrderBy


@dataclass(frozen=True)
class OrderKey:
    owner: str  # "batch" or "job": whose column it is
    column: str
    descending: bool = False
    nulls_last: bool = False


SERVE_ORDER: tuple[OrderKey, ...] = (
    OrderKey("batch", "priority", descending=True),
    OrderKey("batch", "deadline", nulls_last=True),
    OrderKey("job", "created_at"),
    OrderKey("job", "id"),
)


def _sql_term(alias: str, key: OrderKey) -> str:
    term = f"{alias}.{key.column} {'DESC' if key.descending else 'ASC'}"
    return f"{term} NULLS LAST" if key.nulls_last else term


@cache  # claims ask on every round: the text is built once
def order_sql(batch_alias: str, job_alias: str) -> str:
    """The ORDER BY list over a batch and a job alias: "b.priority DESC, b.deadline ASC NULLS LAST, …"."""
    aliases = {"batch": batch_alias, "job": job_alias}
    return ", ".join(_sql_term(aliases[key.owner], key) for key in SERVE_ORDER)


@cache
def job_order_sql(job_alias: str) -> str:
    """The job part alone, for ordering the jobs of one batch: "j.created_at ASC, j.id ASC"."""
    return ", ".join(_sql_term(job_alias, key) for key in SERVE_ORDER if key.owner == "job")


def _order_by(path: str, key: OrderKey, nulls_last: bool = False) -> OrderBy:
    expression = F(path)
    last = key.nulls_last or nulls_last
    if key.descending:
        return expression.desc(nulls_last=last or None)
    return expression.asc(nulls_last=last or None)


def job_ordering() -> list[OrderBy]:
    """order_by() terms for a GradingJob queryset, in serve order."""
    return [
        _order_by(f"batch__{key.column}" if key.owner == "batch" else key.column, key) for key in SERVE_ORDER
    ]


def batch_ordering(first_job: dict[str, str]) -> list[OrderBy]:
    """order_by() terms for a batch queryset annotated with its first job in line.

    `first_job` maps each job column of the order ("created_at", "id") to the
    annotation holding that column of the batch's first job. A batch with no job
    in line (NULL) comes after those of its priority and deadline that have one.
    """
    return [
        _order_by(key.column, key) if key.owner == "batch" else _order_by(first_job[key.column], key, True)
        for key in SERVE_ORDER
    ]
