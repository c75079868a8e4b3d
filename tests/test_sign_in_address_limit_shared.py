"""Failed sign-ins per address are counted in Redis when there is one, so every web process shares the limit.

Counted in each process's memory, gunicorn's four workers on each web machine
would each allow SIGN_IN_ADDRESS_RATE: four times the guesses for one machine.
Here two real web processes (gunicorn, one worker each) run on the test
database and the test Redis, under a key prefix of this test's own, which is
all that is removed afterwards.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.test import Client

from core.processes import stop_process_groups
from tests.support import qcluster_nodes
from tests.support.qcluster_nodes import REDIS_URL, require_redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

SPRAYER = "203.0.113.7"
TEACHER = "198.51.100.4"
# A day-long window: counts are kept per fixed window, and the test should not
# straddle the boundary of one, where the previous window's count starts to fade.
RATE = "5/1d"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in(base_url: str, username: str, password: str, address: str, page: str = "/accounts/login/") -> int:
    """The status of one sign-in through a web process, as a browser behind a proxy sends it."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirects)
    headers = {"X-Forwarded-For": address}
    with opener.open(urllib.request.Request(base_url + page, headers=headers), timeout=30) as form:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.read().decode()).group(1)
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(base_url + page, data=body.encode(), headers=headers)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the web process exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with suppress(OSError), urllib.request.urlopen(url + "/accounts/login/", timeout=2):
            return
        time.sleep(0.2)
    raise AssertionError(f"the web process did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def web_processes(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[str]]:
    """`count` gunicorn servers, each its own process group; exactly those are stopped, also on failure."""
    processes: list[subprocess.Popen] = []
    try:
        urls = []
        for index in range(count):
            url = f"http://127.0.0.1:{free_port()}"
            log = log_dir / f"web-{index}.log"
            with open(log, "wb") as output:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "gunicorn", "gradeproject.wsgi", "-b", url[7:], "-w", "1"],
                        cwd=settings.BASE_DIR,
                        env=env,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            wait_until_serving(processes[-1], url, log)
            urls.append(url)
        yield urls
    finally:
        stop_process_groups(processes, timeout=15)


def web_env(cluster_name: str) -> dict[str, str]:
    """A web process on the test database, counting in the test Redis under `<cluster_name>:throttles`."""
    return {
        **os.environ,
        "DATABASE_URL": qcluster_nodes.test_database_url(),
        "REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": cluster_name,
        "SIGN_IN_ADDRESS_RATE": RATE,
        "NUM_PROXIES": "1",  # the test is the proxy; X-Forwarded-For names the client
        "SESSION_COOKIE_SECURE": "0",  # served over plain HTTP
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def shared_counts():
    """A Q_CLUSTER_NAME of this test's own, which prefixes its keys in the test Redis; those are removed after."""
    require_redis()
    name = f"gp-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    server = redis.from_url(REDIS_URL)
    yield name, server
    keys = list(server.scan_iter(match=f"{name}:throttles:*"))
    if keys:
        server.delete(*keys)


def test_failures_through_two_web_processes_add_up_and_both_refuse_the_address(
    owner, shared_counts, tmp_path
):
    name, server = shared_counts
    with web_processes(2, web_env(name), tmp_path) as (first, second):
        for number in range(3):
            assert sign_in(first, f"pupil{number}", "Spring2026!", SPRAYER) == 200
        for number in range(3, 5):
            assert sign_in(second, f"pupil{number}", "Spring2026!", SPRAYER) == 200

        assert sign_in(first, "olivia", "pw-olivia", SPRAYER) == 429
        assert sign_in(second, "pupil5", "Spring2026!", SPRAYER, page="/admin/login/") == 429
        assert sign_in(second, "olivia", "pw-olivia", TEACHER) == 302

    assert any(server.scan_iter(match=f"{name}:throttles:*sign-in-failures*"))


def test_this_process_reads_the_count_the_web_processes_kept(owner, shared_counts, tmp_path, settings):
    name, _ = shared_counts
    with web_processes(1, web_env(name), tmp_path) as (web,):
        for number in range(5):
            assert sign_in(web, f"pupil{number}", "Spring2026!", SPRAYER) == 200
    settings.SIGN_IN_ADDRESS_RATE = RATE
    settings.CACHES = {
        **settings.CACHES,
        "throttles": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{name}:throttles",
        },
    }

    response = Client(REMOTE_ADDR=SPRAYER).post(
        "/accounts/login/", {"username": "olivia", "password": "pw-olivia"}
    )

    assert response.status_code == 429
    caches["throttles"].close()
