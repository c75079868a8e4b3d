"""Chromium driven by Playwright against pytest-django's live server.

Debian's Chromium (/usr/bin/chromium) runs headless; the tests skip when it is
missing on a laptop and fail in CI, where .ci/run installs it.

How grading progresses while a browser watches:
- on PostgreSQL, a real `manage.py qcluster` process works on the test
  database (the live server's tests use a transactional database, so what the
  pages write is committed and the cluster sees it);
- on SQLite the test database lives in memory, which no other process can
  open, so django-q2 runs in sync mode: the request that starts a batch runs
  process_batch (the same engine, in the server's thread) before it answers.

Screenshots go to test-artifacts/ (ignored by git).
"""

import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import IN_CI, ON_POSTGRES

# Playwright's sync API keeps an event loop in the main thread; the test's own
# ORM calls there are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        message = f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_tab(chromium, base_url: str, **options):
    """A tab in a fresh browser context (own cookies); options as Playwright's new_context takes them."""
    options = {"viewport": {"width": 1360, "height": 900}, "accept_downloads": True, **options}
    context = chromium.new_context(base_url=base_url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def web(chromium, live_server):
    """A fresh browser tab (own cookies) on the live server."""
    with browser_tab(chromium, live_server.url) as page:
        yield page


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def sign_in(page, username: str, password: str) -> None:
    page.goto("/batches")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/batches")


# Who grades the batches a test starts, for @pytest.mark.parametrize("graders", GRADERS, indirect=True):
# each case is named and marked for what really runs.
GRADERS = [
    pytest.param(
        "cluster", marks=[pytest.mark.postgres, pytest.mark.cluster], id="by_a_qcluster_on_postgresql"
    ),
    pytest.param("sync", marks=pytest.mark.sync_mode, id="in_sync_mode_on_sqlite"),
]


@pytest.fixture
def graders(request, live_server, monkeypatch, tmp_path):
    """Whatever grades started batches during the test: a real cluster, or sync mode on SQLite."""
    if request.param == "sync":
        if ON_POSTGRES:
            pytest.skip("on PostgreSQL a real qcluster grades (the by_a_qcluster_on_postgresql case)")
        from django_q.conf import Conf

        monkeypatch.setattr(Conf, "SYNC", True)
        yield "sync"
        return
    env = _cluster_env()
    log = tmp_path / "qcluster.log"
    with open(log, "wb") as output:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield "cluster"
    finally:
        _stop(cluster)
        if cluster.returncode not in (0, -signal.SIGTERM):
            print(log.read_text()[-3000:])


def _cluster_env() -> dict[str, str]:
    from tests.support.qcluster_nodes import test_database_url

    # Same broker and cluster name as this process (whose live server enqueues), on its test database.
    return {**os.environ, "DATABASE_URL": test_database_url(), "Q_WORKERS": "1", "LOG_LEVEL": "WARNING"}


def _stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the cluster's sentinel (it stops its workers), then kill what is left of its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(autouse=True)
def plain_http_cookies(settings):
    """The live server speaks plain HTTP: cookies marked Secure (the default without DEBUG) would not come back.

    The settings are already loaded when this conftest is imported, so the
    variables (SESSION_COOKIE_SECURE=0, CSRF_COOKIE_SECURE=0) are set as settings.
    """
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
