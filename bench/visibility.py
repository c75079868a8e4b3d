"""How fast is the first page of batches when a user sees 100 of 100,000?

Builds (once, then reuses) a PostgreSQL database `gp_bench_visibility` with
1,000 users and 100,000 batches, three jobs each. One user, `viewer`, sees
exactly 100 batches: 50 owned and 50 shared with a group the viewer is in.
Everyone else owns and shares too (owners hold their four permission rows;
other groups and colleagues share with each other), so the permission tables
are as large as real use makes them.

It then requests the first page of GET /api/batches in-process with Django's
test client, signed in as the viewer and as a superuser, and prints the query
count and the median latency of each (and of the list's queryset alone).

    python bench/visibility.py            # build if needed, measure
    python bench/visibility.py --rebuild  # drop and rebuild the data
    python bench/visibility.py --explain  # also print EXPLAIN ANALYZE of the list query

Target: the same small query count for both users and a median under 50 ms.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_DB", "gp_bench_visibility")
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
os.environ["DATABASE_URL"] = f"{PG_SERVER}/{DB_NAME}"
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")

USERS = 1_000
BATCHES = 100_000
JOBS_PER_BATCH = 3
VISIBLE_OWNED = 50
VISIBLE_SHARED = 50
PAGE = 25
RUNS = 60


def ensure_database(rebuild: bool) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def copy_rows(table: str, columns: list[str], rows) -> None:
    """COPY is about twenty times faster than INSERT for hundreds of thousands of rows."""
    from django.db import connection

    connection.ensure_connection()
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def populated() -> bool:
    from django.contrib.auth.models import User

    from batches.models import JobBatch

    return User.objects.filter(username="viewer").exists() and JobBatch.objects.count() == BATCHES


def build() -> None:
    import random
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission, User
    from django.db import transaction
    from django.utils import timezone

    from batches.models import JobBatch
    from core.permissions import codenames
    from grading.models import Document
    from templates_app.models import BatchTemplate
    from templates_app.prebuilt import install

    rng = random.Random(5)
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        if not BatchTemplate.objects.filter(slug="academic-essay").exists():
            install(BatchTemplate)
        template = BatchTemplate.objects.get(slug="academic-essay")
        password = make_password("bench")
        users = User.objects.bulk_create(
            [User(username="viewer", password=password)]
            + [User(username=f"user{i:04d}", password=password) for i in range(1, USERS)]
            + [User(username="root", password=password, is_superuser=True, is_staff=True)]
        )
        viewer, others = users[0], users[1:-1]
        owners = users[:-1]
        groups = Group.objects.bulk_create([Group(name=f"group{i:03d}") for i in range(50)])
        # The viewer is in one group; every group has 20 members drawn from the others.
        memberships = {(viewer.pk, groups[0].pk)} | {
            (user.pk, group.pk) for group in groups for user in rng.sample(others, 20)
        }
        User.groups.through.objects.bulk_create(
            [User.groups.through(user_id=u, group_id=g) for u, g in memberships]
        )

        # The viewer owns VISIBLE_OWNED batches spread through time; the others own the rest.
        viewer_slots = set(range(0, BATCHES, BATCHES // VISIBLE_OWNED))
        owner_by_index = [
            viewer.pk if i in viewer_slots else others[i % len(others)].pk for i in range(BATCHES)
        ]
        copy_rows(
            "batches_jobbatch",
            [
                "name",
                "description",
                "status",
                "priority",
                "tags",
                "settings",
                "template_id",
                "owner_id",
                "created_at",
            ],
            (
                (
                    f"Batch {i}",
                    "",
                    "draft",
                    1 + i % 10,
                    '["bench"]',
                    "{}",
                    template.pk,
                    owner_by_index[i],
                    now - timedelta(minutes=BATCHES - i),
                )
                for i in range(BATCHES)
            ),
        )
        batch_ids = list(JobBatch.objects.order_by("pk").values_list("pk", flat=True))
        owner_of = dict(zip(batch_ids, owner_by_index, strict=True))

        copy_rows(
            "grading_document",
            [
                "file",
                "original_name",
                "content_type",
                "size",
                "sha256",
                "text",
                "extraction_error",
                "owner_id",
                "created_at",
            ],
            (
                (
                    f"documents/u{u.pk}.txt",
                    f"u{u.pk}.txt",
                    "text/plain",
                    21,
                    "0" * 64,
                    "An essay about parks.",
                    "",
                    u.pk,
                    now,
                )
                for u in owners
            ),
        )
        document_of = dict(Document.objects.values_list("owner_id", "pk"))
        statuses = ["completed", "completed", "failed", "queued", "pending"]
        copy_rows(
            "grading_gradingjob",
            [
                "name",
                "batch_id",
                "document_id",
                "owner_id",
                "provider",
                "model",
                "overrides",
                "settings",
                "status",
                "attempts",
                "max_attempts",
                "last_error",
                "claimed_by",
                "created_at",
            ],
            (
                (
                    f"Job {b}-{j}",
                    b,
                    document_of[owner_of[b]],
                    owner_of[b],
                    "builtin",
                    "",
                    "{}",
                    "{}",
                    statuses[(b + j) % len(statuses)],
                    0,
                    3,
                    "",
                    "",
                    now,
                )
                for b in batch_ids
                for j in range(JOBS_PER_BATCH)
            ),
        )

        names = codenames(JobBatch)
        perm = dict(Permission.objects.filter(codename__in=names.values()).values_list("codename", "pk"))
        # Every owner holds its four rows, as the post_save signal gives them.
        copy_rows(
            "batches_jobbatchuserobjectpermission",
            ["user_id", "permission_id", "content_object_id"],
            ((owner_of[b], perm[c], b) for b in batch_ids for c in names.values()),
        )
        foreign = [b for b in batch_ids if owner_of[b] != viewer.pk]
        # Colleagues share with colleagues, never with the viewer directly.
        user_shares = {
            (colleague.pk, perm[names[rng.choice(["view", "change", "manage"])]], b)
            for b in rng.sample(foreign, 20_000)
            if (colleague := rng.choice(others)).pk != owner_of[b]
        }
        copy_rows(
            "batches_jobbatchuserobjectpermission",
            ["user_id", "permission_id", "content_object_id"],
            user_shares,
        )
        # VISIBLE_SHARED batches reach the viewer through its group; other groups get their own shares.
        group_rows = {(groups[0].pk, perm[names["view"]], b) for b in rng.sample(foreign, VISIBLE_SHARED)}
        group_rows |= {
            (rng.choice(groups[1:]).pk, perm[names["view"]], b) for b in rng.sample(foreign, 10_000)
        }
        copy_rows(
            "batches_jobbatchgroupobjectpermission",
            ["group_id", "permission_id", "content_object_id"],
            group_rows,
        )
    print(
        f"built {BATCHES:,} batches, {BATCHES * JOBS_PER_BATCH:,} jobs, {USERS:,} users in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )


def analyze() -> None:
    """Fresh planner statistics, as autovacuum would have after a bulk load."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def endpoint_page(client) -> tuple[int, int]:
    """GET /api/batches as the browser or an integrator would: the first page and the total."""
    response = client.get("/api/batches")
    if response.status_code != 200:
        raise SystemExit(f"/api/batches answered {response.status_code}: {response.content[:300]!r}")
    body = response.json()
    return len(body["results"]), body["count"]


