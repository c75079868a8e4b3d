"""Commands fail on a bad setting with one sentence naming it, exit status 1 and no traceback."""

import os
import subprocess
import sys

from tests.support.cluster import BASE_DIR


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "SECRET_KEY")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_without_a_secret_key_says_what_to_set_in_one_sentence():
    finished = manage("check")

    assert finished.returncode == 1
    assert finished.stderr.strip().startswith("gradeproject: SECRET_KEY must be set when DEBUG is off")
    assert "DEBUG=1" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 1


def test_a_malformed_setting_is_named_without_a_traceback():
    finished = manage("check", DEBUG="1", Q_WORKERS="many")

    assert finished.returncode == 1
    assert finished.stderr.strip() == "gradeproject: Q_WORKERS must be a whole number, got 'many'."


def test_a_good_environment_runs_the_command():
    finished = manage("check", DEBUG="1")

    assert finished.returncode == 0, finished.stderr


def test_grading_inline_prints_no_task_queue_chatter(tmp_path):
    # A process of its own on a database file: the test suite's in-memory database runs
    # django-q2 in sync mode, which enqueues nothing and so would log nothing to hide.
    env = {"DEBUG": "1", "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": "", "LOG_LEVEL": "INFO"}
    assert manage("migrate", "--no-input", **env).returncode == 0
    created = manage(
        "createsuperuser", "--no-input", "--username", "admin", "--email", "a@example.com", **env
    )
    assert created.returncode == 0, created.stderr
    (tmp_path / "essays").mkdir()
    (tmp_path / "essays" / "essay.txt").write_text(
        "A short essay about rivers, towns and the people in them."
    )

    finished = manage("grade", str(tmp_path / "essays"), "--template", "academic-essay", "--inline", **env)

    assert finished.returncode == 0, finished.stderr
    assert "Batch #" in finished.stdout
    assert "Enqueued" not in finished.stdout + finished.stderr


def test_seeding_the_demo_prints_the_account_and_the_demo_and_no_task_queue_chatter(tmp_path):
    env = {"DEBUG": "1", "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": "", "LOG_LEVEL": "INFO"}
    assert manage("migrate", "--no-input", **env).returncode == 0

    finished = manage("seed_demo", **env)

    assert finished.returncode == 0, finished.stderr
    assert "Sign in as   username: admin" in finished.stdout
    assert "Created and started the demo batch" in finished.stdout
    assert "Enqueued" not in finished.stdout + finished.stderr


def test_the_fault_benchmark_refuses_an_unknown_scenario_before_starting_anything():
    # Each scenario first runs a fault-free batch, minutes long; a typo used to end
    # in a KeyError traceback after that batch.
    finished = subprocess.run(
        [sys.executable, "bench/faults.py", "--only", "a,z"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert finished.stderr.strip().endswith(
        "error: argument --only: no scenario 'z'; choose among a,b,c,d,e,f"
    )
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""