def queryset_page(user) -> tuple[int, int]:
    """The list's database work alone: the page's rows and the count."""
    from batches.models import JobBatch

    queryset = JobBatch.objects.visible_to(user).with_progress()
    return len(list(queryset[:PAGE])), queryset.count()


class QueryLog:
    """Records every SQL statement run while active.

    A wrapper rather than CaptureQueriesContext: the test client sends
    request_started, which empties connection.queries_log mid-capture.
    """

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)


def measure(run) -> tuple[list[str], float, float, int, int]:
    """Statements of one call, median latency and median CPU time of this process over RUNS calls,
    rows and total of the page."""
    from django.db import connection

    for _ in range(3):
        run()
    log = QueryLog()
    with connection.execute_wrapper(log):
        rows, total = run()
    timings, cpu = [], []
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return log.statements, statistics.median(timings), statistics.median(cpu), rows, total


def explain(user) -> None:
    from django.db import connection

    from batches.models import JobBatch

    queryset = JobBatch.objects.visible_to(user).with_progress()[:PAGE]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        print(f"\nEXPLAIN ANALYZE, first page for {user.username}:")
        print("\n".join(row[0] for row in cursor.fetchall()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="drop the bench database and build it again")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the list query")
    parser.add_argument("--queries", action="store_true", help="print the statements of each measured call")
    args = parser.parse_args()

    ensure_database(args.rebuild)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if not populated():
        build()
        analyze()

    from django.test import Client

    viewer, root = User.objects.get(username="viewer"), User.objects.get(username="root")
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"PostgreSQL database {DB_NAME}: {BATCHES:,} batches, {USERS:,} users; first page of {PAGE}")
    # Latency on a shared machine tracks its load; the query count does not.
    print(f"load average {load} on {os.cpu_count()} cores")
    # CPU ms: this process's own time (Django, DRF, psycopg), which load does not stretch; the
    # database's time is in the median only.
    print(
        f"{'measured':<24} {'user':<7} {'visible':>8} {'rows':>5} {'queries':>8} {'median ms':>10} {'CPU ms':>7}"
    )
    figures = {}
    for user in (viewer, root):
        # A signed-in session, as the browsable API and the web pages use; the
        # session and user lookups are part of the count.
        client = Client()
        client.force_login(user)
        for label, run in (
            ("GET /api/batches", lambda client=client: endpoint_page(client)),
            ("queryset (page + count)", lambda user=user: queryset_page(user)),
        ):
            statements, median, cpu, rows, total = measure(run)
            figures[(label, user.username)] = (len(statements), median, total)
            print(
                f"{label:<24} {user.username:<7} {total:>8,} {rows:>5} {len(statements):>8} "
                f"{median:>10.1f} {cpu:>7.1f}"
            )
            if args.queries:
                print("\n".join(f"    {sql[:160]}" for sql in statements))
    if args.explain:
        explain(viewer)
        explain(root)

    expected = VISIBLE_OWNED + VISIBLE_SHARED
    endpoint = {name: figures[("GET /api/batches", name)] for name in ("viewer", "root")}
    ok = endpoint["viewer"][2] == expected and endpoint["root"][2] == BATCHES
    ok &= endpoint["viewer"][0] == endpoint["root"][0]
    ok &= all(median < 50 for _, median, _ in endpoint.values())
    print(
        f"target for GET /api/batches (viewer sees {expected}, same query count for both, median < 50 ms): "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
